"""``-o diff [--ref HOST]``: each distinct output as a unified diff against a reference.

Like ``clush --diff``: the host whose config drifted stands out among a hundred that agree.
The reference is the output most hosts printed (ties: the one seen first, in selection order),
so one drifted first host cannot make every other host look drifted; ``--ref HOST`` makes one
host's output the reference instead. Hosts with the same output share one diff
(``+++ node[4,7]``); hosts identical to the reference are folded onto one line at the end.
Only stdout is compared; stderr still goes to stderr, and the summary still gives each host's
status. Diff lines are shown through `visible` unless ``raw``.

Memory is bounded as on every path: whole outputs are compared by a SHA-256 of every character
streamed (so "identical" is exact however large), and the diff shown is of the start each
result keeps (64 Ki characters); a diff of a larger output says so.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Sequence
from typing import TextIO

from bastion.gather import group_by_output
from bastion.hostset import fold
from bastion.models import Event, HostOutput, HostResult
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
        self._digests: dict[str, hashlib._Hash] = {}
        self._sizes: dict[str, int] = {}

    def handle(self, event: Event) -> None:
        """Nothing is shown as hosts run; each host's whole stdout is hashed as it streams."""
        if isinstance(event, HostOutput) and event.stream == "stdout":
            self._digests.setdefault(event.host, hashlib.sha256()).update(
                event.data.encode("utf-8", "surrogatepass")
            )
            self._sizes[event.host] = self._sizes.get(event.host, 0) + len(event.data)

    def _whole(self, result: HostResult) -> str:
        """A fingerprint of the host's whole stdout (of the kept text when none streamed)."""
        digest = self._digests.get(result.host)
        return self._whole_of(result.stdout) if digest is None else digest.hexdigest()

    def _cut(self, result: HostResult | None) -> bool:
        """Whether the result keeps only the start of what the host printed."""
        return result is not None and self._sizes.get(result.host, 0) > len(result.stdout)

    def finish(self, results: Sequence[HostResult]) -> None:
        by_host = {r.host: r for r in results}
        groups = group_by_output(results, self._whole)
        if self._ref is None:
            majority = groups[0] if groups else None
            reference = by_host[majority.hosts[0]] if majority is not None else None
            name = majority.folded if majority is not None else "none"
            label = f"{name} ({len(majority.hosts) if majority else 0} of {len(results)} hosts)"
        else:
            reference = by_host.get(self._ref)
            name, label = self._ref, f"{self._ref} (reference)"
            if reference is None or not reference.succeeded:
                status = reference.status if reference is not None else "not run"
                self._err.write(
                    f"bastion: the reference host {self._ref} is {status}; "
                    "its output (possibly empty) was compared all the same\n"
                )
        expected = reference.stdout if reference is not None else ""
        expected_whole = self._whole(reference) if reference is not None else self._whole_of("")
        identical: list[str] = []
        for group in groups:
            hosts = [h for h in group.hosts if h != self._ref]
            if group.text == expected_whole:
                identical.extend(hosts if self._ref is not None else ())
                continue
            first = by_host[group.hosts[0]]
            cut = self._cut(first) or self._cut(reference)
            if cut and first.stdout == expected:
                line = (
                    f"{group.folded} ({len(group.hosts)}): the same first {len(expected)} "
                    f"characters as {name}, different after them"
                )
                self._out.write(self._paint("+++ " + line) + "\n")
                continue
            lines = difflib.unified_diff(
                expected.splitlines(),
                first.stdout.splitlines(),
                fromfile=label,
                tofile=f"{group.folded} ({len(group.hosts)})",
                lineterm="",
            )
            self._out.write("".join(f"{self._paint(line)}\n" for line in lines))
            if cut:
                note = "(a diff of the first characters each result keeps; the outputs are longer)"
                self._out.write(paint(note, DIM, self._color) + "\n")
        if identical:
            line = f"{fold(identical)}: identical to {name}"
            self._out.write(paint(line, DIM, self._color) + "\n")
        elif self._ref is None and len(groups) == 1:
            line = f"{name}: all identical"
            self._out.write(paint(line, DIM, self._color) + "\n")
        self._out.flush()

    @staticmethod
    def _whole_of(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

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
