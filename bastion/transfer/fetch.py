"""``bastion fetch`` on one host: remote files into ``LOCALDIR/HOST/<remote path>``.

Each host writes only under its own directory, so hosts never overwrite each other. A file is
written to a temporary name beside its place (0600 from its creation) and renamed there once
complete; with ``--preserve`` it then takes the remote permission bits (never set-id bits) and
modification time. A path that is missing or unreadable is that host's failure; its other paths
are still fetched.

Nothing the node sends is trusted as a path (docs/security.md, "hostile node: file names"): a
directory entry named empty, ``.``, ``..``, or with a ``/`` or NUL in it is refused as that
host's failure; remote symlinks met while walking are listed with their target, never followed;
and every local directory and file is created relative to a directory descriptor with
``O_NOFOLLOW``, so no symlink (sent by the node or planted here) leads outside LOCALDIR/HOST.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import posixpath
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from bastion.models import FileFailure, FileReport, Host, HostResult
from bastion.private_files import (
    UnsafeLocation,
    new_file_in,
    open_private_dir,
    private_subdir,
)
from bastion.runrecord import file_stem
from bastion.transfer.report import failure_lines, file_result, listed
from bastion.transport.base import OutputSink
from bastion.transport.files import BulkDownload, RemoteEntry, RemoteFileError, RemoteFiles

PARALLEL_FILES = 8
TAR_FILES = 8
"""From this many files, a host without SFTP sends them as one tar stream (GNU tar there)."""
MAX_DEPTH = 64
"""Directory levels walked below a fetched directory (a node could list one without end)."""


@dataclass(frozen=True, slots=True)
class FetchOptions:
    recursive: bool = False
    preserve: bool = False


@dataclass(slots=True)
class _Outcome:
    fetched: list[tuple[str, str]] = field(default_factory=list)
    """(remote path, local path)"""
    failed: list[FileFailure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    """(remote symlink, its target): recorded, not followed."""


def host_directory(local_root: Path, host: str) -> Path:
    """Where one host's files land."""
    return local_root / file_stem(host)


async def fetch_from_host(
    files: RemoteFiles,
    host: Host,
    paths: Sequence[str],
    local_root: Path,
    options: FetchOptions,
    emit: OutputSink,
) -> HostResult:
    """Fetch ``paths`` (already rendered for this host) into ``local_root/HOST``."""
    outcome = _Outcome()
    home = await files.home()
    if not posixpath.isabs(home):
        outcome.failed.append(FileFailure(home, "the login directory is not an absolute path"))
        return _result(host, outcome, emit)
    wanted: dict[str, RemoteEntry] = {}
    for path in paths:
        absolute = posixpath.normpath(posixpath.join(home, path))
        try:
            await _collect(files, absolute, options, wanted, outcome)
        except RemoteFileError as exc:
            outcome.failed.append(FileFailure(absolute, exc.reason))
    if not wanted:
        return _result(host, outcome, emit)
    try:
        tree = _HostTree(local_root, file_stem(host.name))
    except (OSError, UnsafeLocation) as exc:
        outcome.failed.append(FileFailure(str(host_directory(local_root, host.name)), _why(exc)))
        return _result(host, outcome, emit)
    if isinstance(files, BulkDownload) and len(wanted) >= TAR_FILES:
        try:
            await _fetch_as_tar(files, files, tree, wanted, options.preserve, outcome)
        finally:
            tree.close()
        return _result(host, outcome, emit)
    slots = asyncio.Semaphore(PARALLEL_FILES)

    async def fetch_one(remote: str, entry: RemoteEntry) -> None:
        async with slots:
            try:
                local = await _download(files, remote, tree, entry, options.preserve)
            except RemoteFileError as exc:
                outcome.failed.append(FileFailure(remote, exc.reason))
            else:
                outcome.fetched.append((remote, local))

    try:
        await asyncio.gather(*(fetch_one(remote, entry) for remote, entry in wanted.items()))
    finally:
        tree.close()
    return _result(host, outcome, emit)


async def _fetch_as_tar(
    files: RemoteFiles,
    bulk: BulkDownload,
    tree: _HostTree,
    wanted: dict[str, RemoteEntry],
    preserve: bool,
    outcome: _Outcome,
) -> None:
    """Many files as one tar stream; each still lands through `_HostTree` like `_download`."""
    sink = _TreeSink(tree, wanted, preserve, outcome)
    try:
        received = await bulk.get_many(list(wanted), sink)
    except RemoteFileError as exc:
        received = set(sink.done)
        outcome.failed.append(FileFailure(exc.path, exc.reason))
    if received is None:  # no GNU tar there: one file at a time
        for remote, entry in wanted.items():
            try:
                local = await _download(files, remote, tree, entry, preserve)
            except RemoteFileError as exc:
                outcome.failed.append(FileFailure(remote, exc.reason))
            else:
                outcome.fetched.append((remote, local))
        return
    for remote in wanted:
        if remote not in received and remote not in sink.refused:
            outcome.failed.append(FileFailure(remote, "not sent by the host (unreadable?)"))


class _TreeSink:
    """Receives a tar stream's files below LOCALDIR/HOST: temporary file, then rename."""

    def __init__(
        self, tree: _HostTree, wanted: dict[str, RemoteEntry], preserve: bool, outcome: _Outcome
    ) -> None:
        self._tree = tree
        self._wanted = wanted
        self._preserve = preserve
        self._outcome = outcome
        self._open: dict[str, tuple[int, str, BinaryIO, str]] = {}
        self._discards: dict[str, BinaryIO] = {}
        self.done: list[str] = []
        self.refused: set[str] = set()

    def begin(self, path: str) -> BinaryIO:
        parts = [part for part in path.split("/") if part]
        bad = next((refused_name(p) for p in parts if refused_name(p) is not None), None)
        local = self._tree.root.joinpath(*parts)
        try:
            if bad is not None or not parts:
                raise OSError(f"cannot be a local path: {bad or 'no file name'}")
            with self._tree.parent_of(parts) as parent:
                keep = os.dup(parent)
            fd, temporary = new_file_in(keep, parts[-1])
        except OSError as exc:
            self.refused.add(path)
            reason = f"cannot write {local}: {exc.strerror or exc}"
            self._outcome.failed.append(FileFailure(path, reason))
            discard = self._discards[path] = open(os.devnull, "wb")  # noqa: SIM115
            return discard
        sink = os.fdopen(fd, "wb")
        self._open[path] = (keep, temporary, sink, str(local))
        return sink

    def end(self, path: str) -> None:
        self._close_discard(path)
        opened = self._open.pop(path, None)
        if opened is None:
            return
        parent, temporary, sink, local = opened
        name = os.path.basename(local)
        try:
            entry = self._wanted[path]
            if self._preserve:
                os.fchmod(sink.fileno(), entry.mode & 0o777)
                sink.flush()
                if entry.mtime is not None:
                    os.utime(sink.fileno(), (entry.mtime, entry.mtime))
            sink.close()
            os.replace(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)
        except OSError as exc:
            self.refused.add(path)
            self._outcome.failed.append(
                FileFailure(path, f"cannot write {local}: {exc.strerror or exc}")
            )
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=parent)
        else:
            self.done.append(path)
            self._outcome.fetched.append((path, local))
        finally:
            sink.close()
            os.close(parent)

    def _close_discard(self, path: str) -> None:
        discard = self._discards.pop(path, None)
        if discard is not None:
            discard.close()

    def abandon(self, path: str) -> None:
        self._close_discard(path)
        opened = self._open.pop(path, None)
        if opened is not None:
            parent, temporary, sink, _ = opened
            sink.close()
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=parent)
            os.close(parent)


def _why(exc: BaseException) -> str:
    if isinstance(exc, UnsafeLocation):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


def refused_name(name: str) -> str | None:
    """Why a directory entry's name sent by a node cannot be a local file name (None: it can)."""
    if name == "":
        return "an empty name"
    if name in (".", ".."):
        return f"the name {name!r}"
    if "/" in name:
        return f"a name with '/' in it ({name!r})"
    if "\0" in name:
        return f"a name with a NUL byte in it ({name!r})"
    return None


class _HostTree:
    """LOCALDIR/HOST as an open directory; files are made below it, never through a symlink."""

    def __init__(self, local_root: Path, stem: str) -> None:
        self.root = local_root / stem
        top = open_private_dir(local_root)
        try:
            self._fd = private_subdir(top, stem)
        finally:
            os.close(top)

    def close(self) -> None:
        os.close(self._fd)

    @contextmanager
    def parent_of(self, parts: Sequence[str]) -> Iterator[int]:
        """The directory that holds ``parts[-1]``, each missing level created 0700."""
        fd = os.dup(self._fd)
        try:
            for depth, part in enumerate(parts[:-1]):
                try:
                    fd = _swap(fd, private_subdir(fd, part))
                except OSError as exc:
                    where = self.root.joinpath(*parts[: depth + 1])
                    if exc.errno == errno.ELOOP or os.path.islink(where):
                        raise OSError(
                            errno.ELOOP, f"{where} is a symlink here: refusing to follow it"
                        ) from exc
                    raise OSError(exc.errno, f"{where}: {exc.strerror or exc}") from exc
            yield fd
        finally:
            os.close(fd)


def _swap(old: int, new: int) -> int:
    os.close(old)
    return new


async def _collect(
    files: RemoteFiles,
    path: str,
    options: FetchOptions,
    wanted: dict[str, RemoteEntry],
    outcome: _Outcome,
) -> None:
    entry = await files.stat(path)
    if entry is None:
        outcome.failed.append(FileFailure(path, "no such file or directory"))
    elif entry.kind == "file":
        wanted[path] = entry
    elif entry.kind != "dir":
        outcome.failed.append(FileFailure(path, "not a regular file or a directory"))
    elif not options.recursive:
        outcome.failed.append(FileFailure(path, "is a directory: use -r to fetch it"))
    else:
        await _walk(files, path, wanted, outcome)


async def _walk(
    files: RemoteFiles,
    top: str,
    wanted: dict[str, RemoteEntry],
    outcome: _Outcome,
    depth: int = 0,
) -> None:
    if depth >= MAX_DEPTH:
        outcome.failed.append(FileFailure(top, f"more than {MAX_DEPTH} directory levels"))
        return
    for entry in sorted(await files.scandir(top), key=lambda e: e.name):
        refused = refused_name(entry.name)
        if refused is not None:
            outcome.failed.append(
                FileFailure(top, f"refusing a directory entry sent by the host: {refused}")
            )
            continue
        path = posixpath.join(top, entry.name)
        if entry.kind == "symlink":
            try:
                target = await files.readlink(path)
            except RemoteFileError as exc:
                target = f"(unreadable: {exc.reason})"
            outcome.links.append((path, target))
        elif entry.kind == "dir":
            try:
                await _walk(files, path, wanted, outcome, depth + 1)
            except RemoteFileError as exc:
                outcome.failed.append(FileFailure(path, exc.reason))
        elif entry.kind == "file":
            wanted[path] = entry
        else:
            outcome.notes.append(f"skipped {path} (not a regular file)")


async def _download(
    files: RemoteFiles, remote: str, tree: _HostTree, entry: RemoteEntry, preserve: bool
) -> str:
    """Fetch ``remote`` to its place below ``tree``; returns the local path written."""
    parts = [part for part in remote.split("/") if part]
    bad = next((refused_name(p) for p in parts if refused_name(p) is not None), None)
    if bad is not None or not parts:
        raise RemoteFileError(remote, f"cannot be a local path: {bad or 'no file name'}")
    local = tree.root.joinpath(*parts)
    try:
        with tree.parent_of(parts) as parent:
            fd, temporary = new_file_in(parent, parts[-1])
            try:
                with os.fdopen(fd, "wb") as sink:
                    await files.get(remote, sink)
                    if preserve:
                        os.fchmod(sink.fileno(), entry.mode & 0o777)
                        sink.flush()
                        if entry.mtime is not None:
                            os.utime(sink.fileno(), (entry.mtime, entry.mtime))
                os.replace(temporary, parts[-1], src_dir_fd=parent, dst_dir_fd=parent)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary, dir_fd=parent)
    except OSError as exc:
        raise RemoteFileError(remote, f"cannot write {local}: {exc.strerror or exc}") from exc
    return str(local)


def _result(host: Host, outcome: _Outcome, emit: OutputSink) -> HostResult:
    fetched = sorted(outcome.fetched)
    lines = listed([f"fetched {remote} -> {local}" for remote, local in fetched], "fetched")
    lines += listed(
        [f"symlink {path} -> {target} (recorded, not followed)" for path, target in outcome.links],
        "symlinks",
    )
    lines += failure_lines(outcome.failed) + listed(outcome.notes, "skipped")
    lines.append(f"{len(fetched)} fetched, {len(outcome.failed)} failed")
    report = FileReport(
        kind="fetch", changed=tuple(local for _, local in fetched), failed=tuple(outcome.failed)
    )
    return file_result(host, report, lines, emit)
