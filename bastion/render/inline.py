"""``-o inline`` (the default): each line as it arrives, prefixed with its host."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from bastion.models import Event, HostOutput, HostResult
from bastion.render.base import CYAN, RED, paint

STDERR_MARK = " [stderr]"


class InlineRenderer:
    """Writes ``host: line`` to stdout, and ``host [stderr]: line`` to stderr, as lines arrive."""

    def __init__(self, out: TextIO, err: TextIO, host_width: int, *, color: bool = False) -> None:
        self._out = out
        self._err = err
        self._width = host_width
        self._color = color

    def handle(self, event: Event) -> None:
        if not isinstance(event, HostOutput):
            return
        if event.stream == "stdout":
            prefix = paint(f"{event.host}:".ljust(self._width + 1), CYAN, self._color)
            target = self._out
        else:
            label = f"{event.host}{STDERR_MARK}:".ljust(self._width + len(STDERR_MARK) + 1)
            prefix = paint(label, RED, self._color)
            target = self._err
        text = event.data[:-1] if event.data.endswith("\n") else event.data
        # One str.replace instead of a Python loop over lines: a host printing 100 MB of
        # short lines made that loop bastion's largest cost.
        lead = f"{prefix} "
        target.write(lead + text.replace("\n", "\n" + lead) + "\n")
        target.flush()

    def finish(self, results: Sequence[HostResult]) -> None:
        """Inline output is complete as it streams; nothing is left to print."""
