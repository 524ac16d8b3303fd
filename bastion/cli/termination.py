"""SIGTERM ends a run the way Ctrl-C does: remote commands stopped, summary, record, history.

A service manager, `timeout(1)` or a CI job cancelling bastion sends SIGTERM. Python's default
is to die on the spot: no summary, no history entry, the output spool left in /tmp, and the
remote commands left running. `until_sigterm` runs the work as asyncio's runner runs it for
Ctrl-C: on SIGTERM the run's task is cancelled, which stops every remote process group, and the
command exits 143 (128 + SIGTERM) instead of 130. (It does not re-raise SIGINT: a job started
in the background by a non-interactive shell ignores SIGINT.)
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

EXIT_TERMINATED = 128 + signal.SIGTERM
"""The exit code of a run ended by SIGTERM (143), as a shell reports a process it killed."""

T = TypeVar("T")


@dataclass(slots=True)
class Termination:
    """Whether SIGTERM arrived while the run was going."""

    received: bool = False

    def exit_code(self, interrupted_code: int) -> int:
        """143 after SIGTERM, else the code of a Ctrl-C interruption."""
        return EXIT_TERMINATED if self.received else interrupted_code

    def describe(self) -> str:
        return "terminated (SIGTERM)" if self.received else "interrupted"


async def until_sigterm(work: Coroutine[Any, Any, T], termination: Termination) -> T:
    """Await ``work``; SIGTERM cancels it (CancelledError), noted in ``termination``."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def on_sigterm() -> None:
        termination.received = True
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        return await work
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
