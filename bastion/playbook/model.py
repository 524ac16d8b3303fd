"""A playbook as data: plays, steps, actions and templated texts that remember their line.

Everything here is plain and immutable; `load` builds it from YAML, `engine` runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.select import Selection

if TYPE_CHECKING:
    from bastion.playbook.actions.registry import Action


@dataclass(frozen=True, slots=True)
class Text:
    """A string of the playbook that may hold Jinja, and the line it was written on."""

    value: str
    line: int


@dataclass(frozen=True, slots=True)
class Where:
    """A host selection as written (``-g workers -x node3``) and as parsed."""

    text: str
    selection: Selection
    line: int


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a play: one action and its modifiers (see docs/playbooks.md)."""

    name: str
    line: int
    action: Action
    action_name: str
    on: Where | None = None
    once: bool = False
    creates: Text | None = None
    removes: Text | None = None
    unless: Text | None = None
    only_if: Text | None = None
    when: Text | None = None
    register: str | None = None
    retries: int | Text = 0
    """A whole number, or a template rendered per host (see `plan.retry_limits`)."""
    delay: float | Text = 2.0
    until: Text | None = None
    timeout: float | None = None
    sudo: bool = False
    durable: bool = False
    batch: str | None = None
    max_fail: str | None = None
    tags: tuple[str, ...] = ()
    readonly: bool = False
    changed_when: Text | None = None
    ignore_errors: bool = False
    secret: bool = False


@dataclass(frozen=True, slots=True)
class Play:
    """A play file: where it runs, its own variables and its steps."""

    name: str
    path: Path
    hosts: Where
    vars: Mapping[str, object]
    """Plain values, or `Text` for strings (templated per host), as written."""
    steps: tuple[Step, ...]
    when: Text | None = None
    """From the composition's ``import`` entry: the play runs only if this holds."""
    composition_vars: Mapping[str, object] = field(default_factory=dict)
    facts: bool = False
    """``facts: true``: each host's facts are gathered once for the run, before the steps."""


@dataclass(frozen=True, slots=True)
class Playbook:
    """What ``bastion play FILE`` runs: one play, or a composition's plays in order."""

    name: str
    path: Path
    plays: tuple[Play, ...]
    extra_vars: Mapping[str, object] = field(default_factory=dict)
    secrets: frozenset[str] = frozenset()
    """Values to mask everywhere (secret vars, read at load)."""
    secret_vars: frozenset[str] = frozenset()
    """Names of the secret variables."""

    @property
    def registers(self) -> frozenset[str]:
        """Every name a step registers, in any play (and ``facts`` if a play gathers them)."""
        names = {s.register for p in self.plays for s in p.steps if s.register}
        if any(p.facts for p in self.plays):
            names.add("facts")
        return frozenset(names)
