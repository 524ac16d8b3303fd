"""Live progress on a terminal: done/total while a run streams, what runs while a step runs.

`LiveProgress` (run, copy, fetch): ``12/100 done  30 running  1 not ok``, between batches
``pausing 6 s`` counting down, and below it the hosts running for more than `SLOW_S`
seconds, longest first, each with its time and its last output line (which host hangs).
`PlayProgress` (play, cluster): the step and how long it has run, then a line per running
host with its elapsed time and the last line it printed, so a ten-minute ``kubeadm init``
visibly moves. Both sit on a `StatusBoard`, below the output, and vanish before the
summary. Every host text shown is passed through `visible`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from bastion.models import Event, HostFinished, HostOutput, HostResult, HostStarted
from bastion.render.base import BOLD, RED, paint, wants_color
from bastion.render.status_board import StatusBoard
from bastion.render.visible import visible

HOST_ROWS = 6
"""Running hosts shown one per line; more are counted on one line."""
SLOW_S = 2.0
"""A run's host is listed under the counts once it has run this long."""
LINE_CHARS = 300
"""Of a host's last line, what is kept for the board (which cuts it to the window)."""


def elapsed(seconds: float) -> str:
    """``7s``, ``4m12s``, ``1h03m``: short enough for a status line."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def last_line(text: str) -> str | None:
    """The last non-blank line of ``text``, made visible; None when there is none.

    Looks only at the end of the text: a chunk may be megabytes of output.
    """
    end = len(text)
    while end:
        while end and text[end - 1] in "\r\n":
            end -= 1
        start = text.rfind("\n", 0, end) + 1
        line = text[max(start, end - LINE_CHARS) : end].strip()
        if line:
            return visible(line)
        end = start
    return None


class _StepHosts:
    """The hosts of the running step: when each started and ended, the last line it printed."""

    def __init__(self, hosts: Sequence[str] = ()) -> None:
        self.started = time.monotonic()
        self.hosts = list(hosts)
        self.running: dict[str, float] = {}
        self.done: set[str] = set()
        self.last: dict[str, str] = {}

    def host(self, host: str, running: bool) -> None:
        if running:
            self.running[host] = time.monotonic()
        else:
            self.running.pop(host, None)
            self.done.add(host)

    def output(self, host: str, text: str) -> None:
        line = last_line(text)
        if line is not None:
            self.last[host] = line

    def rows(self, color: bool) -> list[str]:
        now = time.monotonic()
        hosts = sorted(self.running, key=lambda h: self.running[h])  # longest-running first
        shown = hosts[:HOST_ROWS]
        width = max((len(h) for h in shown), default=0)
        rows = []
        for host in shown:
            row = f"  {host.ljust(width)}  {elapsed(now - self.running[host]):>6}"
            if host in self.last:
                row += "  " + paint(self.last[host], "2", color)
            rows.append(row)
        if len(hosts) > len(shown):
            rows.append(f"  ... and {len(hosts) - len(shown)} more running")
        return rows


class LiveProgress:
    """``done/total  running  not ok`` below a run's output, on stderr."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._running = 0
        self._done = 0
        self._failed = 0
        self._pause_until: float | None = None
        self._started: dict[str, float] = {}
        self._last: dict[str, str] = {}
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
        board = self._board
        if board is None:
            return
        with board.lock:
            if isinstance(event, HostStarted):
                self._running += 1
                self._pause_until = None
                self._started[event.host] = time.monotonic()
            elif isinstance(event, HostOutput):
                line = last_line(event.data)
                if line is not None:
                    self._last[event.host] = line
                return  # shown at the next tick: output itself redraws the board
            elif isinstance(event, HostFinished):
                host = event.result.host
                if self._started.pop(host, None) is not None:  # skipped hosts never started
                    self._running -= 1
                self._last.pop(host, None)
                self._done += 1
                if not event.result.succeeded:
                    self._failed += 1
            else:
                return
        board.refresh()

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
        return [line, *self._slow_rows()]

    def _slow_rows(self) -> list[str]:
        now = time.monotonic()
        slow = sorted(
            (h for h, at in self._started.items() if now - at >= SLOW_S),
            key=lambda h: self._started[h],
        )
        shown = slow[:HOST_ROWS]
        width = max((len(h) for h in shown), default=0)
        rows = []
        for host in shown:
            row = f"  {host.ljust(width)}  {elapsed(now - self._started[host]):>6}"
            if host in self._last:
                row += "  " + paint(self._last[host], "2", self._color)
            rows.append(row)
        if len(slow) > len(shown):
            rows.append(f"  ... and {len(slow) - len(shown)} more running for {SLOW_S:.0f}s+")
        return rows


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
        from bastion.playbook.results import StepFinished, StepHost, StepOutput, StepStarted

        board = self._board
        if board is None:
            return
        with board.lock:
            if isinstance(event, StepStarted):
                self._step = f"STEP {event.number}/{event.total} {visible(event.name)}"
                self._hosts = _StepHosts(event.hosts)
            elif isinstance(event, StepOutput):
                self._hosts.output(event.host, event.text)
            elif isinstance(event, StepHost):
                self._hosts.host(event.host, event.running)
            elif isinstance(event, StepFinished):
                self._step = ""
            else:
                return
        board.refresh()

    def _lines(self) -> list[str]:
        if not self._step:
            return []
        hosts = self._hosts
        took = elapsed(time.monotonic() - hosts.started)
        head = paint(self._step, BOLD, self._color) + f"  running for {took}"
        head += f"  {len(hosts.done)}/{len(hosts.hosts)} done  {len(hosts.running)} running"
        return [head, *hosts.rows(self._color)]
