"""SIGTERM ends a run the way Ctrl-C does: remote commands stopped, summary, record, history.

A service manager, `timeout(1)` or a CI job cancelling bastion sends SIGTERM. Python's default
is to die on the spot: no summary, no history entry, the output spool left in /tmp, and the
remote commands left running. `sigterm_as_interrupt` turns the signal into the SIGINT that
asyncio's runner already handles (it cancels the run, and the Ctrl-C path stops every remote
process group), and remembers it, so the command exits 143 (128 + SIGTERM) instead of 130.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

EXIT_TERMINATED = 128 + signal.SIGTERM
"""The exit code of a run ended by SIGTERM (143), as a shell reports a process it killed."""


@dataclass(slots=True)
class Termination:
    """Whether SIGTERM arrived while the run was going."""

    received: bool = False

    def exit_code(self, interrupted_code: int) -> int:
        """143 after SIGTERM, else the code of a Ctrl-C interruption."""
        return EXIT_TERMINATED if self.received else interrupted_code

    def describe(self) -> str:
        return "terminated (SIGTERM)" if self.received else "interrupted"


@contextmanager
def sigterm_as_interrupt() -> Iterator[Termination]:
    """While inside, SIGTERM takes the Ctrl-C path; the previous handler is restored after."""
    termination = Termination()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        termination.received = True
        signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield termination
    finally:
        signal.signal(signal.SIGTERM, previous)
