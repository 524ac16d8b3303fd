"""``bastion history``: the recent runs from the bastion's own audit trail."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from bastion.cli.options import TextOrJson, warn_deprecated


def history_command(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
    output: Annotated[
        TextOrJson,
        typer.Option("--output", "-o", metavar="FORMAT", help="text, or json (the raw lines)."),
    ] = TextOrJson.TEXT,
    as_json: Annotated[
        bool, typer.Option("--json", hidden=True, help="Old spelling of -o json.")
    ] = False,
) -> None:
    """List recent runs: id, when, who, how long, exit code, hosts by status, the command."""
    from bastion.history import history_path, read_history
    from bastion.hostset import fold

    if as_json:
        warn_deprecated("--json", "-o json")
        output = TextOrJson.JSON
    entries = read_history(limit)
    if output is TextOrJson.JSON:
        for entry in entries:
            sys.stdout.write(json.dumps(entry) + "\n")
        return
    if not entries:
        sys.stderr.write(f"bastion: no runs recorded yet ({history_path()})\n")
        return
    from bastion.render.visible import visible

    for entry in entries:
        hosts = entry.get("hosts")
        by_status: dict[str, list[str]] = {}
        if isinstance(hosts, dict):
            for name, outcome in hosts.items():
                status = outcome[0] if isinstance(outcome, list) and outcome else "?"
                by_status.setdefault(str(status), []).append(str(name))
        counts = " ".join(f"{status}:{fold(names)}" for status, names in by_status.items())
        duration = entry.get("duration_s")
        took = f"{duration:.1f}s" if isinstance(duration, int | float) else "-"
        line = (
            f"{entry.get('run_id', '-')}  {entry.get('time', '?')}  {entry.get('user', '?')}  "
            f"{took}  exit={entry.get('exit_code')}  {counts}  {entry.get('command', '')}"
        )
        sys.stdout.write(visible(line) + "\n")
