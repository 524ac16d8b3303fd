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
import contextlib
import getpass
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import paramiko
from paramiko.common import MSG_CHANNEL_REQUEST

from bastion.hostkeys import (
    HostKeyVerdict,
    append_known_host,
    describe_refusal,
    known_hosts_entry_name,
    known_hosts_files,
)
from bastion.jumps import resolve_jump
from bastion.models import Host, HostResult, Reason, Stream
from bastion.transport.base import (
    CommandSpec,
    ConnectOptions,
    DataSink,
    LinkFailure,
    LinkLost,
    OutputFlow,
    OutputSink,
)
from bastion.transport.identity import encrypted_key
from bastion.transport.pacing import HandshakeGate
from bastion.transport.remote_shell import kill_group_command, with_pid_preamble
from bastion.transport.retry import ConnectFailure, connect_with_retries
from bastion.transport.session import (
    CommandEnd,
    CommandOutput,
    FlowControl,
    SharedJumps,
    command_result,
    connect_timed_out,
    exit_status_of_signal,
    reason,
    socket_failure,
    unreachable,
)

WORKER_THREADS = 64
POLL_S = 0.1
KILL_WAIT_S = 5.0
DEFAULT_KEYS = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")
CHUNKS_IN_FLIGHT = 16
"""Output chunks a worker may hand to the event loop before the loop has passed them on: past
that the worker stops reading and the SSH window holds the command back (bounded memory)."""

# paramiko logs its transport thread's failures with tracebacks; with no handler configured,
# Python's last-resort handler would print them on stderr. Every failure is already a
# result with its reason, so those records go nowhere.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False


def _channel_request(channel: paramiko.Channel, message: paramiko.Message) -> None:
    """paramiko's channel-request handler, plus ``exit-signal`` (paramiko ignores it, and a
    command killed by a signal would look like a lost connection)."""
    start = message.packet.tell()
    if message.get_text() == "exit-signal":
        message.get_boolean()  # want_reply: False by RFC 4254
        transport = channel.get_transport()
        if isinstance(transport, _Transport):
            transport.exit_signals[channel.get_id()] = message.get_text()
        return
    message.packet.seek(start)
    paramiko.Channel._handle_request(channel, message)  # type: ignore[attr-defined]


class _Transport(paramiko.Transport):
    """A paramiko transport that records the signal a command was killed by."""

    _channel_handler_table = {  # noqa: RUF012  (paramiko's own class-level table)
        **paramiko.Transport._channel_handler_table,  # type: ignore[attr-defined]
        MSG_CHANNEL_REQUEST: _channel_request,
    }

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.exit_signals: dict[int, str] = {}


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
    transport: _Transport
    liveness: _Liveness

    def close(self) -> None:
        self.liveness.stop()
        self.transport.close()


class _Delivery:
    """Output handed from a worker thread to the event loop, at most `CHUNKS_IN_FLIGHT`
    chunks ahead of it, and held back while the consumer's `OutputFlow` says so."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sink: OutputSink, flow: OutputFlow | None
    ) -> None:
        self._loop = loop
        self._sink = sink
        self._credits = threading.Semaphore(CHUNKS_IN_FLIGHT)
        self._held = 0
        self._flow = FlowControl(flow, lambda: None, self._release_held)

    def __call__(self, stream: Stream, text: str) -> None:
        """From the worker: wait for room (never forever: the loop always drains), then hand
        ``text`` over."""
        while not self._credits.acquire(timeout=POLL_S):
            if self._loop.is_closed():
                return  # the run is over (interrupted): nobody reads this output any more
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: likewise
            self._loop.call_soon_threadsafe(self._on_loop, stream, text)

    def _on_loop(self, stream: Stream, text: str) -> None:
        self._sink(stream, text)
        self._flow.after_chunk()
        if self._flow.paused:
            self._held += 1
        else:
            self._credits.release()

    def _release_held(self) -> None:
        for _ in range(self._held):
            self._credits.release()
        self._held = 0

    def release(self) -> None:
        """On the loop: read on regardless of the flow (the command is being stopped)."""
        self._loop.call_soon_threadsafe(self._flow.release)


class ParamikoTransport:
    """Runs each host's command over its own paramiko connection, in a worker thread."""

    name = "paramiko"

    def __init__(self, options: ConnectOptions) -> None:
        self._options = options
        self._gate = HandshakeGate(options.max_handshakes_per_server, options.max_handshakes)
        self._pool = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="bastion-paramiko")
        self._keys: dict[str, paramiko.PKey] = {}
        self._jumps: SharedJumps[_Connection] = SharedJumps(self._connect_with_retries)
        self._lock = threading.Lock()

    async def run(self, host: Host, spec: CommandSpec, on_output: OutputSink) -> HostResult:
        started = time.monotonic()
        try:
            connection = await self._connect_with_retries(host)
        except ConnectFailure as exc:
            return unreachable(host, exc, started)
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        delivery = _Delivery(loop, on_output, spec.flow)
        output = CommandOutput(delivery, spec.keep_output_chars)
        work = loop.run_in_executor(
            self._pool, self._run_blocking, connection, spec, output, delivery, stop
        )
        try:
            end = await asyncio.shield(work)
        except asyncio.CancelledError:
            stop.set()  # the worker stops the remote group, then returns
            with contextlib.suppress(Exception):
                await asyncio.wait_for(work, KILL_WAIT_S * 2)
            raise
        finally:
            connection.close()
        # Let the last chunks the worker handed over reach the sink before the result does.
        await asyncio.sleep(0)
        return command_result(host, started, end, output)

    async def open_link(self, host: Host, *, retry: bool) -> ParamikoLink:
        """A connection for durable jobs; raises `LinkFailure` (see `base.LinkOpener`)."""
        try:
            if retry:
                # A durable job is for flaky links: a handshake lost to packet loss times
                # out, and is worth the run's retries here (not in a plain run).
                connection = await self._connect_with_retries(host, retry_timeouts=True)
            else:
                connection = await self._connect(host)
        except ConnectFailure as exc:
            raise LinkFailure(
                exc.message, reason=exc.reason, transient=exc.transient and not retry
            ) from exc
        return ParamikoLink(connection, self._pool)

    async def close(self) -> None:
        for jump in list(self._jumps.drain()):
            jump.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- connecting -----------------------------------------------------------------------

    async def _connect_with_retries(
        self, host: Host, *, retry_timeouts: bool = False
    ) -> _Connection:
        return await connect_with_retries(
            lambda: self._connect(host),
            self._options.retries,
            retry_timeouts=retry_timeouts or self._options.retry_timeouts,
        )

    async def _connect(self, host: Host) -> _Connection:
        via = (
            await self._jumps.connection(resolve_jump(host, self._options.jump_hosts))
            if host.jump
            else None
        )
        loop = asyncio.get_running_loop()
        async with self._gate.slot(host.address, host.port):
            return await loop.run_in_executor(self._pool, self._connect_blocking, host, via)

    def _connect_blocking(self, host: Host, via: _Connection | None) -> _Connection:
        timeout = self._options.connect_timeout or host.connect_timeout
        sock = self._open_socket(host, via, timeout)
        transport = _Transport(sock)
        try:
            files = known_hosts_files(host.known_hosts)
            known, revoked = _load_known_hosts(files)
            name = known_hosts_entry_name(host.address, host.port)
            pinned = known.lookup(name)
            if pinned:
                # Ask for the key types known_hosts has first, as OpenSSH does, so a server
                # with several host keys is not refused for showing an unpinned one; the
                # others after them, so a server showing only another type is refused as a
                # changed key, not as a failed key exchange that looks like a dropped link.
                options = transport.get_security_options()
                types = list(options.key_types)
                first = [t for t in types if _key_type_family(t) in pinned]
                options.key_types = [*first, *(t for t in types if t not in first)]
            negotiated = threading.Event()
            transport.banner_timeout = timeout
            transport.start_client(event=negotiated)  # returns at once; the thread negotiates
            if not negotiated.wait(timeout):
                raise connect_timed_out(timeout, answered=True)
            if not transport.is_active():
                error = transport.get_exception()
                raise ConnectFailure(
                    f"connection dropped: {reason(error) if error else 'negotiation failed'}",
                    reason=Reason.DROPPED,
                )
            self._check_host_key(host, transport, files, known, revoked)
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
                    f"{reason(exc)}",
                    reason=Reason.REFUSED,
                ) from exc
            return channel  # type: ignore[return-value]  # a Channel works as a socket
        try:
            return socket.create_connection((host.address, host.port), timeout=timeout)
        except OSError as exc:
            raise socket_failure(exc, host.address, host.port, timeout) from exc

    def _check_host_key(
        self,
        host: Host,
        transport: paramiko.Transport,
        files: list[Path],
        known: paramiko.HostKeys,
        revoked: paramiko.HostKeys,
    ) -> None:
        try:
            key = transport.get_remote_server_key()
        except paramiko.SSHException as exc:  # the link died right after the key exchange
            raise ConnectFailure(
                f"connection dropped: {reason(exc)}", reason=Reason.DROPPED
            ) from exc
        fingerprint = key.fingerprint  # "SHA256:...", as OpenSSH and asyncssh print it
        name = known_hosts_entry_name(host.address, host.port)
        pinned = known.lookup(name)
        if any(k == key for k in (revoked.lookup(name) or {}).values()):
            verdict = HostKeyVerdict.REVOKED
        elif pinned and any(k == key for k in pinned.values()):
            return
        elif pinned:
            same_type = key.get_name() in pinned
            verdict = HostKeyVerdict.CHANGED if same_type else HostKeyVerdict.OTHER_TYPE
        elif self._options.host_keys.accept_new:
            append_known_host(
                files[0], host.address, host.port, f"{key.get_name()} {key.get_base64()}"
            )
            return
        else:
            verdict = HostKeyVerdict.UNKNOWN
        message = describe_refusal(verdict, files, fingerprint, key_type=key.get_name())
        raise ConnectFailure(message, reason=Reason.HOST_KEY)

    def _authenticate(self, host: Host, transport: paramiko.Transport) -> None:
        user = host.user or getpass.getuser()
        own = host.identity_file
        if own and os.environ.get("SSH_AUTH_SOCK") and encrypted_key(own):
            own = None  # bastion never prompts: the agent's keys (warned before the run)
        keys = [self._key(own)] if own else _default_keys()
        last = "no key to offer (give identity_file, or run ssh-agent)"
        for key in keys:
            try:
                transport.auth_publickey(user, key)
            except paramiko.AuthenticationException as exc:
                last = reason(exc)
                if "timeout" in last.lower():
                    # paramiko's auth_timeout: the server never answered (a lossy link), it
                    # did not refuse the key; worth another attempt like any dropped handshake.
                    raise ConnectFailure(
                        f"authentication for {user} timed out: {last}", reason=Reason.DROPPED
                    ) from exc
                continue
            except paramiko.SSHException as exc:
                raise ConnectFailure(
                    f"connection dropped: {reason(exc)}", reason=Reason.DROPPED
                ) from exc
            if transport.is_authenticated():
                return
        raise ConnectFailure(f"authentication failed for {user}: {last}", reason=Reason.AUTH)

    def _key(self, identity_file: str) -> paramiko.PKey:
        with self._lock:
            key = self._keys.get(identity_file)
            if key is None:
                try:
                    key = paramiko.PKey.from_path(identity_file)
                except (OSError, paramiko.SSHException) as exc:
                    raise ConnectFailure(
                        f"cannot load identity_file {identity_file}: {reason(exc)}",
                        reason=Reason.AUTH,
                    ) from exc
                self._keys[identity_file] = key
            return key

    # --- running --------------------------------------------------------------------------

    def _run_blocking(
        self,
        connection: _Connection,
        spec: CommandSpec,
        output: CommandOutput,
        delivery: _Delivery,
        stop: threading.Event,
    ) -> CommandEnd:
        deadline = time.monotonic() + spec.timeout if spec.timeout is not None else None
        try:
            channel = connection.transport.open_session(timeout=KILL_WAIT_S)
            channel.exec_command(with_pid_preamble(spec.command))
            if spec.stdin:
                channel.sendall(spec.stdin)
            channel.shutdown_write()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            return CommandEnd(no_session=reason(exc))
        timed_out = False

        def should_stop() -> bool:
            nonlocal timed_out
            if stop.is_set():
                return True
            if deadline is not None and time.monotonic() > deadline:
                timed_out = True
                return True
            return False

        ended = _pump(channel, connection, output.feed, should_stop)
        if ended is None:  # timed out or interrupted: stop the remote group
            delivery.release()
            if output.pid is not None:
                _exec_quietly(connection.transport, kill_group_command(output.pid))
            after = _pump(channel, connection, output.feed, _after(KILL_WAIT_S))
            channel.close()
            output.flush()
            # The session ended once signalled: the group is gone.
            return CommandEnd(
                timeout=spec.timeout if timed_out else None,
                stopped=after is not None,
                lost=None if timed_out else "interrupted",
            )
        output.flush()
        return ended


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
            return f"cannot open a session: {reason(exc)}"
        ended = _pump(channel, self._connection, deliver, stop.is_set)
        if ended is None:
            channel.close()
            return "interrupted"
        if ended.exit_signal is not None:
            return exit_status_of_signal(ended.exit_signal)
        if ended.exit_status is None:
            return ended.lost or "the session closed without an exit status"
        return ended.exit_status

    def close(self) -> None:
        self._connection.close()


def _pump(
    channel: paramiko.Channel,
    connection: _Connection,
    on_data: DataSink,
    should_stop: Callable[[], bool],
) -> CommandEnd | None:
    """Read the channel to its end: how it ended (exit status, signal or the reason it was
    lost), or None if ``should_stop`` said to stop first."""
    liveness = connection.liveness
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
                return CommandEnd(exit_status=status)
            # paramiko reports -1 when the channel closed without an exit status.
            return _without_status(channel, connection)
        if channel.closed and not pending:
            return _without_status(channel, connection)
        dead = liveness.check()
        if dead is not None:
            return CommandEnd(lost=dead)
        if should_stop():
            return None


def _without_status(channel: paramiko.Channel, connection: _Connection) -> CommandEnd:
    """A channel that closed with no exit status: killed by a signal, or the link is gone."""
    signal_name = connection.transport.exit_signals.pop(channel.get_id(), None)
    if signal_name is not None:
        return CommandEnd(exit_signal=signal_name)
    return CommandEnd(
        lost=connection.liveness.check() or "the session closed without an exit status"
    )


def _key_type_family(key_type: str) -> str:
    """The known_hosts key type a host key algorithm belongs to (``rsa-sha2-512``: ssh-rsa)."""
    if key_type.startswith("rsa-sha2-"):
        return "ssh-rsa" + key_type.removeprefix("rsa-sha2-256").removeprefix("rsa-sha2-512")
    return key_type


def _transport_error(transport: paramiko.Transport) -> str:
    error = transport.get_exception()
    return f" ({reason(error)})" if error is not None else ""


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


def _load_known_hosts(files: list[Path]) -> tuple[paramiko.HostKeys, paramiko.HostKeys]:
    """The pinned keys and the ``@revoked`` ones. Read here, not by paramiko's loader, which
    fails on marker lines (``@revoked``, ``@cert-authority``); a line it cannot read is
    skipped, as OpenSSH skips it. ``@cert-authority`` lines are not used (paramiko does not
    check host certificates): such a host is refused unless its own key is pinned."""
    known = paramiko.HostKeys()
    revoked = paramiko.HostKeys()
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConnectFailure(
                f"cannot read known_hosts {path}: {reason(exc)}", reason=Reason.HOST_KEY
            ) from exc
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            into = known
            if line.startswith("@"):
                marker, _, rest = line.partition(" ")
                if marker != "@revoked":
                    continue
                into, line = revoked, rest.strip()
            try:
                entry = paramiko.hostkeys.HostKeyEntry.from_line(line)
            except (paramiko.SSHException, paramiko.hostkeys.InvalidHostKey, ValueError):
                continue
            if entry is not None and entry.key is not None:
                for name in entry.hostnames:
                    into.add(name, entry.key.get_name(), entry.key)
    return known, revoked


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
