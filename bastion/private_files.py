"""Files bastion writes for the user alone: 0600 files in 0700 directories, never via a symlink.

Another local user may be hostile (docs/security.md, "hostile local user"): they may plant a
symlink or a directory where bastion is about to write, hoping bastion (often root) writes
through it. So a directory bastion writes records into is opened by walking its path one
component at a time from ``/`` with directory descriptors (`open_private_dir`), checking each
step the way OpenSSH's ``StrictModes`` checks ``~/.ssh``: every directory on the way is owned by
the user or root and writable by nobody else (a sticky directory such as ``/tmp`` is fine), a
symlink on the way is followed only when the user or root owns it, and the last directory is
the user's own and writable by nobody else. Files are then created relative to that
descriptor with ``O_NOFOLLOW`` (`open_in`, `write_in`), so nothing swapped in afterwards by
path is followed either.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from collections import deque
from pathlib import Path

from bastion.errors import UsageError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 40
"""Symlinks followed while resolving one path (Linux's own limit)."""


class UnsafeLocation(UsageError):
    """A place bastion was asked to write to could be redirected by another user (exit 2)."""


def open_private_dir(path: Path, *, create: bool = True) -> int:
    """An ``O_DIRECTORY`` descriptor of ``path``, created 0700 (with its parents) if missing.

    Raises `UnsafeLocation` when another user could redirect what is written there (see the
    module's docstring), or when ``path`` (or a parent) is not a directory or cannot be made.
    The caller closes the descriptor.
    """
    shown = Path(os.path.abspath(path))
    parts: deque[str] = deque(shown.parts[1:])
    fd = os.open("/", _DIR_FLAGS)
    where = Path("/")
    links = 0
    try:
        _check_step(os.fstat(fd), where, last=not parts)
        while parts:
            name = parts.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                fd = _replace(fd, os.open("..", _DIR_FLAGS, dir_fd=fd))
                where = where.parent
                _check_step(os.fstat(fd), where, last=not parts)
                continue
            here = where / name
            info = _lstat_or_create(fd, name, here, create)
            if stat.S_ISLNK(info.st_mode):
                links += 1
                if info.st_uid not in (os.getuid(), 0):
                    raise UnsafeLocation(
                        f"refusing to follow {here}: a symlink owned by uid {info.st_uid} "
                        f"(neither you nor root); remove it or choose another directory",
                        source=_other(shown, here),
                    )
                if links > _MAX_LINKS:
                    raise UnsafeLocation("too many levels of symbolic links", source=shown)
                target = os.readlink(name, dir_fd=fd)
                if target.startswith("/"):
                    fd = _replace(fd, os.open("/", _DIR_FLAGS))
                    where = Path("/")
                parts.extendleft(
                    reversed(
                        Path(target).parts[1:] if target.startswith("/") else Path(target).parts
                    )
                )
                continue
            if not stat.S_ISDIR(info.st_mode):
                raise UnsafeLocation(f"{here} is not a directory", source=_other(shown, here))
            try:
                opened = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise UnsafeLocation(
                    f"cannot open {here}: {exc.strerror}", source=_other(shown, here)
                ) from exc
            fd = _replace(fd, opened)
            where = here
            info_now = os.fstat(fd)
            if (info_now.st_dev, info_now.st_ino) != (info.st_dev, info.st_ino):
                raise UnsafeLocation(
                    f"{here} changed while it was opened", source=_other(shown, here)
                )
            _check_step(info_now, here, last=not parts, asked=shown)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _other(asked: Path, here: Path) -> Path | None:
    """The path asked for, when the message names another one (a parent, a link)."""
    return asked if asked != here else None


def _replace(old: int, new: int) -> int:
    os.close(old)
    return new


def _lstat_or_create(fd: int, name: str, here: Path, create: bool) -> os.stat_result:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        if not create:
            raise UnsafeLocation(f"{here} does not exist") from None
    try:
        os.mkdir(name, 0o700, dir_fd=fd)
    except FileExistsError:
        pass  # made meanwhile: checked like any other below
    except OSError as exc:
        raise UnsafeLocation(f"cannot create {here}: {exc.strerror}") from exc
    return os.stat(name, dir_fd=fd, follow_symlinks=False)


def _check_step(info: os.stat_result, here: Path, *, last: bool, asked: Path | None = None) -> None:
    """Refuse a directory another user could change under bastion."""
    uid = os.getuid()
    source = asked if asked is not None and asked != here else None
    mode = stat.S_IMODE(info.st_mode)
    if last:
        if info.st_uid != uid:
            raise UnsafeLocation(
                f"refusing {here}: owned by uid {info.st_uid}, not by you (uid {uid})",
                source=source,
            )
        if mode & 0o022:
            raise UnsafeLocation(
                f"refusing {here}: writable by group or others (mode {mode:04o}); "
                f"chmod go-w it or choose another directory",
                source=source,
            )
        return
    if info.st_uid not in (uid, 0):
        raise UnsafeLocation(
            f"refusing {here}: a parent directory owned by uid {info.st_uid} "
            f"(neither you nor root), who could redirect what is written below it",
            source=source,
        )
    if mode & 0o022 and not mode & stat.S_ISVTX:
        raise UnsafeLocation(
            f"refusing {here}: a parent directory writable by group or others "
            f"(mode {mode:04o}) without the sticky bit",
            source=source,
        )


def private_subdir(dir_fd: int, name: str) -> int:
    """``name`` inside the directory ``dir_fd``, created 0700 if missing, never a symlink.

    Raises ``OSError`` (``ELOOP`` for a symlink, ``ENOTDIR``...) or `UnsafeLocation` when the
    directory there belongs to another user.
    """
    _check_name(name)
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o700, dir_fd=dir_fd)
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    info = os.fstat(fd)
    if info.st_uid != os.getuid():
        os.close(fd)
        raise UnsafeLocation(f"{name}: owned by uid {info.st_uid}, not by you")
    return fd


def open_in(dir_fd: int, name: str, *, append: bool = False) -> int:
    """Open ``name`` in ``dir_fd`` for writing as a 0600 file, never through a symlink."""
    _check_name(name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_APPEND if append else os.O_TRUNC
    fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{name} is not a regular file")
        os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


def new_file_in(dir_fd: int, name: str, mode: int = 0o600) -> tuple[int, str]:
    """A new, empty file beside ``name`` in ``dir_fd`` (``O_EXCL``): (descriptor, its name)."""
    _check_name(name)
    temporary = f".{name[:200]}.bastion-{secrets.token_hex(4)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(temporary, flags, mode, dir_fd=dir_fd), temporary


def write_in(dir_fd: int, name: str, data: str | bytes, *, mode: int = 0o600) -> None:
    """Replace ``name`` in ``dir_fd`` with ``data`` atomically (temporary file, then rename).

    The rename replaces whatever ``name`` is, a symlink included, and never writes through it.
    """
    fd, temporary = new_file_in(dir_fd, name, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            os.fchmod(handle.fileno(), mode)
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dir_fd)
        raise


def _check_name(name: str) -> None:
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise OSError(f"not a plain file name: {name!r}")


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by the user only; tighten it if it exists.

    The mode is set through a descriptor opened without following a symlink at ``path``, and
    only on a directory the user owns (`UnsafeLocation` otherwise).
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as exc:
        if not path.is_symlink():
            raise
        fd = os.open(path, _DIR_FLAGS & ~os.O_NOFOLLOW)  # the user's own link, checked below
        if os.lstat(path).st_uid not in (os.getuid(), 0):
            os.close(fd)
            raise UnsafeLocation("a symlink owned by another user", source=path) from exc
    try:
        info = os.fstat(fd)
        if info.st_uid != os.getuid():
            raise UnsafeLocation(
                f"owned by uid {info.st_uid}, not by you (uid {os.getuid()})", source=path
            )
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return path


def open_private(path: Path, mode: str = "w") -> int:
    """Open ``path`` for writing as a 0600 file, whatever the umask, never through a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, as a 0600 file (a symlink there is replaced)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_private(path: Path, line: str) -> None:
    """Append one line to a 0600 file (appends of one write are atomic for readers)."""
    fd = open_private(path, "a")
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def check_output_file(path: Path, *, option: str = "-O") -> None:
    """Refuse (exit 2), before any host is contacted, a report path that cannot be written.

    ``path`` must not be a directory and its parent must be an existing directory. The report
    is then written with `write_private` (a new file renamed into place: a symlink at ``path``
    is replaced, never written through).
    """
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UnsafeLocation("is a directory; give a file name", source=f"{option} {path}")
    if not parent.is_dir():
        what = "does not exist" if not os.path.lexists(parent) else "is not a directory"
        raise UnsafeLocation(f"{parent} {what}", source=f"{option} {path}")
