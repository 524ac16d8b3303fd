"""The agent's client: a `Transport` that runs a run's commands through ``bastion agent``.

One Unix socket per run carries every host's request (see `bastion.agent.protocol`). When the
agent cannot be reached (no socket, a dead one, another user's), every host of the run goes
direct through `AsyncsshTransport` instead, after one notice line on stderr. A host whose
request was in flight when the agent went away is reported as a connection lost mid-command,
as a direct run reports a dropped connection: its command may have run. This module does not
import asyncssh unless it fails over, so a warm run skips that import.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bastion.agent.paths import peer_credentials
from bastion.agent.protocol import (
    LINE_LIMIT,
    VERSION,
    Message,
    decode,
    encode,
    host_to_wire,
    jumps_to_wire,
    options_to_wire,
    result_from_wire,
    stdin_to_wire,
)
from bastion.models import Host, HostResult, Reason, Status
from bastion.transport.base import CommandSpec, ConnectOptions, Link, OutputSink, Transport
from bastion.transport.session import StreamKeeper, reason

HELLO_TIMEOUT_S = 5.0
"""How long a live agent may take to greet a client before the run goes direct."""

CLOSE_WAIT_S = 5.0
"""How long `AgentTransport.close` waits for a connection attempt it cancelled to end."""

_notices: set[str] = set()
_served: list[int] = [0]
"""How many commands of this process the agent has run (`served_requests`)."""


def served_requests() -> int:
    """How many commands the agent ran for this process (the summary names the agent then)."""
    return _served[0]


def notice(text: str) -> None:
    """One line on stderr, once per process (several batches share one notice)."""
    if text not in _notices:
        _notices.add(text)
        sys.stderr.write(f"bastion: notice: {text}\n")
        sys.stderr.flush()


class AgentUnavailable(Exception):
    """The agent could not be reached; the run goes direct."""


@dataclass(slots=True)
class _Pending:
    """One host's request in flight: its output so far (the session core keeps its start)
    and its result when it comes."""

    output: StreamKeeper
    done: asyncio.Future[Message]


class AgentChannel:
    """The run's one connection to the agent, multiplexing requests by id."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self.lost: str | None = None
        self._reading = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, path: Path) -> AgentChannel:
        """Connect and read the agent's greeting; raises `AgentUnavailable`."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(path), limit=LINE_LIMIT), HELLO_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            raise AgentUnavailable(reason(exc)) from exc
        try:
            _, server_uid = peer_credentials(writer.get_extra_info("socket"))
            if server_uid != os.getuid():
                raise AgentUnavailable(f"its socket is served by uid {server_uid}, not by you")
            hello = decode(await asyncio.wait_for(reader.readline(), HELLO_TIMEOUT_S))
            if hello.get("hello") != VERSION:
                raise AgentUnavailable(
                    str(hello.get("error") or f"it speaks protocol {hello.get('hello')!r}")
                )
        except (AgentUnavailable, asyncio.CancelledError):
            writer.close()  # cancelled: the run is closing before the agent greeted it
            raise
        except (OSError, TimeoutError, ValueError) as exc:
            writer.close()
            raise AgentUnavailable(reason(exc) or "it closed the connection") from exc
        return cls(reader, writer)

    async def run(
        self, host: Host, spec: CommandSpec, on_output: OutputSink, options: ConnectOptions
    ) -> HostResult:
        started = time.monotonic()
        request_id = next(self._ids)
        pending = _Pending(
            StreamKeeper(on_output, spec.keep_output_chars),
            asyncio.get_running_loop().create_future(),
        )
        self._pending[request_id] = pending
        message = {
            "op": "run",
            "id": request_id,
            "host": host_to_wire(host),
            "jumps": jumps_to_wire(host, options.jump_hosts),
            "options": options_to_wire(options),
            "command": spec.command,
            "timeout": spec.timeout,
            "stdin": stdin_to_wire(spec.stdin),
        }
        try:
            self._writer.write(encode(message))
            if spec.stdin:
                await self._writer.drain()
            answer = await pending.done
        except asyncio.CancelledError:
            with contextlib.suppress(OSError, RuntimeError):
                self._writer.write(encode({"op": "cancel", "id": request_id}))
            raise
        except (OSError, ConnectionError) as exc:
            self.lost = self.lost or reason(exc)
            answer = {"lost": self.lost}
        finally:
            self._pending.pop(request_id, None)
        if "result" in answer:
            return result_from_wire(
                answer["result"], pending.output.text("stdout"), pending.output.text("stderr")
            )
        error = (
            f"connection lost mid-command: the bastion agent went away ({answer['lost']})"
            if "lost" in answer
            else f"the bastion agent refused the request: {answer.get('error')}"
        )
        return HostResult(
            host=host.name,
            address=host.address,
            status=Status.UNREACHABLE if "lost" in answer else Status.FAILED,
            stdout=pending.output.text("stdout"),
            stderr=pending.output.text("stderr"),
            error=error,
            duration_s=time.monotonic() - started,
            reason=Reason.DROPPED if "lost" in answer else Reason.INTERNAL,
        )

    async def _read(self) -> None:
        why = "it closed the connection"
        try:
            while line := await self._reader.readline():
                message = decode(line)
                pending = self._pending.get(message.get("id", -1))
                if pending is None:
                    continue
                stream = message.get("stream")
                if stream in ("stdout", "stderr"):
                    pending.output.feed_text(stream, str(message.get("data", "")))
                elif not pending.done.done():
                    pending.done.set_result(message)
        except (OSError, ValueError) as exc:
            why = reason(exc)
        self.lost = why
        for pending in self._pending.values():
            if not pending.done.done():
                pending.done.set_result({"lost": why})

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await self._reading


class AgentTransport:
    """Runs commands through the agent; goes direct when it is unavailable (see module doc)."""

    name = "agent"

    def __init__(self, socket_path: Path, options: ConnectOptions) -> None:
        self._path = socket_path
        self._options = options
        self._channel: asyncio.Task[AgentChannel | None] | None = None
        self._direct: Transport | None = None

    async def run(self, host: Host, spec: CommandSpec, on_output: OutputSink) -> HostResult:
        channel = await self._connected()
        if channel is None or channel.lost is not None:
            if channel is not None:
                notice(f"the bastion agent went away ({channel.lost}); connecting directly")
            return await self._fallback().run(host, spec, on_output)
        result = await channel.run(host, spec, on_output, self._options)
        _served[0] += 1
        return result

    async def open_link(self, host: Host, *, retry: bool) -> Link:
        """Durable jobs do not go through the agent: a direct connection."""
        return await self._fallback().open_link(host, retry=retry)

    async def close(self) -> None:
        """Close the agent connection, cancelling it if still connecting (and waiting for
        that, at most `CLOSE_WAIT_S`), then the direct transport if the run failed over."""
        if self._channel is not None:
            if not self._channel.done():
                self._channel.cancel()
                await asyncio.wait([self._channel], timeout=CLOSE_WAIT_S)
            if self._channel.done() and not self._channel.cancelled():
                channel = self._channel.result()
                if channel is not None:
                    await channel.close()
        if self._direct is not None:
            await self._direct.close()

    async def _connected(self) -> AgentChannel | None:
        if self._channel is None:
            self._channel = asyncio.ensure_future(self._connect())
        return await asyncio.shield(self._channel)

    async def _connect(self) -> AgentChannel | None:
        try:
            return await AgentChannel.connect(self._path)
        except AgentUnavailable as exc:
            notice(f"the bastion agent is not answering ({exc}); connecting directly")
            return None

    def _fallback(self) -> Transport:
        if self._direct is None:
            from bastion.transport.asyncssh_transport import AsyncsshTransport

            self._direct = AsyncsshTransport(self._options)
        return self._direct
