"""The shape every output mode has, and terminal colour that honours NO_COLOR."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO

from bastion.models import Event, HostResult

RED = "31"
GREEN = "32"
YELLOW = "33"
CYAN = "36"
DIM = "2"
BOLD = "1"
HOST_PALETTE = ("36", "32", "33", "35", "34", "96", "92", "93", "95", "94")
"""Host prefix colours, in order of the hosts (red is kept for stderr and failures)."""


class Renderer(Protocol):
    """Consumes events while a run goes on, then the final results once."""

    def handle(self, event: Event) -> None:
        """Called for every event, in order, on the event loop's thread."""
        ...

    def finish(self, results: Sequence[HostResult]) -> None:
        """Called once, after the last host has finished."""
        ...


def wants_color(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, code: str, enabled: bool) -> str:
    """Wrap ``text`` in an ANSI colour when ``enabled``."""
    return f"\x1b[{code}m{text}\x1b[0m" if enabled else text


def host_colors(hosts: Iterable[str]) -> dict[str, str]:
    """A colour per host, the palette's in turn, so neighbours in the output differ."""
    return {host: HOST_PALETTE[i % len(HOST_PALETTE)] for i, host in enumerate(hosts)}


@dataclass(frozen=True, slots=True)
class Display:
    """How hosts' output is shown: ``raw`` (``--raw``) and ``prefix`` (False: ``-N``)."""

    raw: bool = False
    """Write hosts' control characters as they came, instead of `visible` notation."""
    prefix: bool = True
    """Prefix lines with their hosts (``-N`` turns it off, like pdsh and clush)."""
