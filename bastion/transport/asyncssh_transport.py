"""The default transport: asyncssh, one connection per host, one session per command.

It also implements `FileTransfer` (SFTP, in `asyncssh_sftp`) for ``copy`` and ``fetch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
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
from bastion.models import Host, HostResult, Reason, Status
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
from bastion.transport.identity import encrypted_key
from bastion.transport.library_probe import lean_asyncssh_import
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
    ended_result,
    exit_status_of_signal,
    reason,
    socket_failure,
)

with lean_asyncssh_import():  # no gcc/ld probe for liboqs, no X.509 (library_probe.py)
    import asyncssh
    from asyncssh.public_key import get_default_certificate_algs, get_default_public_key_algs

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
                        f"cannot read known_hosts {path}: {exc.strerror}", reason=Reason.HOST_KEY
                    ) from exc
                try:
                    known.load(text)
                except ValueError as exc:
                    raise ConnectFailure(
                        f"cannot parse known_hosts {path}: {exc}", reason=Reason.HOST_KEY
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
    """Decides on every host key against known_hosts: trusted, revoked, changed, of a type
    not pinned, unknown (refused, or accepted and recorded with ``accept_new``).

    asyncssh is given the trusted keys less the revoked ones (`trusted_keys`), so a revoked
    key, like any key not trusted, comes here and is refused by name. Public for the agent's
    pool, which asks it (strictly) whether a held connection's key is still trusted before
    reusing the connection."""

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
        self.key_type = ""
        self.answered = False
        """The TCP connection was made (a connect timeout then is a stalled handshake)."""

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self.answered = True

    def trusted_keys(
        self, host: str, addr: str, port: int | None
    ) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]]:
        """For asyncssh's ``known_hosts``: (host keys less revoked, CA keys, no revoked)."""
        match = self._known.match(host, addr, port)
        revoked = set(match[2])
        return [k for k in match[0] if k not in revoked], list(match[1]), []

    def host_key_algs(self, host: str, port: int | None) -> list[str] | tuple[()]:
        """The host key algorithms to offer: the pinned keys' first, as OpenSSH orders them,
        then every other default one, so that a server showing only another type of key is
        refused as a changed key by `validate_host_public_key`, not as a failed key exchange
        that looks like a dropped connection. With nothing pinned under ``host`` (an unknown
        host, or a name ~/.ssh/config maps to another HostName), asyncssh's own choice: the
        types of the keys known for the host it resolves."""
        addr = host if _is_ip(host) else ""
        pinned, ca_keys, _ = self.trusted_keys(host, addr, port)
        if not pinned:
            return ()
        first = [alg for key in pinned for alg in key.sig_algorithms]
        defaults = [*get_default_certificate_algs(), *get_default_public_key_algs()]
        ordered = [*get_default_certificate_algs(), *first] if ca_keys else first
        return list(dict.fromkeys(a.decode("ascii") for a in [*ordered, *defaults]))

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.fingerprint = key.get_fingerprint()
        self.key_type = key.get_algorithm()
        match = self._known.match(host, addr, port if port != 22 else None)
        host_keys, ca_keys, revoked = match[0], match[1], match[2]
        if key in revoked:
            self.verdict = HostKeyVerdict.REVOKED
            return False
        if key in host_keys:
            # Accepted by a concurrent connection after this one had matched known_hosts.
            return True
        if host_keys or ca_keys:
            same_type = any(k.get_algorithm() == self.key_type for k in host_keys)
            self.verdict = (
                HostKeyVerdict.CHANGED if same_type or ca_keys else HostKeyVerdict.OTHER_TYPE
            )
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

    def refusal(self) -> str:
        """The host-key message of a refused connection."""
        verdict = self.verdict if self.fingerprint else HostKeyVerdict.UNKNOWN
        return describe_refusal(
            verdict, self._files, self.fingerprint or "(no key seen)", key_type=self.key_type
        )


class _CommandSession(asyncssh.SSHClientSession[bytes]):
    """Hands one command's output to the session core as it arrives; records how it ended."""

    def __init__(self, output: CommandOutput, flow: OutputFlow | None) -> None:
        self.output = output
        self.flow = FlowControl(flow, self._pause, self._resume)
        self._channel: asyncssh.SSHClientChannel[bytes] | None = None
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.done: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:
        self._channel = chan

    def _pause(self) -> None:
        if self._channel is not None:
            self._channel.pause_reading()

    def _resume(self) -> None:
        if self._channel is not None:
            self._channel.resume_reading()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        stderr = datatype == asyncssh.EXTENDED_DATA_STDERR
        self.output.feed("stderr" if stderr else "stdout", data)
        self.flow.after_chunk()

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
            raise LinkLost(f"cannot open a session: {reason(exc)}") from exc
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
            return exit_status_of_signal(session.exit_signal)
        raise LinkLost(reason(lost) if lost else "the session closed without an exit status")

    def close(self) -> None:
        self._connection.close()


@dataclass(slots=True)
class ConnectAttempt:
    """What one host's connection attempts came to (public: the agent's pool opens with it)."""

    connection: asyncssh.SSHClientConnection | None
    error: str | None = None
    reason: Reason | None = None


class AsyncsshTransport:
    """Runs each host's command over its own asyncssh connection."""

    name = "asyncssh"

    def __init__(self, options: ConnectOptions) -> None:
        self._options = options
        self._gate = HandshakeGate(options.max_handshakes_per_server, options.max_handshakes)
        self._known_hosts = KnownHostsCache()
        self._client_keys: dict[str, list[asyncssh.SSHKey]] = {}
        self._jumps: SharedJumps[asyncssh.SSHClientConnection] = SharedJumps(self._connect_retrying)

    async def run(self, host: Host, spec: CommandSpec, on_output: OutputSink) -> HostResult:
        started = time.monotonic()
        attempt = await self._connect_with_retries(host)
        if attempt.connection is None:
            return ended_result(host, Status.UNREACHABLE, attempt.error, started, attempt.reason)
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
            return ended_result(host, Status.UNREACHABLE, attempt.error, started, attempt.reason)
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
                host,
                Status.UNREACHABLE,
                f"connection lost mid-transfer: {exc}",
                started,
                Reason.DROPPED,
            )
        finally:
            connection.close()
        return replace(result, duration_s=time.monotonic() - started)

    async def open_link(self, host: Host, *, retry: bool) -> AsyncsshLink:
        """A connection for durable jobs; raises `LinkFailure` (see `base.LinkOpener`)."""
        try:
            if retry:
                # A durable job is for flaky links: a handshake lost to packet loss times
                # out, and is worth the run's retries here (not in a plain run).
                return AsyncsshLink(await self._connect_retrying(host, retry_timeouts=True))
            return AsyncsshLink(await self._connect(host))
        except ConnectFailure as exc:
            raise LinkFailure(
                exc.message, reason=exc.reason, transient=exc.transient and not retry
            ) from exc

    async def close(self) -> None:
        for connection in list(self._jumps.drain()):
            connection.close()
            await connection.wait_closed()

    async def _execute(
        self,
        connection: asyncssh.SSHClientConnection,
        host: Host,
        spec: CommandSpec,
        on_output: OutputSink,
        started: float,
    ) -> HostResult:
        output = CommandOutput(on_output, spec.keep_output_chars)
        try:
            channel, opened = await connection.create_session(
                lambda: _CommandSession(output, spec.flow),
                with_pid_preamble(spec.command),
                encoding=None,
            )
            session = cast(_CommandSession, opened)
        except (asyncssh.Error, OSError) as exc:
            return command_result(host, started, CommandEnd(no_session=reason(exc)))
        if spec.stdin:
            channel.write(spec.stdin)
        channel.write_eof()
        try:
            lost = await asyncio.wait_for(asyncio.shield(session.done), spec.timeout)
        except TimeoutError:
            session.flow.release()
            stopped = await self._stop_remote(connection, session)
            output.flush()
            channel.close()
            end = CommandEnd(exit_status=session.exit_status, timeout=spec.timeout, stopped=stopped)
            return command_result(host, started, end, output)
        except asyncio.CancelledError:
            session.flow.release()
            await asyncio.shield(self._stop_remote(connection, session))
            channel.close()
            raise
        output.flush()
        end = CommandEnd(
            exit_status=session.exit_status,
            exit_signal=session.exit_signal,
            lost=reason(lost) if lost else None,
        )
        return command_result(host, started, end, output)

    async def _stop_remote(
        self, connection: asyncssh.SSHClientConnection, session: _CommandSession
    ) -> bool:
        """Signal the command's process group from a second session; True once it has ended."""
        pid = session.output.pid
        if pid is not None:
            with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
                await asyncio.wait_for(
                    connection.run(kill_group_command(pid), check=False), KILL_WAIT_S
                )
        try:
            await asyncio.wait_for(asyncio.shield(session.done), KILL_WAIT_S)
        except TimeoutError:
            return False
        return True

    async def _connect_with_retries(self, host: Host) -> ConnectAttempt:
        try:
            connection = await self._connect_retrying(host)
        except ConnectFailure as exc:
            return ConnectAttempt(None, exc.message, exc.reason)
        return ConnectAttempt(connection)

    async def _connect_retrying(
        self, host: Host, *, retry_timeouts: bool = False
    ) -> asyncssh.SSHClientConnection:
        return await connect_with_retries(
            lambda: self._connect(host),
            self._options.retries,
            retry_timeouts=retry_timeouts or self._options.retry_timeouts,
        )

    async def _connect(self, host: Host) -> asyncssh.SSHClientConnection:
        tunnel = (
            await self._jumps.connection(resolve_jump(host, self._options.jump_hosts))
            if host.jump
            else None
        )
        files = known_hosts_files(host.known_hosts)
        known = self._known_hosts.get(files)
        client = HostKeyClient(known, files, self._options.host_keys.accept_new, self._known_hosts)
        timeout = self._options.connect_timeout or host.connect_timeout
        kwargs: dict[str, object] = {}
        if host.user:
            kwargs["username"] = host.user
        if host.port != 22:
            kwargs["port"] = host.port
        if host.identity_file and not _through_agent(host.identity_file):
            kwargs["client_keys"] = self._client_keys_for(host.identity_file)
        if tunnel is not None:
            kwargs["tunnel"] = tunnel
        port = host.port if host.port != 22 else None
        try:
            async with self._gate.slot(host.address, host.port):
                connection, _ = await asyncio.wait_for(
                    asyncssh.create_connection(
                        lambda: client,
                        host.address,
                        known_hosts=client.trusted_keys,
                        server_host_key_algs=client.host_key_algs(host.address, port),
                        keepalive_interval=self._options.keepalive_interval,
                        keepalive_count_max=self._options.keepalive_count_max,
                        connect_timeout=timeout,
                        encryption_algs=ENCRYPTION_ALGS,
                        **kwargs,  # type: ignore[arg-type]
                    ),
                    timeout,
                )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise ConnectFailure(client.refusal(), reason=Reason.HOST_KEY) from exc
        except asyncssh.PermissionDenied as exc:
            user = host.user or "the default user"
            raise ConnectFailure(
                f"authentication failed for {user}: {reason(exc)}", reason=Reason.AUTH
            ) from exc
        except asyncssh.ChannelOpenError as exc:  # only a jump host opens channels for us
            raise ConnectFailure(
                f"jump host {host.jump} cannot open a tunnel to {host.address}:{host.port}: "
                f"{reason(exc)}",
                reason=Reason.REFUSED,
            ) from exc
        except TimeoutError as exc:
            raise connect_timed_out(timeout, answered=client.answered) from exc
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError) as exc:
            raise ConnectFailure(
                f"connection dropped: {reason(exc)}", reason=Reason.DROPPED
            ) from exc
        except OSError as exc:
            raise socket_failure(exc, host.address, host.port, timeout) from exc
        return connection

    def _client_keys_for(self, identity_file: str) -> list[asyncssh.SSHKey]:
        keys = self._client_keys.get(identity_file)
        if keys is None:
            try:
                keys = [asyncssh.read_private_key(identity_file)]
            except (OSError, asyncssh.KeyImportError) as exc:
                raise ConnectFailure(
                    f"cannot load identity_file {identity_file}: {reason(exc)}",
                    reason=Reason.AUTH,
                ) from exc
            self._client_keys[identity_file] = keys
        return keys


def _through_agent(identity_file: str) -> bool:
    """An encrypted key with ssh-agent running: use the agent's keys (bastion never prompts;
    `identity.check_identity_files` warned before the run)."""
    return bool(os.environ.get("SSH_AUTH_SOCK")) and encrypted_key(identity_file)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
