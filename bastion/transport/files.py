"""File transfer: a capability a transport may have besides running commands.

`bastion copy` and `bastion fetch` need files moved over a host's connection, plus a command or
two (the checksum pass, the ``sudo`` move into place). A transport that can do that implements
`FileTransfer`: it connects as it does for `Transport.run` (same retries, host keys, pacing)
and hands the copy or fetch logic a `RemoteFiles` for that one host. Transports that cannot
(a mosh session, say) simply do not implement it, and those hosts fail with a clear reason.

The copy and fetch logic (``bastion.files``) only sees these types, never a library's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol, runtime_checkable

from bastion.models import Host, HostResult

EntryKind = Literal["file", "dir", "symlink", "other"]


def is_number(text: str, digits: int = 19) -> bool:
    """ASCII decimal digits only, at most ``digits`` of them, as a host prints a number.

    Checked before ``int()``: ``"²".isdigit()`` is True, and 5,000 digits are refused by int.
    """
    return 0 < len(text) <= digits and text.isascii() and text.isdigit()


class RemoteFileError(Exception):
    """One remote path could not be read, written or changed; the host's other paths go on."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ConnectionLost(Exception):
    """The connection dropped during a transfer: the host is unreachable, not just failed."""


@dataclass(frozen=True, slots=True)
class RemoteEntry:
    """A remote file's type, size, permission bits and modification time."""

    name: str
    kind: EntryKind
    size: int = 0
    mode: int = 0
    """Permission bits only (``0o7777``)."""
    mtime: float | None = None


@dataclass(frozen=True, slots=True)
class ExecResult:
    """A helper command's outcome; ``exit_status`` is None when it was killed by a signal."""

    exit_status: int | None
    stdout: bytes
    stderr: bytes


class RemoteFiles(Protocol):
    """One host's files, over one open connection. Errors are `RemoteFileError`."""

    async def exec(self, command: str, stdin: bytes | None = None) -> ExecResult:
        """Run a helper command in the login shell, its stdin fed and closed."""
        ...

    async def home(self) -> str:
        """The absolute path relative remote paths start from (the login directory)."""
        ...

    async def stat(self, path: str) -> RemoteEntry | None:
        """``path`` with symlinks followed, or None when it does not exist."""
        ...

    async def scandir(self, path: str) -> list[RemoteEntry]:
        """The entries of directory ``path`` (symlinks not followed), without . and .."""
        ...

    async def readlink(self, path: str) -> str:
        """The target of the symlink ``path``, as stored (not resolved)."""
        ...

    async def mkdir(self, path: str, *, parents: bool = False) -> None:
        """Create directory ``path`` (and missing parents with ``parents``); exists is fine."""
        ...

    async def put(self, source: Path, path: str, mode: int) -> None:
        """Write the local file ``source`` to ``path`` (created or truncated), then set ``mode``."""
        ...

    async def get(self, path: str, sink: BinaryIO) -> None:
        """Read the whole remote file ``path`` into ``sink``."""
        ...

    async def chmod(self, path: str, mode: int) -> None:
        """Set ``path``'s permission bits."""
        ...

    async def rename(self, source: str, target: str) -> None:
        """Move ``source`` onto ``target`` atomically, replacing it (POSIX ``rename``)."""
        ...

    async def remove(self, path: str) -> None:
        """Remove the file ``path``; a missing one is not an error."""
        ...


@runtime_checkable
class BulkUpload(Protocol):
    """A `RemoteFiles` that can also send many files in one stream (a tar over one session)."""

    async def put_many(
        self, root: str, items: Sequence[tuple[Path, str]], *, mtime: bool = False
    ) -> bool:
        """Write each local file to ``root/<relative path>`` (0600, parents existing).

        Returns False, having sent nothing, when the host cannot (no ``tar``): the caller then
        sends file by file. Raises `RemoteFileError` when the stream failed (every file of it
        is then failed). ``mtime`` keeps each local file's modification time.
        """
        ...


class TarSink(Protocol):
    """Where `BulkDownload.get_many` puts each file it receives."""

    def begin(self, path: str) -> BinaryIO:
        """A writable file for remote ``path`` (raises `RemoteFileError` to refuse it)."""
        ...

    def end(self, path: str) -> None:
        """``path`` was received whole: put it in place."""
        ...

    def abandon(self, path: str) -> None:
        """``path`` was not received whole: drop what was written."""
        ...


@runtime_checkable
class BulkDownload(Protocol):
    """A `RemoteFiles` that can also read many files as one stream (a tar over one session)."""

    async def get_many(self, paths: Sequence[str], sink: TarSink) -> set[str] | None:
        """Stream the regular files ``paths`` (absolute) into ``sink``; the paths received.

        None, having read nothing, when the host cannot (no GNU tar): fetch file by file.
        Raises `RemoteFileError` when the stream is unusable (a name not asked for, say).
        """
        ...


FilesWork = Callable[[RemoteFiles], Awaitable[HostResult]]


@runtime_checkable
class FileTransfer(Protocol):
    """A transport that can also move files: implemented by the asyncssh transport (SFTP)."""

    async def with_files(self, host: Host, work: FilesWork) -> HostResult:
        """Connect to ``host`` and run ``work`` on its files.

        A host that cannot be reached, or whose connection drops (`ConnectionLost`), comes back
        ``unreachable`` without ``work``'s result; the connection is closed either way.
        """
        ...
