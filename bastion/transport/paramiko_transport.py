"""The paramiko transport: the same contract as asyncssh's, on paramiko in a thread pool.

Chosen with ``--transport paramiko`` or ``transport: paramiko`` in the inventory, for hosts
where paramiko is the better fit (an sshd whose quirks asyncssh trips on, environments that
standardise on it). This is the only module that imports paramiko.

Each host's connection and command run in a worker thread; output is decoded there and handed
to the event loop with ``call_soon_threadsafe``, which keeps its order. Host keys are checked
strictly against the same known_hosts files as the asyncssh transport (unknown: refused unless
``--accept-new``; changed: always refused); there is no auto-add. Not read from here:
``~/.ssh/config`` (paramiko does not apply it by itself); user, port and key come from the
inventory.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import getpass
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from bastion.hostkeys import (
    HostKeyVerdict,
    append_known_host,
    describe_refusal,
    known_hosts_entry_name,
    known_hosts_files,
)
from bastion.jumps import resolve_jump
from bastion.models import Host, HostResult, Status, Stream
from bastion.transport.base import (
    CommandSpec,
    ConnectOptions,
    DataSink,
    LinkFailure,
    LinkLost,
    OutputSink,
)
from bastion.transport.pacing import HandshakeGate
from bastion.transport.remote_shell import PidPreamble, kill_group_command, with_pid_preamble
from bastion.transport.retry import ConnectFailure, connect_with_retries

WORKER_THREADS = 64
POLL_S = 0.1
KILL_WAIT_S = 5.0
DEFAULT_KEYS = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")


class _Liveness:
    """Keepalives that expect an answer: a connection silent for too long is closed.

    paramiko's own keepalive only sends; this asks for a reply (OpenSSH answers an unknown
    global request with a failure, which is a reply) from a helper thread.
    """

    def __init__(self, transport: paramiko.Transport, interval: float, count_max: int) -> None:
        self._transport = transport
        self._interval = interval
        self._limit = interval * count_max
        self._pending_since: float | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bastion-keepalive", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the helper thread (the connection is being closed)."""
        self._closed.set()

    def _loop(self) -> None:
        while not self._closed.wait(self._interval) and self._transport.is_active():
            self._pending_since = time.monotonic()
            with contextlib.suppress(Exception):  # a dying transport; is_active says so
                self._transport.global_request("keepalive@openssh.com", wait=True)
            self._pending_since = None

    def check(self) -> str | None:
        """Why the connection is dead (and close it), or None while it answers."""
        pending = self._pending_since
        if pending is not None and time.monotonic() - pending > self._limit:
            self._transport.close()
            return f"no answer to keepalives for {self._limit:g}s"
        if not self._transport.is_active():
            return "the connection closed" + _transport_error(self._transport)
        return None


@dataclass(slots=True)
class _Connection:
    transport: paramiko.Transport
    liveness: _Liveness

    def close(self) -> None:
        self.liveness.stop()
        self.transport.close()


@dataclass(slots=True)
class _Outcome:
    """What one command came to, from the worker thread."""

    exit_status: int | None = None
    lost: str | None = None
    timed_out: bool = False
    stopped: bool = False
    parts: dict[Stream, list[str]] = field(default_factory=lambda: {"stdout": [], "stderr": []})


class ParamikoTransport:
    """Runs each host's command over its own paramiko connection, in a worker thread."""

    name = "paramiko"

    def __init__(self, options: ConnectOptions) -> None:
        self._options = options
        self._gate = HandshakeGate(options.max_handshakes_per_server, options.max_handshakes)
        self._pool = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="bastion-paramiko")
        self._keys: dict[str, paramiko.PKey] = {}
        self._jumps: dict[str, asyncio.Task[_Connection | ConnectFailure]] = {}
        self._lock = threading.Lock()

    async def run(self, host: Host, spec: CommandSpec, on_output: OutputSink) -> HostResult:
        started = time.monotonic()
        try:
            connection = await self._connect_with_retries(host)
        except ConnectFailure as exc:
            return _result(host, started, Status.UNREACHABLE, _Outcome(), exc.message)
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def deliver(stream: Stream, text: str) -> None:
            loop.call_soon_threadsafe(on_output, stream, text)

        work = loop.run_in_executor(self._pool, self._run_blocking, connection, spec, deliver, stop)
        try:
            outcome = await asyncio.shield(work)
        except asyncio.CancelledError:
            stop.set()  # the worker stops the remote group, then returns
            with contextlib.suppress(Exception):
                await asyncio.wait_for(work, KILL_WAIT_S * 2)
            raise
        finally:
            connection.close()
        return _judge(host, started, spec, outcome)

    async def open_link(self, host: Host, *, retry: bool) -> ParamikoLink:
        """A connection for durable jobs; raises `LinkFailure` (see `base.LinkOpener`)."""
        try:
            if retry:
                connection = await self._connect_with_retries(host)
            else:
                connection = await self._connect(host)
        except ConnectFailure as exc:
            raise LinkFailure(exc.message, transient=exc.transient and not retry) from exc
        return ParamikoLink(connection, self._pool)

    async def close(self) -> None:
        for task in self._jumps.values():
            if task.done() and not task.cancelled():
                jump = task.result()
                if isinstance(jump, _Connection):
                    jump.close()
            else:
                task.cancel()
        self._jumps.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- connecting -----------------------------------------------------------------------

    async def _connect_with_retries(self, host: Host) -> _Connection:
        return await connect_with_retries(lambda: self._connect(host), self._options.retries)

    async def _connect(self, host: Host) -> _Connection:
        via = await self._jump_for(host)
        loop = asyncio.get_running_loop()
        async with self._gate.slot(host.address, host.port):
            return await loop.run_in_executor(self._pool, self._connect_blocking, host, via)

    async def _jump_for(self, host: Host) -> _Connection | None:
        """The shared connection to this host's jump host, opened once for every target."""
        if not host.jump:
            return None
        jump = resolve_jump(host, self._options.jump_hosts)
        key = f"{jump.user}@{jump.address}:{jump.port}"
        task = self._jumps.get(key)
        if task is None:

            async def open_jump() -> _Connection | ConnectFailure:
                try:
                    return await self._connect_with_retries(jump)
                except ConnectFailure as exc:
                    return exc

            task = self._jumps[key] = asyncio.ensure_future(open_jump())
        opened = await asyncio.shield(task)
        if isinstance(opened, ConnectFailure):
            raise ConnectFailure(
                f"jump host {jump.name} unreachable: {opened.message}", transient=False
            )
        return opened

    def _connect_blocking(self, host: Host, via: _Connection | None) -> _Connection:
        timeout = self._options.connect_timeout or host.connect_timeout
        sock = self._open_socket(host, via, timeout)
        transport = paramiko.Transport(sock)
        try:
            files = known_hosts_files(host.known_hosts)
            known = _load_known_hosts(files)
            name = known_hosts_entry_name(host.address, host.port)
            pinned = known.lookup(name)
            if pinned:
                # Ask for the key types known_hosts has, as OpenSSH does, so a server with
                # several host keys is not refused for showing an unpinned one.
                options = transport.get_security_options()
                options.key_types = [t for t in options.key_types if t in pinned] or list(
                    options.key_types
                )
            try:
                transport.start_client(timeout=timeout)
            except paramiko.SSHException as exc:
                raise ConnectFailure(f"connection dropped: {_reason(exc)}", transient=True) from exc
            self._check_host_key(host, transport, files, known)
            self._authenticate(host, transport)
        except BaseException:
            transport.close()
            raise
        transport.set_keepalive(0)
        liveness = _Liveness(
            transport, self._options.keepalive_interval, self._options.keepalive_count_max
        )
        return _Connection(transport, liveness)

    def _open_socket(self, host: Host, via: _Connection | None, timeout: float) -> socket.socket:
        if via is not None:
            try:
                channel = via.transport.open_channel(
                    "direct-tcpip", (host.address, host.port), ("127.0.0.1", 0), timeout=timeout
                )
            except (paramiko.SSHException, OSError) as exc:
                raise ConnectFailure(
                    f"jump host {host.jump} cannot open a tunnel to {host.address}:{host.port}: "
                    f"{_reason(exc)}",
                    transient=True,
                ) from exc
            return channel  # type: ignore[return-value]  # a Channel works as a socket
        try:
            return socket.create_connection((host.address, host.port), timeout=timeout)
        except TimeoutError as exc:
            raise ConnectFailure(f"connect timed out after {timeout:g}s", transient=True) from exc
        except socket.gaierror as exc:
            raise ConnectFailure(
                f"cannot resolve {host.address}: {exc.strerror}", transient=False
            ) from exc
        except ConnectionRefusedError as exc:
            raise ConnectFailure(
                f"connection refused by {host.address}:{host.port}", transient=True
            ) from exc
        except OSError as exc:
            raise ConnectFailure(
                f"cannot connect to {host.address}:{host.port}: {_reason(exc)}", transient=True
            ) from exc

    def _check_host_key(
        self,
        host: Host,
        transport: paramiko.Transport,
        files: list[Path],
        known: paramiko.HostKeys,
    ) -> None:
        try:
            key = transport.get_remote_server_key()
        except paramiko.SSHException as exc:  # the link died right after the key exchange
            raise ConnectFailure(f"connection dropped: {_reason(exc)}", transient=True) from exc
        fingerprint = key.fingerprint  # "SHA256:...", as OpenSSH and asyncssh print it
        pinned = known.lookup(known_hosts_entry_name(host.address, host.port))
        if pinned and any(k == key for k in pinned.values()):
            return
        if pinned:
            verdict = HostKeyVerdict.CHANGED
        elif self._options.host_keys.accept_new:
            append_known_host(
                files[0], host.address, host.port, f"{key.get_name()} {key.get_base64()}"
            )
            return
        else:
            verdict = HostKeyVerdict.UNKNOWN
        raise ConnectFailure(describe_refusal(verdict, files, fingerprint), transient=False)

    def _authenticate(self, host: Host, transport: paramiko.Transport) -> None:
        user = host.user or getpass.getuser()
        keys = [self._key(host.identity_file)] if host.identity_file else _default_keys()
        last = "no key to offer (give identity_file, or run ssh-agent)"
        for key in keys:
            try:
                transport.auth_publickey(user, key)
            except paramiko.AuthenticationException as exc:
                last = _reason(exc)
                if "timeout" in last.lower():
                    # paramiko's auth_timeout: the server never answered (a lossy link), it
                    # did not refuse the key; worth another attempt like any dropped handshake.
                    raise ConnectFailure(
                        f"authentication for {user} timed out: {last}", transient=True
                    ) from exc
                continue
            except paramiko.SSHException as exc:
                raise ConnectFailure(f"connection dropped: {_reason(exc)}", transient=True) from exc
            if transport.is_authenticated():
                return
        raise ConnectFailure(f"authentication failed for {user}: {last}", transient=False)

    def _key(self, identity_file: str) -> paramiko.PKey:
        with self._lock:
            key = self._keys.get(identity_file)
            if key is None:
                try:
                    key = paramiko.PKey.from_path(identity_file)
                except (OSError, paramiko.SSHException) as exc:
                    raise ConnectFailure(
                        f"cannot load identity_file {identity_file}: {_reason(exc)}",
                        transient=False,
                    ) from exc
                self._keys[identity_file] = key
            return key

    # --- running --------------------------------------------------------------------------

    def _run_blocking(
        self,
        connection: _Connection,
        spec: CommandSpec,
        deliver: Callable[[Stream, str], None],
        stop: threading.Event,
    ) -> _Outcome:
        outcome = _Outcome()
        decoders = {
            "stdout": codecs.getincrementaldecoder("utf-8")(errors="replace"),
            "stderr": codecs.getincrementaldecoder("utf-8")(errors="replace"),
        }
        preamble = PidPreamble()

        def emit(stream: Stream, data: bytes, final: bool = False) -> None:
            text = decoders[stream].decode(data, final=final)
            if text:
                outcome.parts[stream].append(text)
                deliver(stream, text)

        def on_data(stream: Stream, data: bytes) -> None:
            emit(stream, preamble.feed(data) if stream == "stdout" else data)

        deadline = time.monotonic() + spec.timeout if spec.timeout is not None else None
        try:
            channel = connection.transport.open_session(timeout=KILL_WAIT_S)
            channel.exec_command(with_pid_preamble(spec.command))
            if spec.stdin:
                channel.sendall(spec.stdin)
            channel.shutdown_write()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            outcome.lost = f"cannot open a session: {_reason(exc)}"
            return outcome

        def should_stop() -> bool:
            if stop.is_set():
                return True
            if deadline is not None and time.monotonic() > deadline:
                outcome.timed_out = True
                return True
            return False

        status = _pump(channel, connection.liveness, on_data, should_stop)
        if isinstance(status, str):
            outcome.lost = status
        elif status is None:  # timed out or interrupted: stop the remote group
            if preamble.pid is not None:
                _exec_quietly(connection.transport, kill_group_command(preamble.pid))
            ended = _pump(channel, connection.liveness, on_data, _after(KILL_WAIT_S))
            outcome.stopped = ended is not None  # the session ended: the group is gone
            channel.close()
        else:
            outcome.exit_status = status
        emit("stdout", b"", final=True)
        emit("stderr", b"", final=True)
        return outcome


class ParamikoLink:
    """One paramiko connection running commands one after another (see `base.Link`)."""

    def __init__(self, connection: _Connection, pool: ThreadPoolExecutor) -> None:
        self._connection = connection
        self._pool = pool

    async def exec(self, command: str, on_data: DataSink) -> int:
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def deliver(stream: Stream, data: bytes) -> None:
            loop.call_soon_threadsafe(on_data, stream, data)

        work = loop.run_in_executor(self._pool, self._exec_blocking, command, deliver, stop)
        try:
            status = await asyncio.shield(work)
        except asyncio.CancelledError:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(work, KILL_WAIT_S)
            raise
        if isinstance(status, str):
            raise LinkLost(status)
        return status

    def _exec_blocking(self, command: str, deliver: DataSink, stop: threading.Event) -> int | str:
        try:
            channel = self._connection.transport.open_session(timeout=KILL_WAIT_S)
            channel.exec_command(command)
            channel.shutdown_write()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            return f"cannot open a session: {_reason(exc)}"
        status = _pump(channel, self._connection.liveness, deliver, stop.is_set)
        if status is None:
            channel.close()
            return "interrupted"
        return status

    def close(self) -> None:
        self._connection.close()


def _pump(
    channel: paramiko.Channel,
    liveness: _Liveness,
    on_data: DataSink,
    should_stop: Callable[[], bool],
) -> int | str | None:
    """Read the channel to its end: the exit status, a reason it was lost, or None if stopped."""
    while True:
        with contextlib.suppress(OSError, ValueError):
            select.select([channel], [], [], POLL_S)
        while channel.recv_ready():
            on_data("stdout", channel.recv(65536))
        while channel.recv_stderr_ready():
            on_data("stderr", channel.recv_stderr(65536))
        pending = channel.recv_ready() or channel.recv_stderr_ready()
        ended = channel.eof_received or channel.closed
        if channel.exit_status_ready() and ended and not pending:
            status = channel.recv_exit_status()
            if status >= 0:
                return status
            # paramiko reports -1 when the channel closed without an exit status.
            return liveness.check() or "the session closed without an exit status"
        if channel.closed and not pending:
            return liveness.check() or "the session closed without an exit status"
        dead = liveness.check()
        if dead is not None:
            return dead
        if should_stop():
            return None


def _transport_error(transport: paramiko.Transport) -> str:
    error = transport.get_exception()
    return f" ({_reason(error)})" if error is not None else ""


def _after(seconds: float) -> Callable[[], bool]:
    end = time.monotonic() + seconds
    return lambda: time.monotonic() > end


def _exec_quietly(transport: paramiko.Transport, command: str) -> None:
    """Run a short command on a second session and wait for it (the group kill)."""
    with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
        channel = transport.open_session(timeout=KILL_WAIT_S)
        channel.exec_command(command)
        end = time.monotonic() + KILL_WAIT_S
        while not channel.exit_status_ready() and time.monotonic() < end:
            time.sleep(POLL_S)
        channel.close()


def _load_known_hosts(files: list[Path]) -> paramiko.HostKeys:
    known = paramiko.HostKeys()
    for path in files:
        if not path.exists():
            continue
        try:
            known.load(str(path))
        except (OSError, paramiko.SSHException) as exc:
            raise ConnectFailure(
                f"cannot read known_hosts {path}: {_reason(exc)}", transient=False
            ) from exc
    return known


def _default_keys() -> list[paramiko.PKey]:
    keys: list[paramiko.PKey] = []
    if os.environ.get("SSH_AUTH_SOCK"):
        with contextlib.suppress(paramiko.SSHException, OSError):
            keys.extend(paramiko.Agent().get_keys())
    for name in DEFAULT_KEYS:
        path = Path(name).expanduser()
        if path.exists():
            with contextlib.suppress(paramiko.SSHException, OSError):
                keys.append(paramiko.PKey.from_path(path))
    return keys


def _judge(host: Host, started: float, spec: CommandSpec, outcome: _Outcome) -> HostResult:
    if outcome.timed_out:
        stopped = (
            "remote process group stopped"
            if outcome.stopped
            else "the remote command may still be running (it did not stop when signalled)"
        )
        error = f"timed out after {spec.timeout:g}s; {stopped}"
        return _result(host, started, Status.TIMEOUT, outcome, error)
    if outcome.lost is not None:
        error = f"connection lost mid-command: {outcome.lost}"
        return _result(host, started, Status.UNREACHABLE, outcome, error)
    if outcome.exit_status == 0:
        return _result(host, started, Status.OK, outcome, None)
    return _result(host, started, Status.FAILED, outcome, f"exit status {outcome.exit_status}")


def _result(
    host: Host, started: float, status: Status, outcome: _Outcome, error: str | None
) -> HostResult:
    return HostResult(
        host=host.name,
        address=host.address,
        status=status,
        exit_status=outcome.exit_status,
        stdout="".join(outcome.parts["stdout"]),
        stderr="".join(outcome.parts["stderr"]),
        error=error,
        duration_s=time.monotonic() - started,
    )


def _reason(exc: BaseException) -> str:
    """A short, single-line reason for an exception."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())
