"""``-o diff --ref HOST``: each host's output as a unified diff against a reference host's.

Like ``clush --diff``: the host whose config drifted stands out among a hundred that agree.
Hosts with the same output share one diff (``+++ node[4,7]``); hosts identical to the reference
are folded onto one line at the end. Only stdout is compared; stderr still goes to stderr, and
the summary still gives each host's status.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TextIO

from bastion.gather import group_by_output
from bastion.hostset import fold
from bastion.models import Event, HostResult
from bastion.render.base import CYAN, DIM, GREEN, RED, paint


class DiffRenderer:
    """Prints nothing while hosts run; then the diffs, then who is identical to the reference."""

    def __init__(self, out: TextIO, err: TextIO, ref: str, *, color: bool = False) -> None:
        self._out = out
        self._err = err
        self._ref = ref
        self._color = color

    def handle(self, event: Event) -> None:
        """A diff needs the reference's whole output, so nothing is shown as hosts run."""

    def finish(self, results: Sequence[HostResult]) -> None:
        reference = next((r for r in results if r.host == self._ref), None)
        expected = reference.stdout if reference is not None else ""
        others = [r for r in results if r.host != self._ref]
        identical: list[str] = []
        for group in group_by_output(others, lambda r: r.stdout):
            if group.text == expected:
                identical.extend(group.hosts)
                continue
            lines = difflib.unified_diff(
                expected.splitlines(),
                group.text.splitlines(),
                fromfile=f"{self._ref} (reference)",
                tofile=f"{group.folded} ({len(group.hosts)})",
                lineterm="",
            )
            self._out.write("".join(f"{self._paint(line)}\n" for line in lines))
        if reference is None or not reference.succeeded:
            status = reference.status if reference is not None else "not run"
            self._err.write(
                f"bastion: the reference host {self._ref} is {status}; "
                "its output (possibly empty) was compared all the same\n"
            )
        if identical:
            line = f"{fold(identical)}: identical to {self._ref}"
            self._out.write(paint(line, DIM, self._color) + "\n")
        self._out.flush()

    def _paint(self, line: str) -> str:
        if line.startswith(("+++", "---", "@@")):
            return paint(line, CYAN, self._color)
        if line.startswith("+"):
            return paint(line, GREEN, self._color)
        if line.startswith("-"):
            return paint(line, RED, self._color)
        return line
