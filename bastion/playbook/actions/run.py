"""``run: CMD``: a shell command (``sh -c`` by the login shell; ``sudo -n`` with sudo)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.located_yaml import Entry
from bastion.playbook.actions.prepared import Command, shell_command
from bastion.playbook.fields import FieldReader
from bastion.playbook.model import Text
from bastion.playbook.template import Masker, check_shell_placement, render

if TYPE_CHECKING:
    from bastion.playbook.model import Step

NAMES = ("run",)
READONLY = False
SUDO = True
DURABLE = True


@dataclass(frozen=True, slots=True)
class RunAction:
    command: Text


def read(reader: FieldReader, name: str, entry: Entry, path: Path) -> RunAction:
    """The command, a templated string."""
    command = reader.required_text(entry, path, "run")
    check_shell_placement(command, path)
    return RunAction(command)


def prepare(
    action: RunAction,
    step: Step,
    context: Mapping[str, object],
    path: Path,
    *,
    masker: Masker | None,
) -> Command:
    """The command for one host, each value quoted for where it stands."""
    command = render(action.command, context, path, quoted=True)
    return shell_command(command, command, step, masker, step.timeout)


def plan_line(command: Command) -> str:
    """The first line of the command, as --check shows it."""
    lines = command.display.strip().splitlines() or [""]
    return lines[0] + (" ..." if len(lines) > 1 else "")
