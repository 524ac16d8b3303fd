"""`RemoteFiles` over one asyncssh connection: an SFTP session, plus exec sessions for helpers.

`SftpFiles` when the server runs an SFTP subsystem; `ShellFiles` (exec sessions only: ``cat``,
``stat``, ``mv``...) when it does not, as on hardened hosts with ``Subsystem sftp`` removed.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import stat
import tarfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast

import asyncssh

from bastion.transport.files import (
    ConnectionLost,
    EntryKind,
    ExecResult,
    RemoteEntry,
    RemoteFileError,
    TarSink,
    is_number,
)

CHUNK = 4 * 1024 * 1024
"""Bytes handed to SFTP per call; asyncssh splits them into parallel write or read requests."""

_KINDS: dict[int, EntryKind] = {
    asyncssh.FILEXFER_TYPE_REGULAR: "file",
    asyncssh.FILEXFER_TYPE_DIRECTORY: "dir",
    asyncssh.FILEXFER_TYPE_SYMLINK: "symlink",
}
_LOST = (asyncssh.SFTPNoConnection, asyncssh.SFTPConnectionLost)


@contextmanager
def _translated(path: str) -> Iterator[None]:
    """Turn asyncssh's and the local file system's errors into the transport-neutral ones."""
    try:
        yield
    except asyncssh.SFTPError as exc:
        if isinstance(exc, _LOST):
            raise ConnectionLost(_reason(exc)) from exc
        raise RemoteFileError(path, _reason(exc)) from exc
    except (asyncssh.Error, ConnectionError) as exc:
        raise ConnectionLost(_reason(exc)) from exc
    except OSError as exc:  # the local side of a put or get
        name = exc.filename or path
        raise RemoteFileError(path, f"local file {name}: {exc.strerror or exc}") from exc


def _reason(exc: BaseException) -> str:
    text = exc.reason if isinstance(exc, asyncssh.Error) else str(exc) or type(exc).__name__
    return " ".join(text.split()).rstrip(".").lower() or type(exc).__name__


def _entry(name: str, attrs: asyncssh.SFTPAttrs) -> RemoteEntry:
    mode = attrs.permissions or 0
    return RemoteEntry(
        name=name,
        kind=_KINDS.get(attrs.type, "other"),
        size=attrs.size or 0,
        mode=stat.S_IMODE(mode),
        mtime=attrs.mtime,
    )


class SftpFiles:
    """One host's files: SFTP for data and metadata, exec sessions for the helper commands."""

    def __init__(self, connection: asyncssh.SSHClientConnection, sftp: asyncssh.SFTPClient) -> None:
        self._connection = connection
        self._sftp = sftp
        self._home: str | None = None
        self._tar = _TarSender(connection, asyncio.Semaphore(SHELL_SESSIONS))

    async def put_many(
        self, root: str, items: Sequence[tuple[Path, str]], *, mtime: bool = False
    ) -> bool:
        return await self._tar.put_many(root, items, mtime=mtime)

    async def exec(self, command: str, stdin: bytes | None = None) -> ExecResult:
        with _translated("(command)"):
            done = await self._connection.run(command, input=stdin or b"", encoding=None)
        stdout = done.stdout if isinstance(done.stdout, bytes) else b""
        stderr = done.stderr if isinstance(done.stderr, bytes) else b""
        return ExecResult(done.exit_status, stdout, stderr)

    async def home(self) -> str:
        if self._home is None:
            with _translated("."):
                self._home = await self._sftp.realpath(".")
        return self._home

    async def stat(self, path: str) -> RemoteEntry | None:
        try:
            with _translated(path):
                attrs = await self._sftp.stat(path)
        except RemoteFileError as exc:
            if isinstance(exc.__cause__, asyncssh.SFTPNoSuchFile):
                return None
            raise
        return _entry(path, attrs)

    async def scandir(self, path: str) -> list[RemoteEntry]:
        with _translated(path):
            # A server's own "." and ".." are skipped; the same names claiming to be anything
            # but a directory are passed on, for fetch to refuse as the lie they are.
            return [
                _entry(str(name.filename), name.attrs)
                async for name in self._sftp.scandir(path)
                if not (
                    name.filename in (".", "..")
                    and name.attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY
                )
            ]

    async def readlink(self, path: str) -> str:
        with _translated(path):
            return str(await self._sftp.readlink(path))

    async def mkdir(self, path: str, *, parents: bool = False) -> None:
        with _translated(path):
            if parents:
                await self._sftp.makedirs(path, exist_ok=True)
                return
            try:
                await self._sftp.mkdir(path)
            except asyncssh.SFTPFailure:
                if not await self._sftp.isdir(path):
                    raise

    async def put(self, source: Path, path: str, mode: int) -> None:
        private = asyncssh.SFTPAttrs(permissions=0o600)
        with _translated(path), source.open("rb") as local:
            async with self._sftp.open(path, "wb", attrs=private) as remote:
                while chunk := local.read(CHUNK):
                    await remote.write(chunk)
                await remote.chmod(mode)

    async def get(self, path: str, sink: BinaryIO) -> None:
        with _translated(path):
            async with self._sftp.open(path, "rb") as remote:
                while chunk := await remote.read(CHUNK):
                    sink.write(cast(bytes, chunk))  # opened "rb": always bytes

    async def chmod(self, path: str, mode: int) -> None:
        with _translated(path):
            await self._sftp.chmod(path, mode)

    async def rename(self, source: str, target: str) -> None:
        with _translated(target):
            await self._sftp.posix_rename(source, target)

    async def remove(self, path: str) -> None:
        try:
            with _translated(path):
                await self._sftp.remove(path)
        except RemoteFileError as exc:
            if not isinstance(exc.__cause__, asyncssh.SFTPNoSuchFile):
                raise


SHELL_SESSIONS = 6
"""Exec sessions at once per host: under OpenSSH's default ``MaxSessions 10``."""
_STAT = "%F|%s|%a|%Y"


def _quoted(path: str) -> str:
    return shlex.quote(path)


def _kind_of(type_name: str) -> EntryKind:
    if type_name.startswith("regular"):
        return "file"
    if type_name == "directory":
        return "dir"
    if type_name == "symbolic link":
        return "symlink"
    return "other"


def _stat_entry(name: str, line: str) -> RemoteEntry | None:
    fields = line.split("|")
    if len(fields) != 4 or not is_number(fields[1]) or not is_number(fields[3].lstrip("-")):
        return None
    type_name, size, mode, mtime = fields
    return RemoteEntry(
        name=name,
        kind=_kind_of(type_name),
        size=int(size),
        mode=int(mode, 8) if is_number(mode, 5) and "8" not in mode and "9" not in mode else 0,
        mtime=float(int(mtime)),
    )


def _failure(done: ExecResult, fallback: str) -> str:
    lines = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        return fallback
    # "cat: /x: No such file or directory" -> "no such file or directory", as SFTP says it
    return lines[-1].rsplit(": ", 1)[-1].strip().rstrip(".").lower()


# Lists a directory without following symlinks: GNU stat in one process (names NUL-ended, so any
# byte but NUL is fine), else one stat per entry (BusyBox), each line "TYPE|SIZE|MODE|MTIME"
# followed by the name and a NUL.
_SCANDIR = f"""cd -- "$1" || exit 1
set -- * .[!.]* ..?*
if stat --printf '' -- . 2>/dev/null; then
  for f; do [ -e "$f" ] || [ -L "$f" ] || continue; printf '%s\\000' "$f"; done \\
    | xargs -0 -r stat --printf '{_STAT}\\n%n\\000' --
else
  for f; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    stat -c '{_STAT}' -- "$f" && printf '%s\\000' "$f"
  done
fi
exit 0
"""


class ShellFiles:
    """`RemoteFiles` over exec sessions only, for an sshd without an SFTP subsystem.

    Hardened hosts often disable ``Subsystem sftp``; pdcp and Ansible still copy there. Each
    operation is one POSIX command over its own session on the same connection (``cat``,
    ``stat``, ``mkdir``, ``chmod``, ``mv``): the SSH channel is 8-bit clean, so file data goes
    through ``cat`` as it is, streamed in `CHUNK`\\ s (bounded memory), with no encoding step.
    Paths are always quoted and after ``--``. Sessions are limited to `SHELL_SESSIONS` at once.
    """

    def __init__(self, connection: asyncssh.SSHClientConnection) -> None:
        self._connection = connection
        self._sessions = asyncio.Semaphore(SHELL_SESSIONS)
        self._home: str | None = None
        self._tar = _TarSender(connection, self._sessions)
        self._untar = _TarReceiver(connection, self._sessions)

    async def get_many(self, paths: Sequence[str], sink: TarSink) -> set[str] | None:
        return await self._untar.get_many(paths, sink)

    async def put_many(
        self, root: str, items: Sequence[tuple[Path, str]], *, mtime: bool = False
    ) -> bool:
        return await self._tar.put_many(root, items, mtime=mtime)

    async def exec(self, command: str, stdin: bytes | None = None) -> ExecResult:
        async with self._sessions:
            with _translated("(command)"):
                done = await self._connection.run(command, input=stdin or b"", encoding=None)
        stdout = done.stdout if isinstance(done.stdout, bytes) else b""
        stderr = done.stderr if isinstance(done.stderr, bytes) else b""
        return ExecResult(done.exit_status, stdout, stderr)

    async def _checked(self, path: str, command: str, what: str) -> bytes:
        done = await self.exec(command)
        if done.exit_status != 0:
            raise RemoteFileError(path, _failure(done, f"{what} failed"))
        return done.stdout

    async def home(self) -> str:
        if self._home is None:
            out = await self._checked(".", "pwd -P", "pwd")
            self._home = out.decode("utf-8", "surrogateescape").rstrip("\n")
        return self._home

    async def stat(self, path: str) -> RemoteEntry | None:
        done = await self.exec(f"stat -L -c '{_STAT}' -- {_quoted(path)}")
        if done.exit_status != 0:
            if b"No such file" in done.stderr:
                return None
            raise RemoteFileError(path, _failure(done, "stat failed"))
        return _stat_entry(path, done.stdout.decode("utf-8", "surrogateescape").strip())

    async def scandir(self, path: str) -> list[RemoteEntry]:
        done = await self.exec(f"sh -c {_quoted(_SCANDIR)} sh {_quoted(path)}")
        if done.exit_status != 0:
            raise RemoteFileError(path, _failure(done, "cannot list the directory"))
        entries = []
        for record in done.stdout.split(b"\0")[:-1]:
            line, _, name = record.decode("utf-8", "surrogateescape").partition("\n")
            entry = _stat_entry(name, line)
            if entry is not None:
                entries.append(entry)
        return entries

    async def readlink(self, path: str) -> str:
        out = await self._checked(path, f"readlink -- {_quoted(path)}", "readlink")
        return out.decode("utf-8", "surrogateescape").removesuffix("\n")

    async def mkdir(self, path: str, *, parents: bool = False) -> None:
        quoted = _quoted(path)
        command = f"mkdir -p -- {quoted}" if parents else f"[ -d {quoted} ] || mkdir -- {quoted}"
        await self._checked(path, command, "mkdir")

    async def put(self, source: Path, path: str, mode: int) -> None:
        quoted = _quoted(path)
        command = f"umask 077 && cat > {quoted} && chmod {mode:o} -- {quoted}"
        async with self._sessions:
            with _translated(path), source.open("rb") as local:
                process = await self._connection.create_process(command, encoding=None)
                try:
                    while chunk := local.read(CHUNK):
                        process.stdin.write(chunk)
                        await process.stdin.drain()
                    process.stdin.write_eof()
                    done = await process.wait()
                finally:
                    process.close()
        if done.exit_status != 0:
            stderr = done.stderr if isinstance(done.stderr, bytes) else b""
            raise RemoteFileError(path, _failure(ExecResult(1, b"", stderr), "write failed"))

    async def get(self, path: str, sink: BinaryIO) -> None:
        async with self._sessions:
            with _translated(path):
                process = await self._connection.create_process(
                    f"cat -- {_quoted(path)}", encoding=None
                )
                try:
                    while chunk := await process.stdout.read(CHUNK):
                        sink.write(cast(bytes, chunk))
                    stderr = await process.stderr.read()
                    done = await process.wait()
                finally:
                    process.close()
        if done.exit_status != 0:
            raise RemoteFileError(path, _failure(ExecResult(1, b"", stderr), "read failed"))

    async def chmod(self, path: str, mode: int) -> None:
        await self._checked(path, f"chmod {mode:o} -- {_quoted(path)}", "chmod")

    async def rename(self, source: str, target: str) -> None:
        await self._checked(target, f"mv -f -- {_quoted(source)} {_quoted(target)}", "mv")

    async def remove(self, path: str) -> None:
        await self._checked(path, f"rm -f -- {_quoted(path)}", "rm")


TAR_BLOCK = 512
TAR_BATCH = 1024 * 1024
"""Bytes of the tar stream gathered before one write (a write per member costs CPU per host)."""


class _TarSender:
    """Many files over one exec session as a tar stream: ``cd ROOT && tar -xf -`` on the host.

    The stream is written here, header by header and chunk by chunk (memory: one `CHUNK`), so
    a thousand small files cost one round trip instead of three SFTP requests each. Members
    are plain files named by the caller (relative, never ``..``), mode 0600, owned by uid 0
    with no names, which tar as root maps to root (the writer) and as any other user ignores.
    """

    def __init__(self, connection: asyncssh.SSHClientConnection, sessions: asyncio.Semaphore):
        self._connection = connection
        self._sessions = sessions
        self._has_tar: bool | None = None

    async def put_many(
        self, root: str, items: Sequence[tuple[Path, str]], *, mtime: bool = False
    ) -> bool:
        if self._has_tar is None:
            async with self._sessions:
                with _translated("(command)"):
                    probe = await self._connection.run("command -v tar", encoding=None)
            self._has_tar = probe.exit_status == 0
        if not self._has_tar:
            return False
        command = f"umask 077 && cd -- {shlex.quote(root)} && tar -xf -"
        async with self._sessions:
            with _translated(root):
                process = await self._connection.create_process(command, encoding=None)
                try:
                    pending = bytearray()  # small members batched: few, full SSH packets
                    for local, name in items:
                        await self._member(process.stdin, pending, local, name, mtime)
                    pending += b"\0" * (2 * TAR_BLOCK)
                    process.stdin.write(bytes(pending))
                    process.stdin.write_eof()
                    done = await process.wait()
                finally:
                    process.close()
        if done.exit_status != 0:
            stderr = done.stderr if isinstance(done.stderr, bytes) else b""
            raise RemoteFileError(root, _failure(ExecResult(1, b"", stderr), "tar failed"))
        return True

    async def _member(
        self,
        stdin: asyncssh.SSHWriter[bytes],
        pending: bytearray,
        local: Path,
        name: str,
        mtime: bool,
    ) -> None:
        with local.open("rb") as source:
            info = os.fstat(source.fileno())
            member = tarfile.TarInfo(name)
            member.size = info.st_size
            member.mode = 0o600
            member.mtime = int(info.st_mtime if mtime else time.time())
            pending += member.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            left = info.st_size
            while left:
                chunk = source.read(min(CHUNK, left)) or b"\0" * min(CHUNK, left)  # shrank
                left -= len(chunk)
                pending += chunk
                if len(pending) >= TAR_BATCH:
                    stdin.write(bytes(pending))
                    pending.clear()
                    await stdin.drain()
            pending += b"\0" * (-info.st_size % TAR_BLOCK)


class _TarReceiver:
    """Many files read as one tar stream: ``tar -cf - --null -T -`` (GNU tar) on the host.

    The stream is parsed here, 512-byte header by header (ustar, GNU long names, PAX paths),
    and every member's data is handed to the caller's `TarSink` in chunks: memory stays at one
    `CHUNK`. The node writes the stream, so nothing in it is trusted: a member that is not a
    regular file, or whose name was not asked for, or comes twice, stops the stream as the
    host's failure; the caller checks every name again before it becomes a local path.
    """

    def __init__(self, connection: asyncssh.SSHClientConnection, sessions: asyncio.Semaphore):
        self._connection = connection
        self._sessions = sessions
        self._gnu_tar: bool | None = None

    async def get_many(self, paths: Sequence[str], sink: TarSink) -> set[str] | None:
        if self._gnu_tar is None:
            async with self._sessions:
                with _translated("(command)"):
                    probe = await self._connection.run("tar --version", encoding=None)
            out = probe.stdout if isinstance(probe.stdout, bytes) else b""
            self._gnu_tar = probe.exit_status == 0 and b"GNU tar" in out
        if not self._gnu_tar:
            return None
        wanted = {path.lstrip("/"): path for path in paths}
        names = b"".join(os.fsencode(name) + b"\0" for name in wanted)
        command = "cd / && tar -cf - --no-recursion --null --verbatim-files-from -T -"
        received: set[str] = set()
        async with self._sessions:
            with _translated("(tar)"):
                process = await self._connection.create_process(command, encoding=None)
                try:
                    process.stdin.write(names)
                    process.stdin.write_eof()
                    await self._read(process.stdout, wanted, sink, received)
                finally:
                    process.close()
        return received

    async def _read(
        self,
        stream: asyncssh.SSHReader[bytes],
        wanted: dict[str, str],
        sink: TarSink,
        received: set[str],
    ) -> None:
        long_name: str | None = None
        while True:
            try:
                block = await stream.readexactly(TAR_BLOCK)
            except asyncio.IncompleteReadError:
                return  # tar stopped early (its errors are the missing files' failures)
            if block == b"\0" * TAR_BLOCK:
                return
            try:
                member = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
            except tarfile.TarError as exc:
                reason = f"unreadable tar stream from the host: {exc}"
                raise RemoteFileError("(tar)", reason) from exc
            if member.size < 0 or member.size > 1 << 50:
                raise RemoteFileError("(tar)", "unreadable tar stream from the host")
            padded = member.size + (-member.size % TAR_BLOCK)
            if member.type in (tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME):
                if member.size > 1 << 20:
                    raise RemoteFileError("(tar)", "a tar header too large")
                data = (await stream.readexactly(padded))[: member.size]
                long_name = (
                    _pax_path(data)
                    if member.type == tarfile.XHDTYPE
                    else (data.rstrip(b"\0").decode("utf-8", "surrogateescape"))
                )
                continue
            if member.type == tarfile.XGLTYPE:
                await stream.readexactly(padded)
                continue
            name, long_name = long_name or member.name, None
            path = wanted.get(name)
            if path is None or path in received or member.type not in tarfile.REGULAR_TYPES:
                raise RemoteFileError(
                    "(tar)", f"the host sent {name!r}, which was not asked for as a regular file"
                )
            await self._member(stream, sink, path, member.size, padded)
            received.add(path)

    async def _member(
        self, stream: asyncssh.SSHReader[bytes], sink: TarSink, path: str, size: int, padded: int
    ) -> None:
        target = sink.begin(path)
        try:
            left = size
            while left:
                chunk = await stream.readexactly(min(CHUNK, left))
                target.write(chunk)
                left -= len(chunk)
            if padded > size:
                await stream.readexactly(padded - size)
        except BaseException:
            sink.abandon(path)
            raise
        sink.end(path)


def _pax_path(data: bytes) -> str | None:
    """The ``path`` record of a PAX header (``LEN path=VALUE\\n`` records), if any."""
    text = data.decode("utf-8", "surrogateescape")
    while text:
        length = text.partition(" ")[0]
        if not is_number(length, 7) or int(length) <= len(length):
            return None
        record, text = text[: int(length)], text[int(length) :]
        key, _, value = record.partition(" ")[2].partition("=")
        if key == "path":
            return value.removesuffix("\n")
    return None
