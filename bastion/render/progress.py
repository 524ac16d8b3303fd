"""A live progress line on stderr (done/total, failed, running) while results stream."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bastion.models import Event, HostFinished, HostResult, HostStarted

if TYPE_CHECKING:
    from rich.live import Live
    from rich.text import Text


class LiveProgress:
    """A transient rich status line; output printed meanwhile scrolls above it."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._running = 0
        self._done = 0
        self._failed = 0
        self._live: Live | None = None

    def start(self) -> None:
        """Show the line; call before building renderers so they write through rich's proxy."""
        from rich.console import Console
        from rich.live import Live

        self._live = Live(
            self._line(),
            console=Console(file=sys.stderr),
            transient=True,
            refresh_per_second=8,
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=True,
        )
        self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def handle(self, event: Event) -> None:
        if isinstance(event, HostStarted):
            self._running += 1
        elif isinstance(event, HostFinished):
            self._running -= 1
            self._done += 1
            if not event.result.succeeded:
                self._failed += 1
        else:
            return
        if self._live is not None:
            self._live.update(self._line())

    def finish(self, results: Sequence[HostResult]) -> None:
        self.stop()

    def _line(self) -> Text:
        from rich.text import Text

        line = Text()
        line.append(f"{self._done}/{self._total} done", style="bold")
        line.append(f"  {self._running} running")
        if self._failed:
            line.append(f"  {self._failed} not ok", style="bold red")
        return line
