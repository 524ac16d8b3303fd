"""Test harness: real asyncssh servers, in-process, on loopback, with faults on demand.

Not part of bastion. Tests use it to put the client against a server whose behaviour they
control exactly: refuse authentication, present the wrong host key, drop the connection in the
middle of a command's output, answer slowly, and count what it saw (connections, handshakes
and sessions in flight, direct-tcpip forwards).

Commands are run for real, as sshd runs them: ``/bin/sh -c COMMAND`` in a new session (sshd's
``setsid``), so ``$$`` leads a process group that can be signalled as a whole, and ``sleep``,
``cat`` and ``echo`` behave as they would on a real host.
Like sshd, the server does not kill a command when its client goes away; only the harness's
``close()`` does, so a test can check that the *client* stopped what it started.

The servers live on an event loop of their own in a background thread, because the client
side under test (``bastion.executor.run``) starts and ends its own loop with ``asyncio.run``.
Counters are written on that thread and read from the test's thread; each is a plain int.

Only loopback addresses (127.0.0.0/8) are ever bound to or forwarded to.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import threading
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import asyncssh

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
CALL_TIMEOUT_S = 30.0
"""How long the test thread waits for the server thread to do what it asked."""
SHUTDOWN_GRACE_S = 5.0
DROP_DELAY_S = 0.2
"""Time given to the bytes sent before a deliberate disconnect to reach the client."""


@dataclass(frozen=True, slots=True)
class Faults:
    """What a test server does wrong, on purpose."""

    reject_auth: bool = False
    """Refuse every authentication attempt."""
    wrong_host_key: bool = False
    """Present a host key other than the one in ``known_hosts_line`` (a changed host key)."""
    presented_key_type: str = "ssh-ed25519"
    """The type of the other key presented with ``wrong_host_key``: another type than the
    pinned ed25519 key is what a man in the middle without the real key shows."""
    drop_after_stdout_bytes: int | None = None
    """Send this many bytes of a command's stdout, then abort the TCP connection."""
    handshake_delay_s: float = 0.0
    """Wait this long before starting authentication (a slow or overloaded sshd)."""
    allow_forwarding: bool = False
    """Accept direct-tcpip requests to loopback addresses, as a jump host does."""
    home: str | None = None
    """``$HOME`` of the commands (durable jobs keep their files there); None: the test's."""


class SSHTestServer:
    """One in-process SSH server and what it has seen; created by `SSHServerHarness`."""

    def __init__(self, address: str, faults: Faults, client_key: asyncssh.SSHKey) -> None:
        self.address = address
        self.port = 0
        self.faults = faults
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        """The key clients are told to expect (see `known_hosts_line`)."""
        self.presented_key = (
            asyncssh.generate_private_key(faults.presented_key_type)
            if faults.wrong_host_key
            else self.host_key
        )
        self._client_key = client_key
        self.connections = 0
        """TCP connections accepted."""
        self.handshakes_in_flight = 0
        self.max_handshakes_in_flight = 0
        """Most connections at once that were made but not yet authenticated."""
        self.sessions_in_flight = 0
        self.max_sessions_in_flight = 0
        """Most commands running at once."""
        self.forwards = 0
        """direct-tcpip channels opened through this server."""
        self.commands: list[str] = []
        """Every command string received, in order, exactly as sent."""
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._live: set[asyncssh.SSHServerConnection] = set()
        self._children: set[asyncio.subprocess.Process] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def known_hosts_line(self) -> str:
        """The known_hosts line OpenSSH would write for this server (without a newline)."""
        key = self.host_key.export_public_key("openssh").decode("ascii").split()
        return f"[{self.address}]:{self.port} {key[0]} {key[1]}"

    async def start(self) -> None:
        self._acceptor = await asyncssh.create_server(
            lambda: _ServerConnection(self),
            self.address,
            self.port,
            server_host_keys=[self.presented_key],
            process_factory=self._run_command,
            encoding=None,
        )
        self.port = self._acceptor.get_port()

    async def replace_host_key(self, key_type: str = "ssh-ed25519") -> None:
        """Drop every connection and listen again on the same port presenting a new key of
        ``key_type`` (a host rebuilt, or a man in the middle taking over its address).
        Commands started detached (setsid, as durable jobs are) keep running."""
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
        live = list(self._live)
        for conn in live:
            conn.abort()
        self.presented_key = asyncssh.generate_private_key(key_type)
        await self.start()

    async def stop(self) -> None:
        """Stop listening, kill every command still running, close every connection."""
        if self._acceptor is not None:
            self._acceptor.close()
        for child in self._children:
            _kill_group(child)
        live = list(self._live)
        for conn in live:
            conn.close()
        await asyncio.gather(*(conn.wait_closed() for conn in live))
        if self._acceptor is not None:
            await self._acceptor.wait_closed()
        if self._handlers:
            _, stuck = await asyncio.wait(self._handlers, timeout=SHUTDOWN_GRACE_S)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)

    def is_client_key(self, key: asyncssh.SSHKey) -> bool:
        return not self.faults.reject_auth and key.public_data == self._client_key.public_data

    def connection_opened(self, conn: asyncssh.SSHServerConnection) -> None:
        self._live.add(conn)
        self.connections += 1
        self.handshakes_in_flight += 1
        self.max_handshakes_in_flight = max(
            self.max_handshakes_in_flight, self.handshakes_in_flight
        )

    def authenticated(self) -> None:
        self.handshakes_in_flight -= 1

    def connection_closed(self, conn: asyncssh.SSHServerConnection, authenticated: bool) -> None:
        self._live.discard(conn)
        if not authenticated:
            self.handshakes_in_flight -= 1

    async def _run_command(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        """Run the received command with a real shell, relaying stdin, stdout and stderr."""
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        command = process.command or ""
        self.commands.append(command)
        self.sessions_in_flight += 1
        self.max_sessions_in_flight = max(self.max_sessions_in_flight, self.sessions_in_flight)
        try:
            env = None if self.faults.home is None else {**os.environ, "HOME": self.faults.home}
            child = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                command,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
            self._children.add(child)
            # Like sshd, report the exit once the command's output is done, whether or not the
            # client ever sends EOF on stdin.
            feeding = asyncio.create_task(self._relay_stdin(process, child))
            try:
                await asyncio.gather(
                    self._relay_output(process, child, "stdout"),
                    self._relay_output(process, child, "stderr"),
                )
                returncode = await child.wait()
            finally:
                feeding.cancel()
                await asyncio.gather(feeding, return_exceptions=True)
                _kill_group(child)
                await child.wait()
                self._children.discard(child)
            with contextlib.suppress(OSError, asyncssh.Error):  # the client may be gone
                if returncode >= 0:
                    process.exit(returncode)
                else:
                    process.exit_with_signal(signal.Signals(-returncode).name.removeprefix("SIG"))
        finally:
            self.sessions_in_flight -= 1
            self._handlers.discard(handler)

    async def _relay_stdin(
        self, process: asyncssh.SSHServerProcess[bytes], child: asyncio.subprocess.Process
    ) -> None:
        assert child.stdin is not None
        try:
            while data := await process.stdin.read(65536):
                child.stdin.write(data)
                await child.stdin.drain()
        except (OSError, asyncssh.Error):
            pass  # the command stopped reading, or the client went away
        finally:
            child.stdin.close()

    async def _relay_output(
        self,
        process: asyncssh.SSHServerProcess[bytes],
        child: asyncio.subprocess.Process,
        stream: str,
    ) -> None:
        """Copy one of the command's output pipes to the channel, reading it to the end."""
        source = child.stdout if stream == "stdout" else child.stderr
        sink = process.stdout if stream == "stdout" else process.stderr
        assert source is not None
        drop_after = self.faults.drop_after_stdout_bytes if stream == "stdout" else None
        sent = 0
        forwarding = True
        # Reading to EOF even after the client is gone lets the subprocess transport close.
        while data := await source.read(65536):
            if not forwarding:
                continue
            if drop_after is not None and sent + len(data) >= drop_after:
                data = data[: drop_after - sent]
                forwarding = False
            try:
                sink.write(data)
                await sink.drain()
            except (OSError, asyncssh.Error):
                forwarding = False
                continue
            sent += len(data)
            if drop_after is not None and sent >= drop_after:
                await asyncio.sleep(DROP_DELAY_S)
                process.channel.get_connection().abort()


class _ServerConnection(asyncssh.SSHServer):
    """Server-side callbacks for one connection: counting, faults, forwarding policy."""

    def __init__(self, server: SSHTestServer) -> None:
        self._server = server
        self._conn: asyncssh.SSHServerConnection | None = None
        self._authenticated = False

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._server.connection_opened(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._server.connection_closed(self._conn, self._authenticated)

    async def begin_auth(self, username: str) -> bool:
        if self._server.faults.handshake_delay_s:
            await asyncio.sleep(self._server.faults.handshake_delay_s)
        return True

    def auth_completed(self) -> None:
        self._authenticated = True
        self._server.authenticated()

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return self._server.is_client_key(key)

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        if not self._server.faults.allow_forwarding:
            # What sshd answers with ``AllowTcpForwarding no``.
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "TCP forwarding disabled"
            )
        if not ipaddress.ip_address(dest_host).is_loopback:
            return False  # tests never reach beyond loopback, even by mistake
        self._server.forwards += 1
        return True


def _kill_group(child: asyncio.subprocess.Process) -> None:
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)


class SSHServerHarness:
    """Starts and stops `SSHTestServer`s on a private event loop in a background thread.

    Use as a context manager. One client key is shared by every server; its private half is
    written to ``identity_file``.
    """

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.identity_file = workdir / "id_ed25519"
        self.client_key.write_private_key(self.identity_file)
        self.identity_file.chmod(0o600)
        self.servers: list[SSHTestServer] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve_forever, name="ssh-test-servers", daemon=True
        )

    def __enter__(self) -> SSHServerHarness:
        self._thread.start()
        if not self._ready.wait(CALL_TIMEOUT_S):
            raise RuntimeError("the SSH test server thread did not start")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start_server(self, address: str = LOOPBACK, **faults: Any) -> SSHTestServer:
        """Start a server on ``address`` (loopback only), port chosen by the kernel.

        ``faults`` are `Faults` fields, e.g. ``start_server(reject_auth=True)``.
        """
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(f"test servers bind to loopback only, not {address}")
        server = SSHTestServer(address, Faults(**faults), self.client_key)
        self._call(server.start())
        self.servers.append(server)
        return server

    def replace_host_key(self, server: SSHTestServer, key_type: str = "ssh-ed25519") -> None:
        """See `SSHTestServer.replace_host_key`."""
        self._call(server.replace_host_key(key_type))

    def close(self) -> None:
        """Stop every server, kill what their commands left running, and end the thread."""
        if self._loop is not None and self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(CALL_TIMEOUT_S)
        if self._thread.is_alive():
            raise RuntimeError("the SSH test servers did not shut down")

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CALL_TIMEOUT_S)

    def _serve_forever(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await asyncio.gather(*(server.stop() for server in self.servers))


def write_known_hosts(path: Path, servers: Iterable[SSHTestServer]) -> Path:
    """Write a known_hosts file that pins each server's host key; returns ``path``."""
    path.write_text("".join(f"{server.known_hosts_line}\n" for server in servers))
    path.chmod(0o600)
    return path
