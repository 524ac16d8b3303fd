"""Host-key policy: strict against known_hosts by default, trust-on-first-use only when asked.

A host whose key is missing from known_hosts is refused unless ``accept_new`` is set, in which
case its key is added atomically, under a lock that every bastion process takes (so two runs
adding keys at once keep them all), through a symlinked known_hosts to its target. A host whose
key *changed* is always refused, loudly: that is what a man-in-the-middle looks like. Turning
checking off is not offered at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from bastion.private_files import open_in, write_in

DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")


class HostKeyVerdict(StrEnum):
    """Why a presented host key was accepted or refused."""

    TRUSTED = "trusted"
    ACCEPTED_NEW = "accepted-new"
    UNKNOWN = "unknown"
    CHANGED = "changed"
    REVOKED = "revoked"
    """The presented key is marked ``@revoked`` in known_hosts."""
    OTHER_TYPE = "other-type"
    """known_hosts pins keys of other types only, and the server offers none of them."""


@dataclass(frozen=True, slots=True)
class HostKeyPolicy:
    """Which known_hosts files to trust, and whether unknown hosts may be added."""

    accept_new: bool = False


def known_hosts_files(configured: str | None) -> list[Path]:
    """The known_hosts files that apply to a host: its configured file, or the user's defaults."""
    if configured:
        return [Path(configured).expanduser()]
    return [Path(name).expanduser() for name in DEFAULT_KNOWN_HOSTS]


def known_hosts_entry_name(address: str, port: int) -> str:
    """The host field OpenSSH writes: ``addr`` on port 22, ``[addr]:port`` otherwise."""
    return address if port == 22 else f"[{address}]:{port}"


_append_lock = threading.Lock()
LOCK_SUFFIX = ".lock"


def append_known_host(path: Path, address: str, port: int, key_line: str) -> None:
    """Add one ``host keytype base64`` line to a known_hosts file, atomically.

    A symlinked known_hosts is written through to its target (the link stays). The file is
    rewritten through a temporary file beside the target and renamed into place, so a reader
    (another bastion run, or ssh) never sees half a line; writers of every process take an
    exclusive ``flock`` on ``<target>.lock`` first, so none loses another's line. The target
    keeps its mode (0600 when new).
    """
    entry = f"{known_hosts_entry_name(address, port)} {key_line.strip()}\n"
    target = _resolved(path)
    with _append_lock, _locked(target):
        directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            current, mode = _read(directory, target.name)
            if entry in current.splitlines(keepends=True):
                return
            if current and not current.endswith("\n"):
                current += "\n"
            write_in(directory, target.name, current + entry, mode=mode)
        finally:
            os.close(directory)


def _resolved(path: Path) -> Path:
    """Where the lines go: the final target of a symlinked known_hosts (its folder made 0700)."""
    path = path.expanduser()
    target = Path(os.path.realpath(path)) if path.is_symlink() else path.absolute()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return target


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = open_in(directory, target.name + LOCK_SUFFIX, append=True)
    finally:
        os.close(directory)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _read(directory: int, name: str) -> tuple[str, int]:
    """The file's text and permission bits (``("", 0o600)`` when it does not exist yet)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
    except FileNotFoundError:
        return "", 0o600
    with os.fdopen(fd, encoding="utf-8", errors="surrogateescape") as handle:
        return handle.read(), stat.S_IMODE(os.fstat(handle.fileno()).st_mode)


def describe_refusal(
    verdict: HostKeyVerdict, files: list[Path], fingerprint: str, *, key_type: str = ""
) -> str:
    """The one-line error a user sees when a host key is refused."""
    where = ", ".join(str(f) for f in files)
    if verdict is HostKeyVerdict.REVOKED:
        return (
            f"HOST KEY REVOKED: the server presented {fingerprint}, which {where} marks "
            "@revoked; refusing"
        )
    if verdict is HostKeyVerdict.OTHER_TYPE:
        return (
            f"HOST KEY CHANGED: the server presented {fingerprint}, a {key_type or 'other'} "
            f"key, but {where} pins keys of other types only for it; refusing (possible "
            "man-in-the-middle; if the host was rebuilt, remove its old entry and connect again)"
        )
    if verdict is HostKeyVerdict.CHANGED:
        return (
            f"HOST KEY CHANGED: the server presented {fingerprint}, which does not match "
            f"{where}; refusing (possible man-in-the-middle; if the host was rebuilt, remove "
            "its old entry and connect again)"
        )
    return (
        f"host key {fingerprint} is not in {where}; refusing "
        "(add it to known_hosts, or use --accept-new to trust it on first use)"
    )
