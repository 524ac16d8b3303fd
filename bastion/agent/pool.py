"""The agent's live SSH connections, one per host and connection settings, reused until idle.

Connections are opened and commands run by the asyncssh transport's own code (`PooledTransport`
is an `AsyncsshTransport` that keeps its connections instead of closing them), so the agent
verifies host keys, retries, paces handshakes and stops timed-out commands exactly as a direct
run does. A connection is keyed by everything that affects it or the trust placed in it: the
host's address, port, user, identity file, known_hosts file and jump chain, and the run's
connection options including the host-key policy. Before each reuse, the key the server
presented is checked again against the known_hosts files as they are now (strictly), so a key
removed or changed there since is never trusted through an old connection.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bastion.hostkeys import known_hosts_files
from bastion.models import Host, HostResult, Reason, Status
from bastion.transport.asyncssh_transport import (
    AsyncsshTransport,
    ConnectAttempt,
    Connection,
    HostKeyClient,
    KnownHosts,
    KnownHostsCache,
)
from bastion.transport.base import CommandSpec, ConnectOptions, OutputSink
from bastion.transport.retry import ConnectFailure
from bastion.transport.session import ended_result

Log = Callable[[str], None]
CLOSE_WAIT_S = 5.0
"""How long the agent, stopping, waits for its connections to close and openings to end."""


class FreshKnownHostsCache(KnownHostsCache):
    """known_hosts parsed once, and again whenever one of its files changes on disk."""

    def __init__(self) -> None:
        super().__init__()
        self._stamps: dict[tuple[Path, ...], tuple[tuple[int, int, int], ...]] = {}

    def get(self, files: list[Path]) -> KnownHosts:
        key = tuple(files)
        stamp = tuple(_stamp(path) for path in files)
        if self._stamps.get(key) != stamp:
            self.forget(files)
            self._stamps[key] = stamp
        return super().get(files)


def _stamp(path: Path) -> tuple[int, int, int]:
    try:
        info = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _host_key(host: Host) -> tuple[object, ...]:
    return (host.address, host.port, host.user, host.jump, host.identity_file, host.known_hosts)


@dataclass(slots=True)
class PooledConnection:
    """One live connection and how it has been used."""

    key: tuple[object, ...]
    host: Host
    connection: Connection
    transport: PooledTransport
    opened: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    uses: int = 0
    active: int = 0


class PooledTransport(AsyncsshTransport):
    """The asyncssh transport with its connections kept in a `ConnectionPool`."""

    def __init__(self, options: ConnectOptions, key: str, pool: ConnectionPool) -> None:
        super().__init__(options)
        self._known_hosts = FreshKnownHostsCache()
        self.key = key
        self.last_used = time.monotonic()
        self._pool = pool

    async def run(self, host: Host, spec: CommandSpec, on_output: OutputSink) -> HostResult:
        started = time.monotonic()
        self.last_used = started
        result, entry, reused = await self._run_pooled(host, spec, on_output, started)
        if entry is None:
            return result
        if reused and result.reason is Reason.NO_SESSION:
            # No session on a reused connection: the command never started (the connection
            # died while idle, or the server's MaxSessions is reached).
            if entry.active and not entry.connection.is_closed():
                # Other runs' sessions are on it (the server's MaxSessions): not this time.
                result = await super().run(host, spec, on_output)
            else:
                # It died while idle: connect again.
                self._pool.discard(entry, "dead when reused")
                result, entry, _ = await self._run_pooled(host, spec, on_output, started)
                if entry is None:
                    return result
        self.last_used = time.monotonic()
        return result

    async def _run_pooled(
        self, host: Host, spec: CommandSpec, on_output: OutputSink, started: float
    ) -> tuple[HostResult, PooledConnection | None, bool]:
        """Run on a pooled connection: (result, the connection or None, whether reused)."""
        entry, reused, failure = await self._pool.acquire(self, host)
        if entry is None:
            error, why = failure
            return ended_result(host, Status.UNREACHABLE, error, started, why), None, False
        try:
            result = await self._execute(entry.connection, host, spec, on_output, started)
        finally:
            self._pool.release(entry)
        return result, entry, reused

    @property
    def accepts_new(self) -> bool:
        return self._options.host_keys.accept_new

    async def open(self, host: Host) -> ConnectAttempt:
        """A new connection, with the run's retries and the host-key policy."""
        return await self._connect_with_retries(host)

    def still_trusted(self, host: Host, connection: Connection) -> bool:
        """Whether the key ``connection``'s server presented is in known_hosts now (strictly)."""
        key = connection.get_server_host_key()
        if key is None:
            return False
        files = known_hosts_files(host.known_hosts)
        try:
            known = self._known_hosts.get(files)
        except ConnectFailure:
            return False
        checker = HostKeyClient(known, files, False, self._known_hosts)
        # Matched as the connection was: by name and by the address actually connected to
        # (a name from ~/.ssh/config is no address to parse).
        peer = connection.get_extra_info("peername")
        addr = str(peer[0]) if peer else ""
        return checker.validate_host_public_key(host.address, addr, host.port, key)


class ConnectionPool:
    """Every connection the agent holds, and the transports that open them."""

    def __init__(self, idle_s: float, log: Log) -> None:
        self.idle_s = idle_s
        self._log = log
        self._entries: dict[tuple[object, ...], PooledConnection] = {}
        self._opening: dict[tuple[object, ...], asyncio.Task[ConnectAttempt]] = {}
        self._transports: dict[str, PooledTransport] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def transport_for(
        self, key: str, make_options: Callable[[], ConnectOptions]
    ) -> PooledTransport:
        """The transport for ``key``: the run's connection options and the host's jump chain
        as the client sent them (JSON, keys sorted), so equal settings share connections."""
        transport = self._transports.get(key)
        if transport is None:
            transport = self._transports[key] = PooledTransport(make_options(), key, self)
        return transport

    async def acquire(
        self, transport: PooledTransport, host: Host
    ) -> tuple[PooledConnection | None, bool, tuple[str | None, Reason | None]]:
        """A connection for ``host`` (entry, reused, (error, reason)); released with
        `release`."""
        key = (transport.key, *_host_key(host))
        entry = self._entries.get(key)
        if entry is not None:
            if entry.connection.is_closed():
                self.discard(entry, "closed by the server")
                entry = None
            elif not transport.still_trusted(host, entry.connection):
                self.discard(entry, "host key no longer trusted by known_hosts")
                entry = None
        reused = entry is not None
        if entry is None:
            task = self._opening.get(key)
            if task is None:
                task = self._opening[key] = asyncio.ensure_future(transport.open(host))
                task.add_done_callback(lambda _: self._opening.pop(key, None))
            attempt = await asyncio.shield(task)
            if attempt.connection is None:
                return None, False, (attempt.error, attempt.reason)
            entry = self._entries.get(key)
            if entry is None or entry.connection is not attempt.connection:
                entry = PooledConnection(key, host, attempt.connection, transport)
                self._entries[key] = entry
                self._log(f"opened {_describe(host)}")
        entry.active += 1
        entry.uses += 1
        entry.last_used = time.monotonic()
        return entry, reused, (None, None)

    def release(self, entry: PooledConnection) -> None:
        entry.active -= 1
        entry.last_used = time.monotonic()

    def discard(self, entry: PooledConnection, reason: str) -> None:
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
            self._log(f"closed {_describe(entry.host)}: {reason}")
        entry.connection.close()

    @property
    def busy(self) -> bool:
        return bool(self._opening) or any(e.active for e in self._entries.values())

    def reap(self) -> None:
        """Close connections idle for longer than the idle time, and unused transports."""
        now = time.monotonic()
        for entry in list(self._entries.values()):
            if entry.active == 0 and now - entry.last_used > self.idle_s:
                self.discard(entry, f"idle for {now - entry.last_used:.0f}s")
            elif entry.connection.is_closed():
                self.discard(entry, "closed by the server")
        in_use = {entry.transport.key for entry in self._entries.values()}
        for key, transport in list(self._transports.items()):
            if key not in in_use and now - transport.last_used > self.idle_s:
                del self._transports[key]
                closing = asyncio.ensure_future(transport.close())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)

    def describe(self) -> list[dict[str, object]]:
        """The connections for ``status``: host, age, idle time, uses."""
        now = time.monotonic()
        return [
            {
                "host": entry.host.name,
                "address": entry.host.address,
                "port": entry.host.port,
                "user": entry.host.user,
                "accept_new": entry.transport.accepts_new,
                "age_s": round(now - entry.opened, 1),
                "idle_s": 0.0 if entry.active else round(now - entry.last_used, 1),
                "uses": entry.uses,
                "active": entry.active,
            }
            for entry in sorted(self._entries.values(), key=lambda e: e.host.name)
        ]

    async def close(self) -> None:
        """Close every connection, cancel those still opening, and wait until they are all
        gone (at most `CLOSE_WAIT_S`): the agent exits leaving no socket or task behind."""
        connections = [entry.connection for entry in self._entries.values()]
        for entry in list(self._entries.values()):
            self.discard(entry, "agent stopping")
        opening = list(self._opening.values())
        for task in opening:
            task.cancel()
        closing = [asyncio.ensure_future(t.close()) for t in self._transports.values()]
        self._transports.clear()
        waits = [*opening, *closing, *self._closing]
        waits += [asyncio.ensure_future(c.wait_closed()) for c in connections]
        if waits:
            _, late = await asyncio.wait(waits, timeout=CLOSE_WAIT_S)
            if late:
                self._log(f"stopping: {len(late)} connections did not close in {CLOSE_WAIT_S:g}s")
        for task in opening:
            # One that had connected before it could be cancelled: close what it opened.
            if task.done() and not task.cancelled() and task.exception() is None:
                connection = task.result().connection
                if connection is not None:
                    connection.close()


def _describe(host: Host) -> str:
    user = f"{host.user}@" if host.user else ""
    via = f" via {host.jump}" if host.jump else ""
    return f"{host.name} ({user}{host.address}:{host.port}{via})"
