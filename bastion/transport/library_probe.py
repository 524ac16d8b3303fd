"""Importing asyncssh without the compiler runs its optional-library probe costs.

At import, asyncssh looks for liboqs (post-quantum key exchange) with
``ctypes.util.find_library``, which on Linux runs ``ldconfig -p`` and then ``gcc`` and ``ld``
for each of two names when the library is absent: about 60 ms of CPU and seven processes on
every ``bastion run``, more than bastion spends on 5 hosts. `quick_find_library` answers the
same question from the linker's usual directories without starting any process.

`lean_asyncssh_import` also leaves out asyncssh's X.509 support, which imports
``cryptography.x509`` (it compiles dozens of regular expressions at import) and pyOpenSSL:
about 30 ms of CPU per run, for ``x509v3-*`` host keys that OpenSSH servers never offer.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LIBRARY_DIRS = (
    "/usr/local/lib",
    "/usr/local/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/lib",
    "/lib64",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
)
"""Where distributions install shared libraries (``/etc/ld.so.conf`` on Debian and Fedora)."""


def find_library_in_dirs(name: str, dirs: tuple[str, ...] | None = None) -> str | None:
    """The path of ``lib<name>.so[.N]`` in ``$LD_LIBRARY_PATH`` or the usual dirs, else None."""
    if dirs is None:
        extra = tuple(d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d)
        dirs = extra + LIBRARY_DIRS
    for directory in dirs:
        try:
            candidates = sorted(Path(directory).glob(f"lib{name}.so*"))
        except OSError:
            continue
        for candidate in candidates:
            if candidate.is_file():
                return str(candidate)
    return None


@contextmanager
def quick_find_library() -> Iterator[None]:
    """While the block runs, ``ctypes.util.find_library`` looks in directories, spawning nothing."""
    original = ctypes.util.find_library
    ctypes.util.find_library = find_library_in_dirs
    try:
        yield
    finally:
        ctypes.util.find_library = original


X509_MODULE = "asyncssh.crypto.x509"
"""asyncssh imports this inside ``try: ... except ImportError``; without it, X.509 is off."""


@contextmanager
def lean_asyncssh_import() -> Iterator[None]:
    """Import asyncssh in the block without the compiler probe and without X.509 support.

    asyncssh guards its X.509 import (``asyncssh.crypto.x509``: cryptography.x509 and
    pyOpenSSL) and runs without ``x509v3-*`` algorithms when it fails; a ``None`` entry in
    ``sys.modules`` makes that import fail. Only the first import of asyncssh is affected;
    once imported, the entry is taken out again.
    """
    hide = X509_MODULE not in sys.modules and "asyncssh" not in sys.modules
    if hide:
        sys.modules[X509_MODULE] = None  # type: ignore[assignment]
    try:
        with quick_find_library():
            yield
    finally:
        if hide and sys.modules.get(X509_MODULE, 0) is None:
            del sys.modules[X509_MODULE]
