"""The default transport: asyncssh, one connection per host, one session per command.

It also implements `FileTransfer` (SFTP, in `asyncssh_sftp`) for ``copy`` and ``fetch``.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import signal
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeAlias, cast

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
    OutputFlow,
    OutputSink,
)
from bastion.transport.files import ConnectionLost, FilesWork
from bastion.transport.library_probe import lean_asyncssh_import
from bastion.transport.pacing import HandshakeGate
from bastion.transport.remote_shell import PID_MARKER, kill_group_command, with_pid_preamble
from bastion.transport.retry import ConnectFailure, connect_with_retries

with lean_asyncssh_import():  # no gcc/ld probe for liboqs, no X.509 (library_probe.py)
    import asyncssh

KILL_WAIT_S = 5.0
"""How long to wait for a timed-out command's session to close after its group is signalled."""

ENCRYPTION_ALGS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)
"""OpenSSH's default ciphers, AES-GCM first: in asyncssh one AEAD call per packet (AES-NI),
where chacha20-poly1305 builds two cipher contexts and a MAC per packet; measured ~12% less
client CPU per host for `true`, and more for bulk output."""


Connection: TypeAlias = asyncssh.SSHClientConnection
"""An open SSH connection, for modules that keep connections (the agent's pool) without
importing asyncssh themselves: this module and `asyncssh_sftp` are the only importers."""

KnownHosts: TypeAlias = asyncssh.SSHKnownHosts
"""Parsed known_hosts entries (see `KnownHostsCache`)."""


class KnownHostsCache:
    """known_hosts files parsed once per run, and kept current when a new key is accepted.

    Public for the agent's pool, which subclasses it to parse a file again once it changed."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[Path, ...], asyncssh.SSHKnownHosts] = {}

    def get(self, files: list[Path]) -> asyncssh.SSHKnownHosts:
        key = tuple(files)
        known = self._parsed.get(key)
        if known is None:
            known = asyncssh.SSHKnownHosts()
            for path in files:
                try:
                    text = path.read_text(encoding="utf-8")
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise ConnectFailure(
                        f"cannot read known_hosts {path}: {exc.strerror}", transient=False
                    ) from exc
                try:
                    known.load(text)
                except ValueError as exc:
                    raise ConnectFailure(
                        f"cannot parse known_hosts {path}: {exc}", transient=False
                    ) from exc
            self._parsed[key] = known
        return known

    def forget(self, files: list[Path]) -> None:
        """Parse ``files`` again on the next `get`."""
        self._parsed.pop(tuple(files), None)

    def add(self, files: list[Path], line: str) -> None:
        for key, known in self._parsed.items():
            if key[0] == files[0]:
                known.load(line)


class HostKeyClient(asyncssh.SSHClient):
    """Decides on host keys that known_hosts does not already trust.

    Public for the agent's pool, which asks it (strictly) whether a held connection's key is
    still trusted before reusing the connection."""

    def __init__(
        self,
        known: asyncssh.SSHKnownHosts,
        files: list[Path],
        accept_new: bool,
        cache: KnownHostsCache,
    ) -> None:
        self._known = known
        self._files = files
        self._accept_new = accept_new
        self._cache = cache
        self.verdict = HostKeyVerdict.TRUSTED
        self.fingerprint = ""

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.fingerprint = key.get_fingerprint()
        match = self._known.match(host, addr, port if port != 22 else None)
        host_keys, ca_keys = match[0], match[1]
        if key in host_keys:
            # Accepted by a concurrent connection after this one had matched known_hosts.
            return True
        if host_keys or ca_keys:
            self.verdict = HostKeyVerdict.CHANGED
            return False
        if not self._accept_new:
            self.verdict = HostKeyVerdict.UNKNOWN
            return False
        key_line = key.export_public_key("openssh").decode("ascii").strip()
        key_line = " ".join(key_line.split()[:2])
        append_known_host(self._files[0], host, port, key_line)
        self._cache.add(self._files, f"{known_hosts_entry_name(host, port)} {key_line}")
        self.verdict = HostKeyVerdict.ACCEPTED_NEW
        return True


class _CommandSession(asyncssh.SSHClientSession[bytes]):
    """Collects one command's output and exit status, streaming chunks as they arrive."""

    def __init__(
        self, on_output: OutputSink, keep_chars: int | None = None, flow: OutputFlow | None = None
    ) -> None:
        self._on_output = on_output
        self._keep_chars = keep_chars
        self._flow = flow
        self._channel: asyncssh.SSHClientChannel[bytes] | None = None
        self._paused = False
        self._kept: dict[Stream, int] = {"stdout": 0, "stderr": 0}
        self._decoders: dict[Stream, codecs.IncrementalDecoder] = {
            "stdout": codecs.getincrementaldecoder("utf-8")(errors="replace"),
            "stderr": codecs.getincrementaldecoder("utf-8")(errors="replace"),
        }
        self._parts: dict[Stream, list[str]] = {"stdout": [], "stderr": []}
        self._preamble: bytes | None = b""
        self.pid: int | None = None
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.done: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:
        self._channel = chan

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            self._emit("stderr", data)
        else:
            if self._preamble is not None:
                data = self._strip_preamble(data)
            if data:
                self._emit("stdout", data)
        if self._flow is not None and not self._paused and self._flow.throttle(self._resume):
            # The consumer is behind: stop reading; the SSH window then stops the command.
            self._paused = True
            if self._channel is not None:
                self._channel.pause_reading()

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            if self._channel is not None:
                self._channel.resume_reading()

    def stop_throttling(self) -> None:
        """Read on regardless of the flow (a stopping command's close comes after its data:
        at most one SSH window more reaches the consumer)."""
        self._flow = None
        self._resume()

    def _strip_preamble(self, data: bytes) -> bytes:
        """Take the pid line off the front of stdout (it may arrive split across packets)."""
        assert self._preamble is not None
        buffered = self._preamble + data
        if not PID_MARKER.startswith(buffered[: len(PID_MARKER)]):
            self._preamble = None
            return buffered
        newline = buffered.find(b"\n")
        if newline < 0:
            self._preamble = buffered
            return b""
        digits = buffered[len(PID_MARKER) : newline]
        self.pid = int(digits) if digits.isdigit() else None
        self._preamble = None
        return buffered[newline + 1 :]

    def _emit(self, stream: Stream, data: bytes) -> None:
        text = self._decoders[stream].decode(data)
        if text:
            self._keep(stream, text)
            self._on_output(stream, text)

    def _keep(self, stream: Stream, text: str) -> None:
        """Keep ``text`` for the result, up to the limit."""
        if self._keep_chars is None:
            self._parts[stream].append(text)
            return
        room = self._keep_chars - self._kept[stream]
        if room > 0:
            kept = text[:room]
            self._parts[stream].append(kept)
            self._kept[stream] += len(kept)

    def flush(self) -> None:
        """Emit a trailing partial character sequence, if any."""
        for stream in ("stdout", "stderr"):
            decoder = self._decoders[stream]
            text = decoder.decode(b"", final=True)
            if text:
                self._keep(stream, text)
                self._on_output(stream, text)

    def output(self, stream: Stream) -> str:
        return "".join(self._parts[stream])

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.exit_signal = signal

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(exc)


class _RawSession(asyncssh.SSHClientSession[bytes]):
    """Passes a command's raw output on as it arrives and records how it ended."""

    def __init__(self, on_data: DataSink) -> None:
        self._on_data = on_data
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.done: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._on_data("stderr" if datatype == asyncssh.EXTENDED_DATA_STDERR else "stdout", data)

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.exit_signal = signal

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(exc)


class AsyncsshLink:
    """One asyncssh connection running commands one after another (see `base.Link`)."""

    def __init__(self, connection: asyncssh.SSHClientConnection) -> None:
        self._connection = connection

    async def exec(self, command: str, on_data: DataSink) -> int:
        try:
            channel, opened = await self._connection.create_session(
                lambda: _RawSession(on_data), command, encoding=None
            )
        except (asyncssh.Error, OSError) as exc:
            raise LinkLost(f"cannot open a session: {_reason(exc)}") from exc
        session = cast(_RawSession, opened)
        channel.write_eof()
        try:
            lost = await asyncio.shield(session.done)
        except asyncio.CancelledError:
            channel.close()
            raise
        if session.exit_status is not None:
            return session.exit_status
        if session.exit_signal is not None:
            number = getattr(signal, f"SIG{session.exit_signal}", None)
            return 128 + int(number) if number is not None else 255
        raise LinkLost(_reason(lost) if lost else "the session closed without an exit status")

    def close(self) -> None:
        self._connection.close()


@dataclass(slots=True)
class ConnectAttempt:
    """What one host's connection attempts came to (public: the agent's pool opens with it)."""

    connection: asyncssh.SSHClientConnection | None
    error: str | None = None


class AsyncsshTransport:
    """Runs each host's command over its own asyncssh connection."""

    name = "asyncssh"

    def __init__(self, options: ConnectOptions) -> None:
        self._options = options
        self._gate = HandshakeGate(options.max_handshakes_per_server, options.max_handshakes)
        self._known_hosts = KnownHostsCache()
        self._client_keys: dict[str, list[asyncssh.SSHKey]] = {}
        self._jumps: dict[str, asyncio.Task[ConnectAttempt]] = {}

    async def run(self, host: Host, spec: CommandSpec, on_output: OutputSink) -> HostResult:
        started = time.monotonic()
        attempt = await self._connect_with_retries(host)
        if attempt.connection is None:
            return ended_result(host, Status.UNREACHABLE, attempt.error, started)
        connection = attempt.connection
        try:
            return await self._execute(connection, host, spec, on_output, started)
        finally:
            connection.close()

    async def with_files(self, host: Host, work: FilesWork) -> HostResult:
        """`FileTransfer`: SFTP and helper commands over one connection, as limited as `run`.

        A server without an SFTP subsystem gets exec sessions instead (`ShellFiles`).
        """
        from bastion.transport.asyncssh_sftp import SftpFiles, ShellFiles

        started = time.monotonic()
        attempt = await self._connect_with_retries(host)
        if attempt.connection is None:
            return ended_result(host, Status.UNREACHABLE, attempt.error, started)
        connection = attempt.connection
        try:
            try:
                sftp = await connection.start_sftp_client()
            except (asyncssh.Error, OSError):  # no SFTP subsystem (hardened sshd): plain exec
                result = await work(ShellFiles(connection))
            else:
                async with sftp:
                    result = await work(SftpFiles(connection, sftp))
        except ConnectionLost as exc:
            return ended_result(
                host, Status.UNREACHABLE, f"connection lost mid-transfer: {exc}", started
            )
        finally:
            connection.close()
        return replace(result, duration_s=time.monotonic() - started)

    async def open_link(self, host: Host, *, retry: bool) -> AsyncsshLink:
        """A connection for durable jobs; raises `LinkFailure` (see `base.LinkOpener`)."""
        if retry:
            attempt = await self._connect_with_retries(host)
            if attempt.connection is None:
                raise LinkFailure(attempt.error or "cannot connect", transient=False)
            return AsyncsshLink(attempt.connection)
        try:
            return AsyncsshLink(await self._connect(host))
        except ConnectFailure as exc:
            raise LinkFailure(exc.message, transient=exc.transient) from exc

    async def close(self) -> None:
        for task in self._jumps.values():
            if task.done() and not task.cancelled():
                attempt = task.result()
                if attempt.connection is not None:
                    attempt.connection.close()
                    await attempt.connection.wait_closed()
            else:
                task.cancel()
        self._jumps.clear()

    async def _execute(
        self,
        connection: asyncssh.SSHClientConnection,
        host: Host,
        spec: CommandSpec,
        on_output: OutputSink,
        started: float,
    ) -> HostResult:
        def result(
            status: Status, session: _CommandSession | None, error: str | None
        ) -> HostResult:
            return HostResult(
                host=host.name,
                address=host.address,
                status=status,
                exit_status=session.exit_status if session else None,
                stdout=session.output("stdout") if session else "",
                stderr=session.output("stderr") if session else "",
                error=error,
                duration_s=time.monotonic() - started,
            )

        try:
            channel, opened = await connection.create_session(
                lambda: _CommandSession(on_output, spec.keep_output_chars, spec.flow),
                with_pid_preamble(spec.command),
                encoding=None,
            )
            session = cast(_CommandSession, opened)
        except (asyncssh.Error, OSError) as exc:
            return result(Status.UNREACHABLE, None, f"cannot open a session: {_reason(exc)}")
        if spec.stdin:
            channel.write(spec.stdin)
        channel.write_eof()
        try:
            lost = await asyncio.wait_for(asyncio.shield(session.done), spec.timeout)
        except TimeoutError:
            session.stop_throttling()
            stopped = await self._stop_remote(connection, session)
            session.flush()
            channel.close()
            outcome = (
                "remote process group stopped"
                if stopped
                else "the remote command may still be running (it did not stop when signalled)"
            )
            return result(Status.TIMEOUT, session, f"timed out after {spec.timeout:g}s; {outcome}")
        except asyncio.CancelledError:
            session.stop_throttling()
            await asyncio.shield(self._stop_remote(connection, session))
            channel.close()
            raise
        session.flush()
        if session.exit_status is None and session.exit_signal is None:
            reason = _reason(lost) if lost else "the session closed without an exit status"
            return result(Status.UNREACHABLE, session, f"connection lost mid-command: {reason}")
        if session.exit_signal is not None:
            return result(Status.FAILED, session, f"killed by signal {session.exit_signal}")
        if session.exit_status == 0:
            return result(Status.OK, session, None)
        return result(Status.FAILED, session, f"exit status {session.exit_status}")

    async def _stop_remote(
        self, connection: asyncssh.SSHClientConnection, session: _CommandSession
    ) -> bool:
        """Signal the command's process group from a second session; True once it has ended."""
        if session.pid is not None:
            with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
                await asyncio.wait_for(
                    connection.run(kill_group_command(session.pid), check=False), KILL_WAIT_S
                )
        try:
            await asyncio.wait_for(asyncio.shield(session.done), KILL_WAIT_S)
        except TimeoutError:
            return False
        return True

    async def _connect_with_retries(self, host: Host) -> ConnectAttempt:
        try:
            connection = await connect_with_retries(
                lambda: self._connect(host), self._options.retries
            )
        except ConnectFailure as exc:
            return ConnectAttempt(None, exc.message)
        return ConnectAttempt(connection)

    async def _connect(self, host: Host) -> asyncssh.SSHClientConnection:
        tunnel = await self._tunnel_for(host)
        files = known_hosts_files(host.known_hosts)
        known = self._known_hosts.get(files)
        client = HostKeyClient(known, files, self._options.host_keys.accept_new, self._known_hosts)
        timeout = self._options.connect_timeout or host.connect_timeout
        kwargs: dict[str, object] = {}
        if host.user:
            kwargs["username"] = host.user
        if host.port != 22:
            kwargs["port"] = host.port
        if host.identity_file:
            kwargs["client_keys"] = self._client_keys_for(host.identity_file)
        if tunnel is not None:
            kwargs["tunnel"] = tunnel
        try:
            async with self._gate.slot(host.address, host.port):
                connection, _ = await asyncio.wait_for(
                    asyncssh.create_connection(
                        lambda: client,
                        host.address,
                        known_hosts=known,
                        keepalive_interval=self._options.keepalive_interval,
                        keepalive_count_max=self._options.keepalive_count_max,
                        connect_timeout=timeout,
                        encryption_algs=ENCRYPTION_ALGS,
                        **kwargs,  # type: ignore[arg-type]
                    ),
                    timeout,
                )
        except asyncssh.HostKeyNotVerifiable as exc:
            verdict = client.verdict if client.fingerprint else HostKeyVerdict.UNKNOWN
            message = describe_refusal(verdict, files, client.fingerprint or "(no key seen)")
            raise ConnectFailure(message, transient=False) from exc
        except asyncssh.PermissionDenied as exc:
            user = host.user or "the default user"
            raise ConnectFailure(
                f"authentication failed for {user}: {_reason(exc)}", transient=False
            ) from exc
        except asyncssh.ChannelOpenError as exc:  # only a jump host opens channels for us
            raise ConnectFailure(
                f"jump host {host.jump} cannot open a tunnel to {host.address}:{host.port}: "
                f"{_reason(exc)}",
                transient=exc.code == asyncssh.OPEN_CONNECT_FAILED,
            ) from exc
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
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError, ConnectionError) as exc:
            raise ConnectFailure(f"connection dropped: {_reason(exc)}", transient=True) from exc
        except OSError as exc:
            raise ConnectFailure(
                f"cannot connect to {host.address}:{host.port}: {_reason(exc)}", transient=True
            ) from exc
        return connection

    def _client_keys_for(self, identity_file: str) -> list[asyncssh.SSHKey]:
        keys = self._client_keys.get(identity_file)
        if keys is None:
            try:
                keys = [asyncssh.read_private_key(identity_file)]
            except (OSError, asyncssh.KeyImportError) as exc:
                raise ConnectFailure(
                    f"cannot load identity_file {identity_file}: {_reason(exc)}", transient=False
                ) from exc
            self._client_keys[identity_file] = keys
        return keys

    async def _tunnel_for(self, host: Host) -> asyncssh.SSHClientConnection | None:
        """The shared connection to this host's jump host, opened once for every target."""
        if not host.jump:
            return None
        jump = resolve_jump(host, self._options.jump_hosts)
        key = f"{jump.user}@{jump.address}:{jump.port}"
        task = self._jumps.get(key)
        if task is None:
            task = self._jumps[key] = asyncio.ensure_future(self._connect_with_retries(jump))
        attempt = await asyncio.shield(task)
        if attempt.connection is None:
            raise ConnectFailure(
                f"jump host {jump.name} unreachable: {attempt.error}", transient=False
            )
        return attempt.connection


def ended_result(host: Host, status: Status, error: str | None, started: float) -> HostResult:
    """A result with no command outcome: the host was not reached, or lost, or failed early."""
    return HostResult(
        host=host.name,
        address=host.address,
        status=status,
        error=error,
        duration_s=time.monotonic() - started,
    )


def _reason(exc: BaseException) -> str:
    """A short, single-line reason for an exception."""
    if isinstance(exc, asyncssh.Error):
        text = exc.reason
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())
