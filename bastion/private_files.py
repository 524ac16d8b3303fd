"""Files bastion writes for the user alone: 0600 files in 0700 directories, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by the user only; tighten it if it exists."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def open_private(path: Path, mode: str = "w") -> int:
    """Open ``path`` for writing as a 0600 file, whatever the umask; returns the descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, as a 0600 file."""
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
