"""The bastion's own audit trail: one JSON line per run, no output bodies, no secrets."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Sequence
from pathlib import Path

from bastion.lab.paths import state_home
from bastion.models import HostResult
from bastion.private_files import open_in, open_private_dir
from bastion.record_guard import best_effort
from bastion.runrecord import RunContext

HISTORY_SCHEMA = 1


def history_path() -> Path:
    """``$BASTION_HISTORY_FILE``, else ``history.jsonl`` in the user's XDG state directory."""
    override = os.environ.get("BASTION_HISTORY_FILE")
    return Path(override) if override else state_home() / "history.jsonl"


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def record_run(
    context: RunContext, results: Sequence[HostResult], *, exit_code: int, elapsed_s: float
) -> Path:
    """Append this run to the history file; returns the file's path.

    The directory is opened without following another user's symlinks (`open_private_dir`),
    the file with ``O_NOFOLLOW``; a write that fails (a full disk) is one warning line and
    never changes the run's exit code.
    """
    path = history_path()
    entry = {
        "schema": HISTORY_SCHEMA,
        "run_id": context.run_id,
        "time": context.started_at,
        "user": _who(),
        "inventory": context.inventory_path,
        "inventory_sha256": context.inventory_digest,
        "selection": context.selection,
        "command": context.command,
        "exit_code": exit_code,
        "duration_s": round(elapsed_s, 3),
        "hosts": {r.host: [str(r.status), r.exit_status] for r in results},
    }
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
    with best_effort(f"the history ({path})"):
        directory = open_private_dir(path.parent)
        try:
            fd = open_in(directory, path.name, append=True)
        finally:
            os.close(directory)
        try:
            os.write(fd, line)  # one write: appends of one line are atomic for readers
        finally:
            os.close(fd)
    return path


def read_history(limit: int | None = None) -> list[dict[str, object]]:
    """The most recent runs, oldest first; lines that are not valid JSON are skipped."""
    path = history_path()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    entries: list[dict[str, object]] = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries[-limit:] if limit else entries
