"""``bastion fetch`` on one host: remote files into ``LOCALDIR/HOST/<remote path>``.

Each host writes only under its own directory, so hosts never overwrite each other. A file is
written to a temporary name beside its place (0600 from its creation) and renamed there once
complete; with ``--preserve`` it then takes the remote permission bits (never set-id bits) and
modification time. A path that is missing or unreadable is that host's failure; its other paths
are still fetched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bastion.models import FileFailure, FileReport, Host, HostResult
from bastion.private_files import private_dir
from bastion.runrecord import file_stem
from bastion.transfer.report import failure_lines, file_result, listed
from bastion.transport.base import OutputSink
from bastion.transport.files import RemoteEntry, RemoteFileError, RemoteFiles

PARALLEL_FILES = 8


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
    wanted: dict[str, RemoteEntry] = {}
    for path in paths:
        absolute = posixpath.normpath(posixpath.join(home, path))
        try:
            await _collect(files, absolute, options, wanted, outcome)
        except RemoteFileError as exc:
            outcome.failed.append(FileFailure(absolute, exc.reason))
    into = host_directory(local_root, host.name)
    slots = asyncio.Semaphore(PARALLEL_FILES)

    async def fetch_one(remote: str, entry: RemoteEntry) -> None:
        local = into / remote.lstrip("/")
        async with slots:
            try:
                await _download(files, remote, into, local, entry, options.preserve)
            except RemoteFileError as exc:
                outcome.failed.append(FileFailure(remote, exc.reason))
            else:
                outcome.fetched.append((remote, str(local)))

    await asyncio.gather(*(fetch_one(remote, entry) for remote, entry in wanted.items()))
    return _result(host, outcome, emit)


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
    files: RemoteFiles, top: str, wanted: dict[str, RemoteEntry], outcome: _Outcome
) -> None:
    for listed_entry in sorted(await files.scandir(top), key=lambda e: e.name):
        path = posixpath.join(top, listed_entry.name)
        entry = listed_entry
        if entry.kind == "symlink":
            target = await files.stat(path)
            if target is None or target.kind != "file":
                outcome.notes.append(f"skipped {path} (symlink to a directory or nothing)")
                continue
            entry = target
        if entry.kind == "dir":
            try:
                await _walk(files, path, wanted, outcome)
            except RemoteFileError as exc:
                outcome.failed.append(FileFailure(path, exc.reason))
        elif entry.kind == "file":
            wanted[path] = entry
        else:
            outcome.notes.append(f"skipped {path} (not a regular file)")


async def _download(
    files: RemoteFiles, remote: str, into: Path, local: Path, entry: RemoteEntry, preserve: bool
) -> None:
    try:
        _private_parents(into, local)
        temporary = local.parent / f".{local.name}.bastion-{secrets.token_hex(4)}"
        fd = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except OSError as exc:
        raise RemoteFileError(
            remote, f"cannot write {exc.filename or local}: {exc.strerror}"
        ) from exc
    try:
        with os.fdopen(fd, "wb") as sink:
            await files.get(remote, sink)
        if preserve:
            os.chmod(temporary, entry.mode & 0o777)
            if entry.mtime is not None:
                os.utime(temporary, (entry.mtime, entry.mtime))
        os.replace(temporary, local)
    except OSError as exc:
        raise RemoteFileError(remote, f"cannot write {local}: {exc.strerror}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _private_parents(into: Path, local: Path) -> None:
    """Create ``local``'s missing parents, each 0700, from the host's own directory down."""
    private_dir(into)
    current = into
    for part in local.parent.relative_to(into).parts:
        current = current / part
        with contextlib.suppress(FileExistsError):
            current.mkdir(mode=0o700)


def _result(host: Host, outcome: _Outcome, emit: OutputSink) -> HostResult:
    fetched = sorted(outcome.fetched)
    lines = listed([f"fetched {remote} -> {local}" for remote, local in fetched], "fetched")
    lines += failure_lines(outcome.failed) + listed(outcome.notes, "skipped")
    lines.append(f"{len(fetched)} fetched, {len(outcome.failed)} failed")
    report = FileReport(
        kind="fetch", changed=tuple(local for _, local in fetched), failed=tuple(outcome.failed)
    )
    return file_result(host, report, lines, emit)
