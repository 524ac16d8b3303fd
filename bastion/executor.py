"""Fans a plan out to hosts under concurrency limits and streams events as hosts progress.

Per-host outcomes are `HostResult`s, never exceptions. Every consumer (live progress, the output
renderers, the run record, the history log) reads the same event stream.
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bastion.errors import UsageError
from bastion.models import (
    Event,
    Host,
    HostFinished,
    HostOutput,
    HostResult,
    HostStarted,
    Status,
    Stream,
)
from bastion.transport.base import CommandSpec, ConnectOptions, Transport

EventSink = Callable[[Event], None]

KNOWN_TRANSPORTS = ("asyncssh",)
PARTIAL_LINE_LIMIT = 64 * 1024
"""A line longer than this is passed on in pieces rather than held back."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Limits and policies for one run."""

    forks: int = 64
    timeout: float | None = None
    stdin: bytes | None = None
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    keep_output_chars: int | None = None
    """Characters of each stream a `HostResult` keeps; None keeps all (see `CommandSpec`)."""


@dataclass(frozen=True, slots=True)
class Task:
    """One host and the exact command it will run."""

    host: Host
    command: str


def check_transports(tasks: Sequence[Task]) -> None:
    """Refuse, before connecting anywhere, a host whose transport this build does not have."""
    for task in tasks:
        if task.host.transport not in KNOWN_TRANSPORTS:
            raise UsageError(
                f"host {task.host.name}: transport {task.host.transport!r} is not available "
                f"in this version (available: {', '.join(KNOWN_TRANSPORTS)})"
            )


def _new_transport(name: str, options: ConnectOptions) -> Transport:
    if name == "asyncssh":
        from bastion.transport.asyncssh_transport import AsyncsshTransport

        return AsyncsshTransport(options)
    raise UsageError(f"unknown transport {name!r}")


class _LineAssembler:
    """Turns a host's output chunks into events that hold whole lines."""

    def __init__(self, host: str, emit: EventSink) -> None:
        self._host = host
        self._emit = emit
        self._pending: dict[Stream, str] = {"stdout": "", "stderr": ""}

    def feed(self, stream: Stream, text: str) -> None:
        buffered = self._pending[stream] + text
        cut = buffered.rfind("\n") + 1
        if cut == 0 and len(buffered) < PARTIAL_LINE_LIMIT:
            self._pending[stream] = buffered
            return
        if cut == 0:
            cut = len(buffered)
        self._pending[stream] = buffered[cut:]
        self._emit(HostOutput(self._host, stream, buffered[:cut]))

    def flush(self) -> None:
        for stream, rest in self._pending.items():
            if rest:
                self._emit(HostOutput(self._host, stream, rest))
                self._pending[stream] = ""


async def execute(tasks: Sequence[Task], options: RunOptions, emit: EventSink) -> list[HostResult]:
    """Run every task, at most ``options.forks`` hosts at a time; results in task order."""
    check_transports(tasks)
    transports: dict[str, Transport] = {}
    slots = asyncio.Semaphore(max(1, options.forks))

    async def run_one(task: Task) -> HostResult:
        async with slots:
            emit(HostStarted(task.host.name))
            transport = transports.get(task.host.transport)
            if transport is None:
                transport = transports[task.host.transport] = _new_transport(
                    task.host.transport, options.connect
                )
            lines = _LineAssembler(task.host.name, emit)
            spec = CommandSpec(
                task.command, options.timeout, options.stdin, options.keep_output_chars
            )
            try:
                result = await transport.run(task.host, spec, lines.feed)
            except Exception as exc:  # a bug must not cost the other hosts their output
                if os.environ.get("BASTION_DEBUG"):
                    traceback.print_exc(file=sys.stderr)
                result = HostResult(
                    host=task.host.name,
                    address=task.host.address,
                    status=Status.FAILED,
                    error=f"internal error (please report): {type(exc).__name__}: {exc}",
                )
            lines.flush()
            emit(HostFinished(result))
            return result

    try:
        return list(await asyncio.gather(*(run_one(task) for task in tasks)))
    finally:
        await asyncio.gather(*(t.close() for t in transports.values()), return_exceptions=True)


def run(tasks: Sequence[Task], options: RunOptions, emit: EventSink) -> list[HostResult]:
    """Synchronous entry point: run the tasks on a fresh event loop."""
    return asyncio.run(execute(tasks, options, emit))
