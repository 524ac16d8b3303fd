"""``-o inline`` (the default): each line as it arrives, prefixed with its host.

Into a pipe or a file the format is pdsh's and clush's, byte for byte: ``host: line``, one
space, no padding, no colour, so ``dshbak -c``, ``clubak -b`` and ``cut -d: -f2-`` see the
same text for every host. On a terminal the host names are padded so the text lines up (also
between stdout and ``[stderr]`` lines when both streams are on the screen), and each host's
prefix has its own colour. A host's text is shown through `visible` unless ``raw``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TextIO

from bastion.models import Event, HostOutput, HostResult
from bastion.render.base import RED, host_colors, paint
from bastion.render.visible import visible

STDERR_MARK = " [stderr]"


class InlineRenderer:
    """Writes ``host: line`` to stdout, and ``host [stderr]: line`` to stderr, as lines arrive."""

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        host_width: int = 0,
        *,
        color: bool = False,
        hosts: Iterable[str] = (),
        align_streams: bool = False,
        prefix: bool = True,
        raw: bool = False,
    ) -> None:
        """``host_width`` pads names to that many characters (0: the pdsh format, unpadded);
        ``align_streams`` pads stdout's prefix as wide as stderr's; ``prefix`` False is pdsh
        ``-N``; ``raw`` writes the hosts' control characters as they came."""
        self._out = out
        self._err = err
        self._width = host_width
        self._stdout_width = host_width + 1 + (len(STDERR_MARK) if align_streams else 0)
        self._color = color
        self._colors = host_colors(hosts)
        self._prefix = prefix
        self._raw = raw
        self._leads: dict[tuple[str, str], str] = {}

    def handle(self, event: Event) -> None:
        if not isinstance(event, HostOutput):
            return
        data = event.data if self._raw else visible(event.data)
        text = data[:-1] if data.endswith("\n") else data
        target = self._out if event.stream == "stdout" else self._err
        if not self._prefix:
            target.write(text + "\n")
            target.flush()
            return
        lead = self._lead(event.host, event.stream)
        # One str.replace instead of a Python loop over lines: a host printing 100 MB of
        # short lines made that loop bastion's largest cost.
        target.write(lead + text.replace("\n", "\n" + lead) + "\n")
        target.flush()

    def _lead(self, host: str, stream: str) -> str:
        """``host: `` (padded, coloured on a terminal), computed once per host and stream."""
        key = (host, stream)
        lead = self._leads.get(key)
        if lead is None:
            code = self._colors.get(host, self._colors.get("", "36"))
            if stream == "stdout":
                label = f"{host}:"
                pad = " " * max(0, self._stdout_width - len(label))
                lead = paint(label, code, self._color) + pad + " "
            else:
                label = f"{host}{STDERR_MARK}:"
                pad = " " * max(0, self._width + len(STDERR_MARK) + 1 - len(label))
                lead = (
                    paint(host, code, self._color)
                    + paint(f"{STDERR_MARK}:", RED, self._color)
                    + pad
                    + " "
                )
            self._leads[key] = lead
        return lead

    def finish(self, results: Sequence[HostResult]) -> None:
        """Inline output is complete as it streams; nothing is left to print."""
