"""Every playbook action, and the one place that dispatches on them.

An action is one module here (``run``, ``script``, ``copy``, ``fetch``, ``wait_for``) with:
``NAMES`` (its YAML keys), ``READONLY`` (it never changes anything), ``SUDO`` (whether
``sudo`` applies), ``DURABLE`` (whether ``durable`` applies), ``read`` (YAML -> its dataclass),
``prepare`` (rendered for one host) and ``plan_line`` (what --check says). Adding one is that
module, a case in each ``match`` below (mypy's ``assert_never`` names any missing case), the
schema (docs/playbook.schema.json) and docs/playbooks.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar, assert_never

from bastion.located_yaml import Entry
from bastion.playbook.actions import copy, fetch, run, script, wait_for
from bastion.playbook.actions.copy import CopyAction
from bastion.playbook.actions.fetch import FetchAction
from bastion.playbook.actions.prepared import Command, Download, Prepared, Upload
from bastion.playbook.actions.run import RunAction
from bastion.playbook.actions.script import ScriptAction
from bastion.playbook.actions.wait_for import WaitForAction
from bastion.playbook.errors import PlaybookError
from bastion.playbook.fields import FieldReader
from bastion.playbook.template import Masker

if TYPE_CHECKING:
    from bastion.playbook.model import Step

Action = RunAction | ScriptAction | CopyAction | FetchAction | WaitForAction

MODULES: tuple[ModuleType, ...] = (run, script, copy, fetch, wait_for)
BY_NAME: dict[str, ModuleType] = {name: module for module in MODULES for name in module.NAMES}
ACTION_NAMES: tuple[str, ...] = tuple(BY_NAME)
"""The YAML keys that name an action, in the order the docs list them."""


def read_action(reader: FieldReader, name: str, entry: Entry, path: Path) -> Action:
    """The action ``name`` read from ``entry``; an unknown name is an error, never a default."""
    module = BY_NAME.get(name)
    if module is None:
        raise PlaybookError(
            f"unknown action {name!r} (expected one of {', '.join(ACTION_NAMES)})",
            source=path,
            line=entry.key_line,
        )
    action: Action = module.read(reader, name, entry, path)
    return action


def is_readonly(name: str) -> bool:
    """Whether the action never changes anything (``wait_for``): readonly without saying so."""
    return bool(BY_NAME[name].READONLY)


def takes_sudo(name: str) -> bool:
    """Whether ``sudo`` applies to the action (not to ``fetch``)."""
    return bool(BY_NAME[name].SUDO)


def takes_durable(name: str) -> bool:
    """Whether ``durable`` applies to the action (``run`` only)."""
    return bool(BY_NAME[name].DURABLE)


def prepare(
    step: Step,
    context: Mapping[str, object],
    path: Path,
    *,
    check: bool = False,
    masker: Masker | None = None,
) -> Prepared:
    """The step's action rendered for one host; raises `PlaybookError` on undefined names.

    With ``masker``, a command that holds one of its secrets is sent on stdin, never as argv.
    """
    action: Action = step.action
    match action:
        case RunAction():
            return run.prepare(action, step, context, path, masker=masker)
        case ScriptAction():
            return script.prepare(action, step, context, path, masker=masker)
        case CopyAction():
            return copy.prepare(action, context, path)
        case FetchAction():
            return fetch.prepare(action, context, path)
        case WaitForAction():
            return wait_for.prepare(action, step, context, path, check=check, masker=masker)
        case _:
            assert_never(action)


def plan_line(action: Action, prepared: Prepared) -> str:
    """What the step would do, for the --check plan."""
    match action:
        case RunAction():
            return run.plan_line(_as(prepared, Command))
        case ScriptAction():
            return script.plan_line(_as(prepared, Command))
        case CopyAction():
            return copy.plan_line(_as(prepared, Upload))
        case FetchAction():
            return fetch.plan_line(_as(prepared, Download))
        case WaitForAction():
            return wait_for.plan_line(_as(prepared, Command))
        case _:
            assert_never(action)


_P = TypeVar("_P", Command, Upload, Download)


def _as(prepared: Prepared, kind: type[_P]) -> _P:
    if not isinstance(prepared, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(prepared).__name__}")
    return prepared
