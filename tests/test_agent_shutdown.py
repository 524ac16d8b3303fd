"""Shutdown leaves nothing behind: the agent's pool and a run's agent connection, stopped while
a connection is still opening, wait for it to end and close its socket.

The peers are plain listening sockets on loopback that accept and never speak (an sshd or an
agent that hangs before its greeting), so the connection attempt is pending when closing starts.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from bastion.agent import client as agent_transport
from bastion.agent.client import AgentTransport
from bastion.agent.pool import ConnectionPool
from bastion.models import Host
from bastion.transport.base import CommandSpec, ConnectOptions
from tests.conftest import TEST_NET

SILENT_ADDRESS = f"127.{TEST_NET}.12.1"
EOF_WAIT_S = 10.0


def _ignore(stream: str, text: str) -> None:
    """An output sink: these commands never run."""


def _sees_eof(peer: socket.socket) -> bool:
    """Whether the client closed its end (within `EOF_WAIT_S`), after what it sent first."""
    peer.settimeout(EOF_WAIT_S)
    try:
        while peer.recv(4096):
            pass
    except TimeoutError:
        return False
    return True


def test_pool_close_waits_for_a_connection_still_opening() -> None:
    with socket.socket() as listener:
        listener.bind((SILENT_ADDRESS, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        host = Host(name="silent", address=SILENT_ADDRESS, port=port, connect_timeout=60.0)

        async def scenario() -> tuple[bool, bool]:
            pool = ConnectionPool(60.0, lambda _: None)
            transport = pool.transport_for("k", lambda: ConnectOptions(retries=0))
            run = asyncio.ensure_future(transport.run(host, CommandSpec("true"), _ignore))
            while not pool.busy:
                await asyncio.sleep(0.05)
            busy_before = pool.busy
            await pool.close()
            busy_after = pool.busy  # nothing still opening once close has returned
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            return busy_before, busy_after

        loop = asyncio.new_event_loop()
        try:
            opening = loop.run_in_executor(None, listener.accept)
            busy_before, busy_after = loop.run_until_complete(scenario())
            peer, _ = loop.run_until_complete(opening)
        finally:
            loop.close()
        with peer:
            assert (busy_before, busy_after) == (True, False)
            assert _sees_eof(peer)


def test_agent_transport_close_cancels_a_channel_still_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The silent agent would otherwise be given up on after 5 s; here only close ends it.
    monkeypatch.setattr(agent_transport, "HELLO_TIMEOUT_S", 600.0)
    path = tmp_path / "agent.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        listener.listen(1)
        host = Host(name="h", address=SILENT_ADDRESS, port=22)

        async def scenario(accepted: asyncio.Future[tuple[socket.socket, object]]) -> None:
            transport = AgentTransport(path, ConnectOptions())
            run = asyncio.ensure_future(transport.run(host, CommandSpec("true"), _ignore))
            await asyncio.wait([accepted])  # the run is waiting for the agent's greeting
            run.cancel()  # as an interrupted run cancels its hosts, then closes the transport
            await asyncio.gather(run, return_exceptions=True)
            await asyncio.wait_for(transport.close(), EOF_WAIT_S)

        loop = asyncio.new_event_loop()
        try:
            accepted = loop.run_in_executor(None, listener.accept)
            loop.run_until_complete(scenario(accepted))
            peer, _ = accepted.result()
        finally:
            loop.close()
        with peer:
            assert _sees_eof(peer)
