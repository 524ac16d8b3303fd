"""``fetch --sudo``: a host's files read through sudo (root-only files), not through SFTP.

SFTP runs as the login user, so it cannot read ``/etc/shadow`` or ``/root``. `SudoReads` wraps
a host's `RemoteFiles` and does the three reads fetch needs (stat, list a directory, read a
file) with one sudo'd helper each, through the same guard as ``run --sudo`` (`bastion.command`),
the password, if any, on stdin. Needs GNU ``stat`` and ``find`` (``-printf``) on the host.
A file read this way is held in memory once (fetch reads at most 8 at a time).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from bastion.transport.files import EntryKind, ExecResult, RemoteEntry, RemoteFileError, RemoteFiles

KINDS: dict[str, EntryKind] = {"f": "file", "d": "dir", "l": "symlink"}
"""find's ``%y`` letters; anything else is "other"."""
S_IFMT = 0o170000
MODE_KINDS: dict[int, EntryKind] = {0o100000: "file", 0o040000: "dir", 0o120000: "symlink"}


class SudoReads:
    """`RemoteFiles` whose reads go through sudo; everything else is the wrapped one's."""

    def __init__(self, files: RemoteFiles, wrap: Callable[[str], str], stdin: bytes | None) -> None:
        """``wrap`` puts a command through sudo; ``stdin`` (the password lines) goes to each."""
        self._files = files
        self._wrap = wrap
        self._stdin = stdin

    async def exec(self, command: str, stdin: bytes | None = None) -> ExecResult:
        return await self._files.exec(command, stdin)

    async def home(self) -> str:
        return await self._files.home()

    async def mkdir(self, path: str, *, parents: bool = False) -> None:
        await self._files.mkdir(path, parents=parents)

    async def put(self, source: Path, path: str, mode: int) -> None:
        await self._files.put(source, path, mode)

    async def chmod(self, path: str, mode: int) -> None:
        await self._files.chmod(path, mode)

    async def rename(self, source: str, target: str) -> None:
        await self._files.rename(source, target)

    async def remove(self, path: str) -> None:
        await self._files.remove(path)

    async def _sudo(self, path: str, command: str) -> ExecResult:
        done = await self._files.exec(self._wrap(command), self._stdin)
        if done.exit_status != 0:
            raise RemoteFileError(path, _reason(done))
        return done

    async def stat(self, path: str) -> RemoteEntry | None:
        quoted = shlex.quote(path)
        # Exit 3 (not 1) tells "no such file" from sudo's own failures.
        check = f"if [ -e {quoted} ]; then stat -L -c '%f %s %Y' -- {quoted}; else exit 3; fi"
        done = await self._files.exec(self._wrap(check), self._stdin)
        if done.exit_status == 3:
            return None
        if done.exit_status != 0:
            raise RemoteFileError(path, _reason(done))
        try:
            raw, size, mtime = done.stdout.decode().split()
            mode = int(raw, 16)
            return RemoteEntry(
                path.rsplit("/", 1)[-1],
                MODE_KINDS.get(mode & S_IFMT, "other"),
                int(size),
                mode & 0o7777,
                float(mtime),
            )
        except ValueError:
            raise RemoteFileError(path, "unexpected stat output") from None

    async def scandir(self, path: str) -> list[RemoteEntry]:
        done = await self._sudo(
            path,
            f"find {shlex.quote(path)} -mindepth 1 -maxdepth 1 -printf '%y %m %s %T@ %f\\0'",
        )
        entries = []
        for record in done.stdout.split(b"\0")[:-1]:
            try:
                kind, mode, size, mtime, name = record.decode("utf-8", "surrogateescape").split(
                    " ", 4
                )
                entry = RemoteEntry(
                    name, KINDS.get(kind, "other"), int(size), int(mode, 8), float(mtime)
                )
            except ValueError:
                raise RemoteFileError(path, "unexpected find output") from None
            if name in ("", ".", "..") or "/" in name:
                raise RemoteFileError(path, f"refused an entry named {name!r}")
            entries.append(entry)
        return entries

    async def readlink(self, path: str) -> str:
        """A symlink's target as stored (fetch records it, never follows it)."""
        done = await self._sudo(path, f"readlink -- {shlex.quote(path)}")
        return done.stdout.decode(errors="surrogateescape").removesuffix("\n")

    async def get(self, path: str, sink: BinaryIO) -> None:
        done = await self._sudo(path, f"cat -- {shlex.quote(path)}")
        sink.write(done.stdout)


def _reason(done: ExecResult) -> str:
    """The helper's last stderr line (sudo's own reason, or the command's)."""
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"exit status {done.exit_status}"
