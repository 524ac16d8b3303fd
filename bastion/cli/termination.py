"""Ctrl-C and SIGTERM end a run the same way: remote commands stopped, summary, record, history.

A service manager, `timeout(1)` or a CI job cancelling bastion sends SIGTERM. Python's default
is to die on the spot: no summary, no history entry, the output spool left in /tmp, and the
remote commands left running. `run_stoppable` runs the work as asyncio's runner runs it for
Ctrl-C: on SIGTERM the run's task is cancelled, which stops every remote process group, and the
command exits 143 (128 + SIGTERM) instead of 130. (It does not re-raise SIGINT: a job started
in the background by a non-interactive shell ignores SIGINT.)

Outside `run_stoppable` (start-up, an audit's or `jobs`' probes, the summary), `sigterm_interrupts`
makes SIGTERM raise KeyboardInterrupt, Ctrl-C's path: asyncio cancels what runs (remote commands
stopped), and the CLI says ``bastion: terminated (SIGTERM)`` and exits 143.
"""

from __future__ import annotations

import signal
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

from bastion.outcome import EXIT_INTERRUPTED

EXIT_TERMINATED = 128 + signal.SIGTERM
"""The exit code of a run ended by SIGTERM (143), as a shell reports a process it killed."""

T = TypeVar("T")

_sigterm_seen: list[bool] = []
"""Appended to when SIGTERM arrived outside `run_stoppable` (see `sigterm_interrupts`)."""


def _interrupt_on_sigterm(signum: int, frame: FrameType | None) -> None:
    _sigterm_seen.append(True)
    raise KeyboardInterrupt


def sigterm_interrupts() -> None:
    """From now on SIGTERM takes Ctrl-C's path wherever `run_stoppable` does not handle it."""
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)


@contextmanager
def records_first() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while the summary, the record and the history are written.

    Writing them takes milliseconds; a second Ctrl-C in that window would otherwise leave
    run.json or the history without the run. A signal that arrives meanwhile is delivered
    (as KeyboardInterrupt) once they are written. An ignored signal stays ignored.
    """
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(number) is not signal.SIG_IGN:
            previous[number] = signal.signal(number, hold)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if held:
            if signal.SIGTERM in held:
                _sigterm_seen.append(True)
            raise KeyboardInterrupt


def terminated_by_sigterm() -> bool:
    """Whether a KeyboardInterrupt came from SIGTERM (`sigterm_interrupts`)."""
    return bool(_sigterm_seen)


@dataclass(slots=True)
class Stop:
    """Whether, and how, a run was stopped before it finished."""

    interrupted: bool = False
    """Ctrl-C or SIGTERM arrived."""
    terminated: bool = False
    """It was SIGTERM."""

    @property
    def exit_code(self) -> int:
        """143 after SIGTERM, 130 after Ctrl-C (only meaningful when interrupted)."""
        return EXIT_TERMINATED if self.terminated else EXIT_INTERRUPTED

    def describe(self) -> str:
        return "terminated (SIGTERM)" if self.terminated else "interrupted"


def run_stoppable(work: Coroutine[Any, Any, T]) -> tuple[T | None, Stop]:
    """`asyncio.run(work)`; after Ctrl-C or SIGTERM, None and how it was stopped."""
    import asyncio  # here: main.py imports this module before a --version needs no asyncio

    stop = Stop()
    try:
        return asyncio.run(_until_sigterm(work, stop)), stop
    except KeyboardInterrupt:
        pass
    except asyncio.CancelledError:
        if not stop.terminated:
            raise
    stop.interrupted = True
    return None, stop


async def _until_sigterm(work: Coroutine[Any, Any, T], stop: Stop) -> T:
    """Await ``work``; SIGTERM cancels it (CancelledError), noted in ``stop``."""
    import asyncio

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def on_sigterm() -> None:
        stop.terminated = True
        task.cancel()

    previous = signal.getsignal(signal.SIGTERM)
    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        return await work
    finally:
        loop.remove_signal_handler(signal.SIGTERM)  # which sets SIG_DFL: put back what was
        signal.signal(signal.SIGTERM, previous)
