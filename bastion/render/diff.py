"""``-o diff [--ref HOST]``: each distinct output as a unified diff against a reference.

Like ``clush --diff``: the host whose config drifted stands out among a hundred that agree.
The reference is the output most hosts printed (ties: the one seen first, in selection order),
so one drifted first host cannot make every other host look drifted; ``--ref HOST`` makes one
host's output the reference instead. Hosts with the same output share one diff
(``+++ node[4,7]``); hosts identical to the reference are folded onto one line at the end.
Only stdout is compared; stderr still goes to stderr, and the summary still gives each host's
status. Diff lines are shown through `visible` unless ``raw``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TextIO

from bastion.gather import group_by_output
from bastion.hostset import fold
from bastion.models import Event, HostResult
from bastion.render.base import CYAN, DIM, GREEN, RED, paint
from bastion.render.visible import visible


class DiffRenderer:
    """Prints nothing while hosts run; then the diffs, then who is identical to the reference."""

    def __init__(
        self, out: TextIO, err: TextIO, ref: str | None, *, color: bool = False, raw: bool = False
    ) -> None:
        """``ref`` None: the majority's output is the reference."""
        self._out = out
        self._err = err
        self._ref = ref
        self._color = color
        self._raw = raw

    def handle(self, event: Event) -> None:
        """A diff needs the reference's whole output, so nothing is shown as hosts run."""

    def finish(self, results: Sequence[HostResult]) -> None:
        groups = group_by_output(results, lambda r: r.stdout)
        if self._ref is None:
            majority = groups[0] if groups else None
            expected = majority.text if majority is not None else ""
            name = majority.folded if majority is not None else "none"
            label = f"{name} ({len(majority.hosts) if majority else 0} of {len(results)} hosts)"
        else:
            reference = next((r for r in results if r.host == self._ref), None)
            expected = reference.stdout if reference is not None else ""
            name, label = self._ref, f"{self._ref} (reference)"
            if reference is None or not reference.succeeded:
                status = reference.status if reference is not None else "not run"
                self._err.write(
                    f"bastion: the reference host {self._ref} is {status}; "
                    "its output (possibly empty) was compared all the same\n"
                )
        identical: list[str] = []
        for group in groups:
            hosts = [h for h in group.hosts if h != self._ref]
            if group.text == expected:
                identical.extend(hosts if self._ref is not None else ())
                continue
            lines = difflib.unified_diff(
                expected.splitlines(),
                group.text.splitlines(),
                fromfile=label,
                tofile=f"{group.folded} ({len(group.hosts)})",
                lineterm="",
            )
            self._out.write("".join(f"{self._paint(line)}\n" for line in lines))
        if identical:
            line = f"{fold(identical)}: identical to {name}"
            self._out.write(paint(line, DIM, self._color) + "\n")
        elif self._ref is None and len(groups) == 1:
            line = f"{name}: all identical"
            self._out.write(paint(line, DIM, self._color) + "\n")
        self._out.flush()

    def _paint(self, line: str) -> str:
        if not self._raw:
            line = visible(line)
        if line.startswith(("+++", "---", "@@")):
            return paint(line, CYAN, self._color)
        if line.startswith("+"):
            return paint(line, GREEN, self._color)
        if line.startswith("-"):
            return paint(line, RED, self._color)
        return line
