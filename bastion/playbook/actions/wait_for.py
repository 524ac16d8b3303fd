"""``wait_for: {port|file|command, timeout, interval}``: wait on the host until it is ready.

Read-only: it runs in --check too, looking once (no waiting).
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.command import with_sudo
from bastion.located_yaml import Entry, Scalar, YamlMap
from bastion.playbook.actions.prepared import Command, shell_command
from bastion.playbook.errors import PlaybookError
from bastion.playbook.fields import FieldReader
from bastion.playbook.model import Text
from bastion.playbook.template import Masker, check_shell_placement, render

if TYPE_CHECKING:
    from bastion.playbook.model import Step

NAMES = ("wait_for",)
READONLY = True
SUDO = True
DURABLE = False

WAIT_GRACE_S = 30.0
"""How much longer than its own timeout a wait_for command may take before it is killed."""


@dataclass(frozen=True, slots=True)
class WaitForAction:
    timeout: float
    interval: float
    port: int | None = None
    host: Text | None = None
    file: Text | None = None
    command: Text | None = None


def read(reader: FieldReader, name: str, entry: Entry, path: Path) -> WaitForAction:
    """Exactly one of port (with host), file or command; timeout 5m and interval 2s."""
    node = entry.value
    if not isinstance(node, YamlMap):
        raise PlaybookError(f"{name}: expected a mapping", source=path, line=entry.key_line)
    reader.check_keys(
        node, ("port", "host", "file", "command", "timeout", "interval"), path, "wait_for"
    )
    kinds = [k for k in ("port", "file", "command") if k in node.entries]
    if len(kinds) != 1:
        raise PlaybookError(
            "wait_for: give exactly one of port, file or command", source=path, line=node.line
        )
    timeout = reader.duration(node.entries, "timeout", path) or 300.0
    interval = reader.duration(node.entries, "interval", path) or 2.0
    if "port" in node.entries:
        port_entry = node.entries["port"]
        port = port_entry.value.value if isinstance(port_entry.value, Scalar) else None
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise PlaybookError("port: expected 1-65535", source=path, line=port_entry.key_line)
        host = reader.text(node.entries, "host", path) or Text("127.0.0.1", port_entry.key_line)
        return WaitForAction(timeout, interval, port=port, host=host)
    if "host" in node.entries:
        raise PlaybookError(
            "wait_for: host goes with port", source=path, line=node.entries["host"].key_line
        )
    command = reader.text(node.entries, "command", path)
    if command is not None:
        check_shell_placement(command, path)
    return WaitForAction(
        timeout, interval, file=reader.text(node.entries, "file", path), command=command
    )


def prepare(
    action: WaitForAction,
    step: Step,
    context: Mapping[str, object],
    path: Path,
    *,
    check: bool,
    masker: Masker | None,
) -> Command:
    """A polling loop on the host (--check: one look)."""
    if action.port is not None and action.host is not None:
        host = shlex.quote(render(action.host, context, path, quoted=False))
        port = action.port
        probe = (
            f"(command -v nc >/dev/null 2>&1 && nc -z {host} {port}) || "
            f"(command -v bash >/dev/null 2>&1 && bash -c 'exec 3<>/dev/tcp/'{host}'/{port}')"
        )
        what = f"port {port} on {host}"
    elif action.file is not None:
        file = render(action.file, context, path, quoted=False)
        probe = f"test -e {shlex.quote(file)}"
        what = f"file {file}"
    else:
        assert action.command is not None
        command = render(action.command, context, path, quoted=True)
        # A subshell of the loop's shell, not `sh -c`: the command stays out of argv.
        probe = f"(\n{command}\n) </dev/null"
        what = "the command"
    timeout = 0.0 if check else action.timeout
    ready = shlex.quote(f"ready: {what}")
    late = shlex.quote(f"not ready after {timeout:g}s: {what}")
    script = (
        f"end=$(( $(date +%s) + {math.ceil(timeout)} ))\n"
        "while :; do\n"
        f"  if {probe} >/dev/null 2>&1; then echo {ready}; exit 0; fi\n"
        f'  if [ "$(date +%s)" -ge "$end" ]; then echo {late} >&2; exit 1; fi\n'
        f"  sleep {action.interval:g}\n"
        "done"
    )
    display = f"wait for {what}"
    if masker is not None and masker.reveals(script):
        return shell_command(script, display, step, masker, timeout + WAIT_GRACE_S)
    text = f"sh -c {shlex.quote(script)}"
    return Command(with_sudo(text) if step.sudo else text, display, timeout=timeout + WAIT_GRACE_S)


def plan_line(command: Command) -> str:
    """``wait for port 6443 on 127.0.0.1``."""
    return command.display
