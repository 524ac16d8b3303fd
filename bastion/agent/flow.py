"""Back-pressure from one agent client's socket to the SSH channels writing to it.

Every request of a client streams its output into that client's one socket. When the bytes
the client has not read yet pass `HIGH_WATER`, each channel that delivers more output is
paused (`OutputFlow.throttle` says so); one drain task per client waits, without polling,
until asyncio's transport buffer is back under `LOW_WATER`, then resumes them all. A paused
channel stops granting SSH window, so the remote command blocks on its write as it would
with a slow direct connection: the agent holds at most ~1 MiB of socket buffer per client
plus one SSH window (2 MiB in asyncssh) per paused channel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

HIGH_WATER = 1024 * 1024
"""Unread bytes in a client's socket buffer beyond which its channels pause."""
LOW_WATER = 256 * 1024
"""Unread bytes under which they resume."""


class ClientFlow:
    """The `OutputFlow` of one client connection (see the module doc)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        writer.transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)
        self._waiting: list[Callable[[], None]] = []
        self._draining: asyncio.Task[None] | None = None

    def throttle(self, resume: Callable[[], None]) -> bool:
        if self._writer.transport.get_write_buffer_size() <= HIGH_WATER:
            return False
        self._waiting.append(resume)
        if self._draining is None:
            self._draining = asyncio.ensure_future(self._drain())
        return True

    @property
    def paused(self) -> int:
        """How many channels wait for this client to read."""
        return len(self._waiting)

    async def _drain(self) -> None:
        try:
            await self._writer.drain()  # returns once the buffer is under LOW_WATER
        except (OSError, ConnectionError):
            pass  # the client went away: its requests are being cancelled; let them end
        finally:
            self._draining = None
            waiting, self._waiting = self._waiting, []
            for resume in waiting:
                resume()

    def close(self) -> None:
        """Stop waiting (the client is gone): resume every paused channel."""
        if self._draining is not None:
            self._draining.cancel()
