"""Live progress on a terminal: done/total while a run streams, what runs while a step runs.

`LiveProgress` (run, copy, fetch): ``12/100 done  30 running  1 not ok``, and between
batches ``pausing 6 s`` counting down. `PlayProgress` (play, cluster): the step, then one line
per running host with its elapsed time and the last line it printed, so a ten-minute
``kubeadm init`` visibly moves. Both sit on a `StatusBoard`, below the output, and vanish
before the summary. Every host text shown is passed through `visible`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from bastion.models import Event, HostFinished, HostResult, HostStarted
from bastion.render.base import BOLD, RED, paint, wants_color
from bastion.render.status_board import StatusBoard
from bastion.render.visible import visible

HOST_ROWS = 6
"""Running hosts shown one per line by `PlayProgress`; more are counted on one line."""


def elapsed(seconds: float) -> str:
    """``7s``, ``4m12s``, ``1h03m``: short enough for a status line."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def last_line(text: str) -> str | None:
    """The last non-blank line of ``text``, made visible; None when there is none."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return visible(line.strip())
    return None


class _StepHosts:
    """The hosts of the running step: the last line each printed, and when."""

    def __init__(self, hosts: Sequence[str] = ()) -> None:
        self.started = time.monotonic()
        self.hosts = list(hosts)
        self.last: dict[str, tuple[str, float]] = {}

    def output(self, host: str, text: str) -> None:
        line = last_line(text)
        if line is not None:
            self.last[host] = (line, time.monotonic())

    def rows(self, color: bool) -> list[str]:
        now = time.monotonic()
        # Hosts that printed lately first: they are the ones moving.
        hosts = sorted(self.hosts, key=lambda h: -self.last[h][1] if h in self.last else 0)
        shown = hosts[:HOST_ROWS]
        width = max((len(h) for h in shown), default=0)
        rows = []
        for host in shown:
            if host in self.last:
                line, at = self.last[host]
                rows.append(f"  {host.ljust(width)}  {elapsed(now - at):>6} ago  {line}")
            else:
                rows.append(f"  {host.ljust(width)}  " + paint("no output yet", "2", color))
        if len(hosts) > len(shown):
            rows.append(f"  ... and {len(hosts) - len(shown)} more hosts")
        return rows


class LiveProgress:
    """``done/total  running  not ok`` below a run's output, on stderr."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._running = 0
        self._done = 0
        self._failed = 0
        self._pause_until: float | None = None
        self._color = wants_color(sys.stderr)
        self._board: StatusBoard | None = None

    def start(self) -> None:
        """Show the line; call before building renderers so they write above it."""
        self._board = StatusBoard(sys.stderr, self._lines)
        self._board.start()

    def stop(self) -> None:
        if self._board is not None:
            self._board.stop()
            self._board = None

    def handle(self, event: Event) -> None:
        if isinstance(event, HostStarted):
            self._running += 1
            self._pause_until = None
        elif isinstance(event, HostFinished):
            if self._running:  # a skipped host (batches) finishes without starting
                self._running -= 1
            self._done += 1
            if not event.result.succeeded:
                self._failed += 1
        else:
            return
        if self._board is not None:
            self._board.refresh()

    def pausing(self, seconds: float) -> None:
        """A batch pause begins: count it down until the next host starts."""
        self._pause_until = time.monotonic() + seconds
        if self._board is not None:
            self._board.refresh()

    def finish(self, results: Sequence[HostResult]) -> None:
        self.stop()

    def _lines(self) -> list[str]:
        line = paint(f"{self._done}/{self._total} done", BOLD, self._color)
        line += f"  {self._running} running"
        if self._failed:
            line += "  " + paint(f"{self._failed} not ok", RED, self._color)
        if self._pause_until is not None:
            left = max(0.0, self._pause_until - time.monotonic())
            line += f"  pausing {left:.0f} s before the next batch"
        return [line]


class PlayProgress:
    """The running step with its elapsed time and, per host, the last line it printed."""

    def __init__(self) -> None:
        self._step = ""
        self._hosts = _StepHosts()
        self._color = wants_color(sys.stderr)
        self._board: StatusBoard | None = None

    def start(self) -> None:
        """Show the board; call before the play's renderer writes anything."""
        self._board = StatusBoard(sys.stderr, self._lines)
        self._board.start()

    def stop(self) -> None:
        if self._board is not None:
            self._board.stop()
            self._board = None

    def handle(self, event: object) -> None:
        """Take a play event (`bastion.playbook.results`) into account."""
        from bastion.playbook.results import StepFinished, StepOutput, StepStarted

        board = self._board
        if board is None:
            return
        with board.lock:
            if isinstance(event, StepStarted):
                self._step = f"STEP {event.number}/{event.total} {visible(event.name)}"
                self._hosts = _StepHosts(event.hosts)
            elif isinstance(event, StepOutput):
                self._hosts.output(event.host, event.text)
            elif isinstance(event, StepFinished):
                self._step = ""
            else:
                return
        board.refresh()

    def _lines(self) -> list[str]:
        if not self._step:
            return []
        took = elapsed(time.monotonic() - self._hosts.started)
        head = paint(self._step, BOLD, self._color) + f"  running for {took}"
        return [head, *self._hosts.rows(self._color)]
