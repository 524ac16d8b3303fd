"""``script: {src, args}``: a local script sent on stdin to ``sh -s -- ARGS``."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.command import with_sudo
from bastion.located_yaml import Entry, Seq, YamlMap
from bastion.playbook.actions.prepared import Command
from bastion.playbook.errors import PlaybookError
from bastion.playbook.fields import FieldReader
from bastion.playbook.model import Text
from bastion.playbook.secret_delivery import ROOT_SHELL_FROM_STDIN, script_with_args
from bastion.playbook.template import Masker, render

if TYPE_CHECKING:
    from bastion.playbook.model import Step

NAMES = ("script",)
READONLY = False
SUDO = True
DURABLE = False


@dataclass(frozen=True, slots=True)
class ScriptAction:
    src: Path
    body: bytes
    args: tuple[Text, ...]


def read(reader: FieldReader, name: str, entry: Entry, path: Path) -> ScriptAction:
    """The script (read whole now, relative to the playbook) and its templated arguments."""
    node = entry.value
    if not isinstance(node, YamlMap):
        raise PlaybookError(f"{name}: expected a mapping", source=path, line=entry.key_line)
    reader.check_keys(node, ("src", "args"), path, "script")
    src = reader.local_file(node, "src", path)
    body = reader.read_local(src, path, node.entries["src"].key_line)
    args_entry = node.entries.get("args")
    args: tuple[Text, ...] = ()
    if args_entry is not None:
        if not isinstance(args_entry.value, Seq):
            raise PlaybookError("args: expected a list", source=path, line=args_entry.key_line)
        args = tuple(reader.item_text(item, path, "args") for item in args_entry.value.items)
    return ScriptAction(src, body, args)


def prepare(
    action: ScriptAction,
    step: Step,
    context: Mapping[str, object],
    path: Path,
    *,
    masker: Masker | None,
) -> Command:
    """``sh -s -- ARGS`` with the body on stdin; arguments holding a secret go in the body."""
    args = [render(arg, context, path, quoted=False) for arg in action.args]
    text = " ".join(["sh -s --", shlex.join(args)]).rstrip()
    display = f"script {action.src.name} {shlex.join(args)}".rstrip()
    if masker is not None and masker.reveals(shlex.join(args)):
        given = script_with_args(action.body, args)
        shell = ROOT_SHELL_FROM_STDIN if step.sudo else "sh -s"
        staged = b'rm -f -- "$0"\n' + given
        return Command(shell, display, given, step.timeout, staged, step.sudo)
    return Command(with_sudo(text) if step.sudo else text, display, action.body, step.timeout)


def plan_line(command: Command) -> str:
    """``script NAME ARGS``."""
    return command.display
