"""Pacing of SSH handshakes, so bursts stay under each sshd's ``MaxStartups``.

OpenSSH's default ``MaxStartups 10:30:100`` starts dropping unauthenticated connections once
ten are in flight to one server. The executor's ``--forks`` caps hosts in progress; this gate
separately caps handshakes in progress, per server and in all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class HandshakeGate:
    """Limits concurrent handshakes per server address and in total."""

    def __init__(self, per_server: int, total: int) -> None:
        if per_server < 1 or total < 1:
            raise ValueError("handshake limits must be at least 1")
        self._per_server = per_server
        self._total = asyncio.Semaphore(total)
        self._servers: dict[tuple[str, int], asyncio.Semaphore] = {}

    @asynccontextmanager
    async def slot(self, address: str, port: int) -> AsyncIterator[None]:
        """Hold one handshake slot for ``address:port`` while the block runs."""
        server = self._servers.get((address, port))
        if server is None:
            server = self._servers[(address, port)] = asyncio.Semaphore(self._per_server)
        async with server, self._total:
            yield
