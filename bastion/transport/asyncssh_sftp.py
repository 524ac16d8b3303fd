"""`RemoteFiles` over one asyncssh connection: an SFTP session, plus exec sessions for helpers."""

from __future__ import annotations

import stat
from collections.abc import Iterator
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
