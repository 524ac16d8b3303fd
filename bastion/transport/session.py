"""One command session, whatever carries it: the part every transport shares.

asyncssh, paramiko, the agent (its client and its pool) and durable jobs each move bytes their
own way; what they make of those bytes is here, once: decode (UTF-8, bad bytes replaced, a
character split across packets kept whole), take the pid line off stdout, keep the first N
characters of each stream for the result while every character goes to the output sink, pause
reading while the consumer is behind, and turn how the command ended (exit status, signal,
connection lost, timed out, stopped) into a `HostResult` with its `Reason`. Socket errors map
to connect failures in one place, a jump host's connection is shared in one place, and an
exception becomes a one-line reason in one place.

This module imports neither asyncssh nor paramiko.
"""

from __future__ import annotations

import asyncio
import codecs
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from bastion.models import Host, HostResult, Reason, Status, Stream
from bastion.transport.base import OutputFlow, OutputSink
from bastion.transport.remote_shell import PidPreamble
from bastion.transport.retry import ConnectFailure

DEFAULT_KEEP_CHARS = 64 * 1024
"""Characters of each stream a result keeps when the caller does not say (the start of it):
every path is bounded, whatever the command prints; the sink still sees every character."""

STREAMS: tuple[Stream, Stream] = ("stdout", "stderr")


def reason(exc: BaseException) -> str:
    """A short, single-line reason for an exception (asyncssh's ``reason``, an OSError's
    ``strerror``, else its text or its type's name)."""
    text = getattr(exc, "reason", None)
    if not isinstance(text, str) or not text:
        if isinstance(exc, OSError) and exc.strerror:
            text = exc.strerror
        else:
            text = str(exc) or type(exc).__name__
    return " ".join(text.split())


class StreamKeeper:
    """A command's output as text: decoded per stream, the first ``keep_chars`` of each kept
    for the result (None: `DEFAULT_KEEP_CHARS`), every character handed to ``sink``."""

    def __init__(self, sink: OutputSink, keep_chars: int | None = None) -> None:
        self._sink = sink
        self._limit = DEFAULT_KEEP_CHARS if keep_chars is None else max(0, keep_chars)
        self._decoders = {
            s: codecs.getincrementaldecoder("utf-8")(errors="replace") for s in STREAMS
        }
        self._parts: dict[Stream, list[str]] = {"stdout": [], "stderr": []}
        self._kept: dict[Stream, int] = {"stdout": 0, "stderr": 0}
        self.seen: dict[Stream, int] = {"stdout": 0, "stderr": 0}
        """Characters of each stream handed to the sink, kept or not."""

    def feed(self, stream: Stream, data: bytes) -> None:
        """Raw bytes of ``stream`` as they arrived."""
        self.feed_text(stream, self._decoders[stream].decode(data))

    def feed_text(self, stream: Stream, text: str) -> None:
        """Text of ``stream`` already decoded (the agent's client gets it so)."""
        if not text:
            return
        self.seen[stream] += len(text)
        room = self._limit - self._kept[stream]
        if room > 0:
            kept = text[:room]
            self._parts[stream].append(kept)
            self._kept[stream] += len(kept)
        self._sink(stream, text)

    def flush(self) -> None:
        """Pass on a trailing partial character (as U+FFFD), once the output has ended."""
        for stream in STREAMS:
            self.feed_text(stream, self._decoders[stream].decode(b"", final=True))

    def text(self, stream: Stream) -> str:
        """The kept start of ``stream``."""
        return "".join(self._parts[stream])


class CommandOutput(StreamKeeper):
    """`StreamKeeper` for a command sent with the pid preamble: the pid line is taken off
    stdout (it may arrive in pieces) and kept as ``pid``, the group to stop on a timeout."""

    def __init__(self, sink: OutputSink, keep_chars: int | None = None) -> None:
        super().__init__(sink, keep_chars)
        self._preamble = PidPreamble()

    @property
    def pid(self) -> int | None:
        return self._preamble.pid

    def feed(self, stream: Stream, data: bytes) -> None:
        super().feed(stream, self._preamble.feed(data) if stream == "stdout" else data)


class FlowControl:
    """Pauses reading a command's output while its consumer is behind (`OutputFlow`).

    ``pause`` and ``resume`` stop and restart reading the channel; while it is paused the
    SSH window fills and the remote command blocks on its writes, so nothing is buffered here.
    """

    def __init__(
        self, flow: OutputFlow | None, pause: Callable[[], None], resume: Callable[[], None]
    ) -> None:
        self._flow = flow
        self._pause = pause
        self._resume_reading = resume
        self.paused = False

    def after_chunk(self) -> None:
        """Ask the flow after each chunk handed to the sink; pause when it says so."""
        if self._flow is not None and not self.paused and self._flow.throttle(self._resume):
            self.paused = True
            self._pause()

    def _resume(self) -> None:
        if self.paused:
            self.paused = False
            self._resume_reading()

    def release(self) -> None:
        """Read on regardless of the flow (a stopping command's close comes after its data:
        at most one SSH window more reaches the consumer)."""
        self._flow = None
        self._resume()


@dataclass(frozen=True, slots=True)
class CommandEnd:
    """How a command's session ended, as a transport saw it."""

    exit_status: int | None = None
    exit_signal: str | None = None
    """The signal's name without ``SIG`` (``KILL``), when the command was killed by one."""
    lost: str | None = None
    """Why the connection went away before the command's end was known."""
    no_session: str | None = None
    """Why no session could be opened (the command never started)."""
    timeout: float | None = None
    """The timeout that passed (the command was then stopped, or tried to be)."""
    stopped: bool = False
    """After a timeout: the session ended once its process group was signalled."""


def command_result(
    host: Host, started: float, end: CommandEnd, output: StreamKeeper | None = None
) -> HostResult:
    """The `HostResult` of one command, from how it ended and what it printed."""
    if end.no_session is not None:
        status, why, error = (
            Status.UNREACHABLE,
            Reason.NO_SESSION,
            f"cannot open a session: {end.no_session}",
        )
    elif end.timeout is not None:
        outcome = (
            "remote process group stopped"
            if end.stopped
            else "the remote command may still be running (it did not stop when signalled)"
        )
        status, why = Status.TIMEOUT, Reason.TIMEOUT
        error = f"timed out after {end.timeout:g}s; {outcome}"
    elif end.exit_signal is not None:
        status, why, error = Status.FAILED, Reason.SIGNAL, f"killed by signal {end.exit_signal}"
    elif end.exit_status is None:
        lost = end.lost or "the session closed without an exit status"
        status, why, error = (
            Status.UNREACHABLE,
            Reason.DROPPED,
            f"connection lost mid-command: {lost}",
        )
    elif end.exit_status == 0:
        status, why, error = Status.OK, None, None
    else:
        status, why, error = Status.FAILED, Reason.EXIT, f"exit status {end.exit_status}"
    return HostResult(
        host=host.name,
        address=host.address,
        status=status,
        exit_status=end.exit_status,
        stdout=output.text("stdout") if output is not None else "",
        stderr=output.text("stderr") if output is not None else "",
        error=error,
        duration_s=time.monotonic() - started,
        reason=why,
    )


def ended_result(
    host: Host, status: Status, error: str | None, started: float, reason: Reason | None = None
) -> HostResult:
    """A result with no command outcome: the host was not reached, or lost, or failed early."""
    return HostResult(
        host=host.name,
        address=host.address,
        status=status,
        error=error,
        duration_s=time.monotonic() - started,
        reason=reason,
    )


def unreachable(host: Host, failure: ConnectFailure, started: float) -> HostResult:
    """The result of a host that could not be connected to."""
    return ended_result(host, Status.UNREACHABLE, failure.message, started, failure.reason)


def exit_status_of_signal(name: str) -> int:
    """128 + the signal's number, as a shell reports a command killed by it (255 if unknown)."""
    number = getattr(signal, f"SIG{name}", None)
    return 128 + int(number) if number is not None else 255


def socket_failure(exc: OSError, address: str, port: int, timeout: float) -> ConnectFailure:
    """What a failed TCP connect to ``address:port`` means, for every transport alike."""
    if isinstance(exc, TimeoutError):
        return ConnectFailure(
            f"connect timed out after {timeout:g}s", reason=Reason.CONNECT_TIMEOUT
        )
    if isinstance(exc, socket.gaierror):
        return ConnectFailure(f"cannot resolve {address}: {exc.strerror}", reason=Reason.REFUSED)
    if isinstance(exc, ConnectionRefusedError):
        return ConnectFailure(f"connection refused by {address}:{port}", reason=Reason.REFUSED)
    if isinstance(exc, ConnectionError):  # reset or aborted during the handshake
        return ConnectFailure(f"connection dropped: {reason(exc)}", reason=Reason.DROPPED)
    return ConnectFailure(
        f"cannot connect to {address}:{port}: {reason(exc)}", reason=Reason.REFUSED
    )


def connect_timed_out(timeout: float, *, answered: bool) -> ConnectFailure:
    """No SSH handshake within ``timeout``; ``answered``: the TCP connection was made."""
    return ConnectFailure(
        f"connect timed out after {timeout:g}s", reason=Reason.CONNECT_TIMEOUT, answered=answered
    )


_C = TypeVar("_C")


class SharedJumps(Generic[_C]):
    """Jump hosts' connections, each opened once for every target behind it.

    ``open`` connects (with the run's retries) and raises `ConnectFailure`; a failure is
    remembered too, so a hundred targets behind a dead jump host cost one attempt.
    """

    def __init__(self, open_connection: Callable[[Host], Awaitable[_C]]) -> None:
        self._open = open_connection
        self._tasks: dict[str, asyncio.Task[_C | ConnectFailure]] = {}

    async def connection(self, jump: Host) -> _C:
        """The shared connection to ``jump``; raises `ConnectFailure` naming the jump host."""
        key = f"{jump.user}@{jump.address}:{jump.port}"
        task = self._tasks.get(key)
        if task is None:

            async def open_once() -> _C | ConnectFailure:
                try:
                    return await self._open(jump)
                except ConnectFailure as exc:
                    return exc

            task = self._tasks[key] = asyncio.ensure_future(open_once())
        opened = await asyncio.shield(task)
        if isinstance(opened, ConnectFailure):
            raise ConnectFailure(
                f"jump host {jump.name} unreachable: {opened.message}",
                reason=opened.reason,
                final=True,
            )
        return opened

    def drain(self) -> Iterator[_C]:
        """Forget every jump connection: those that opened are yielded (to be closed), those
        still opening are cancelled."""
        for task in self._tasks.values():
            if task.done() and not task.cancelled():
                opened = task.result()
                if not isinstance(opened, ConnectFailure):
                    yield opened
            else:
                task.cancel()
        self._tasks.clear()
