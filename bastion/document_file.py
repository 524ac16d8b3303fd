"""Reading a document the user names (inventory, playbook, ``-e @file``, access list): bounded.

Only a regular file is read, and at most `MAX_DOCUMENT_BYTES` of it: ``-i /dev/zero`` or a
FIFO would otherwise make ``read_bytes()`` allocate until the process dies, or block forever.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bastion.errors import InputError

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""The largest inventory, playbook, vars file or access list bastion reads (16 MiB)."""

_CHUNK = 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_document(
    path: Path, error: type[InputError], *, what: str, missing: str | None = None
) -> bytes:
    """The bytes of the regular file ``path``; ``error`` (one line, naming it) otherwise.

    ``what`` names the document in messages ("inventory", "playbook file"); ``missing`` is the
    message for a file that does not exist (default: "WHAT not found").
    """
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before it can be refused.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(missing or f"{what} not found", source=path) from None
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror or exc}", source=path) from None
    try:
        return _read_regular(fd, path, error, what)
    finally:
        os.close(fd)


def _read_regular(fd: int, path: Path, error: type[InputError], what: str) -> bytes:
    mode = os.fstat(fd).st_mode
    for test, kind in _KINDS:
        if test(mode):
            raise error(f"cannot read {what}: {kind}, not a regular file", source=path)
    chunks: list[bytes] = []
    size = 0
    # Read to one byte past the cap rather than trusting st_size (/proc files say 0).
    while size <= MAX_DOCUMENT_BYTES:
        try:
            chunk = os.read(fd, min(_CHUNK, MAX_DOCUMENT_BYTES + 1 - size))
        except OSError as exc:
            raise error(f"cannot read {what}: {exc.strerror or exc}", source=path) from None
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_DOCUMENT_BYTES:
        raise error(
            f"{what} is larger than the {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB limit",
            source=path,
        )
    return b"".join(chunks)
