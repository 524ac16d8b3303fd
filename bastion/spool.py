"""Each host's whole output, for the modes that print it at the host's end, in bounded memory.

``-o json`` and ``-o grouped`` print a host's whole stdout and stderr once the host is done
(grouped: once every host is done). A `Spool` keeps one stream's text in memory up to
`SPILL_CHARS`, then moves it to a 0600 file in a private (0700) temporary directory and appends
there; renderers read it back in chunks. So a host printing 100 MB costs about `SPILL_CHARS`
of memory, not 100 MB. A spool's file is closed when its host finishes (its descriptor is not
held while other hosts run) and the directory is removed by `SpoolSet.close` at the end of the
run.

When the disk cannot take the text (a full or read-only ``$TMPDIR``), memory stays bounded all
the same: each stream keeps what it already holds (at most `SPILL_CHARS` in memory, or what its
file already has) and the rest is cut, never kept in memory. That is one warning when it first
happens and one at the end naming the hosts whose output was cut (docs/output.md); the hosts'
results and the exit code do not change, and ``--out-dir`` still gets every byte it can write.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bastion.hostset import fold
from bastion.models import HostOutput, Stream

SPILL_CHARS = 1024 * 1024
"""A stream's text is kept in memory up to this many characters, then spilled to disk."""
READ_CHARS = 256 * 1024
"""How much of a spilled stream is read back at a time."""
_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC


class Spool:
    """One host's one stream: in memory while small, in a private file once large."""

    def __init__(
        self,
        directory: SpoolDirectory,
        name: str,
        limit: int = SPILL_CHARS,
        *,
        hashed: bool = False,
    ) -> None:
        self._directory = directory
        self._name = name
        self._limit = limit
        self._parts: list[str] = []
        self._held = 0
        self._path: Path | None = None
        self._file: int | None = None
        self._on_disk = 0
        """Bytes of whole texts in the file (a failed write may have left part of one more)."""
        self._digest = hashlib.sha256() if hashed else None
        self.chars = 0
        """Characters written so far."""
        self.dropped = 0
        """Characters cut because the disk could not take them (memory stays bounded)."""

    @property
    def spilled(self) -> bool:
        """True once the text has moved to disk."""
        return self._path is not None

    @property
    def digest(self) -> str:
        """SHA-256 of the text (UTF-8) so far, for a spool made with ``hashed=True``."""
        if self._digest is None:
            raise ValueError("this spool keeps no digest")
        return self._digest.hexdigest()

    def write(self, text: str) -> None:
        """Append ``text``."""
        if not text:
            return
        self.chars += len(text)
        if self._digest is not None:
            self._digest.update(text.encode("utf-8", "surrogatepass"))
        if self.dropped:
            self.dropped += len(text)
            return
        if self._path is None and self._held + len(text) <= self._limit:
            self._parts.append(text)
            self._held += len(text)
            return
        if self._directory.broken is not None:
            self._cut(text)
            return
        try:
            self._spill(text)
        except OSError as exc:  # a full or unwritable $TMPDIR: keep what is whole, cut the rest
            self._directory.give_up(exc)
            self._cut(text)

    def _spill(self, text: str) -> None:
        if self._path is None:
            self._path = self._directory.new_file(self._name)
            self._file = os.open(self._path, _APPEND_FLAGS)
            self._append("".join(self._parts))
            self._parts, self._held = [], 0
        if self._file is None:
            self._file = os.open(self._path, _APPEND_FLAGS)
        self._append(text)

    def _cut(self, text: str) -> None:
        """The disk cannot take more: keep the text held so far, whole, and drop the rest.

        While ``_parts`` is not empty the first spill failed and the memory copy is whole (the
        file, if made, is dropped); otherwise the file's first `_on_disk` bytes are every
        earlier text, whole, and a partly written one is trimmed off.
        """
        self.seal()
        if self._path is not None:
            if self._parts:
                with contextlib.suppress(OSError):
                    self._path.unlink()
                self._path = None
            else:
                with contextlib.suppress(OSError):
                    os.truncate(self._path, self._on_disk)
        room = max(0, self._limit - self._held) if self._path is None else 0
        if room:
            self._parts.append(text[:room])
            self._held += len(text[:room])
        self.dropped += len(text) - room

    def _append(self, text: str) -> None:
        assert self._file is not None
        data = text.encode("utf-8", "surrogatepass")
        size = len(data)
        while data:
            written = os.write(self._file, data)
            data = data[written:]
        self._on_disk += size  # only once the whole text is in the file

    def seal(self) -> None:
        """The host is done: release the file's descriptor (the text stays readable)."""
        if self._file is not None:
            os.close(self._file)
            self._file = None

    def chunks(self, size: int = READ_CHARS) -> Iterator[str]:
        """The text, in pieces of at most ``size`` characters."""
        if self._path is None:
            yield from self._parts
            return
        self.seal()
        with self._path.open(encoding="utf-8", errors="surrogatepass", newline="") as handle:
            while piece := handle.read(size):
                yield piece

    def text(self) -> str:
        """The whole text at once (for small spools, or a caller that needs it whole)."""
        return "".join(self.chunks())

    def discard(self) -> None:
        """Forget the text and delete its file."""
        self.seal()
        if self._path is not None:
            self._path.unlink(missing_ok=True)
            self._path = None
        self._parts, self._held = [], 0


class SpoolDirectory:
    """A private temporary directory, made only when a first spool spills, removed on close."""

    def __init__(self, parent: str | None = None) -> None:
        self._parent = parent
        self._path: Path | None = None
        self._count = 0
        self.broken: str | None = None
        """Why spilling failed (a full disk...); from then on every spool stays in memory."""

    def give_up(self, error: OSError) -> None:
        """Spilling failed: say so once on stderr; from now on large outputs are cut."""
        if self.broken is None:
            where = self._parent or tempfile.gettempdir()
            self.broken = f"{where}: {error.strerror or error}"
            sys.stderr.write(
                f"bastion: warning: cannot spill large output to disk ({self.broken}); "
                f"each stream keeps at most its first {SPILL_CHARS // 1024} KiB in memory and "
                "the rest is cut\n"
            )
            sys.stderr.flush()

    @property
    def path(self) -> Path | None:
        return self._path

    def new_file(self, name: str) -> Path:
        """A new empty 0600 file in the directory."""
        if self._path is None:
            self._path = Path(tempfile.mkdtemp(prefix="bastion-spool-", dir=self._parent))
            atexit.register(self.remove)  # when the run ends in an exception
        self._count += 1
        path = self._path / f"{self._count}-{name}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        os.close(os.open(path, flags, 0o600))
        return path

    def remove(self) -> None:
        """Delete the directory and everything in it (once; later calls do nothing)."""
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            self._path = None
            atexit.unregister(self.remove)  # a long-lived process must not gather them


class SpoolSet:
    """Every host's stdout and stderr spools, fed from the run's output events."""

    def __init__(
        self, limit: int = SPILL_CHARS, parent: str | None = None, *, hashed: bool = False
    ) -> None:
        self._limit = limit
        self._hashed = hashed
        self.directory = SpoolDirectory(parent)
        self._spools: dict[tuple[str, Stream], Spool] = {}
        self.cut: set[str] = set()
        """Hosts whose output was cut because the disk could not take it."""

    def add(self, event: HostOutput) -> None:
        """Append an output event's text to its host's stream."""
        key = (event.host, event.stream)
        spool = self._spools.get(key)
        if spool is None:
            spool = self._spools[key] = Spool(
                self.directory, event.stream, self._limit, hashed=self._hashed
            )
        spool.write(event.data)

    def get(self, host: str, stream: Stream) -> Spool | None:
        """The host's spool for ``stream``, None when it printed nothing there."""
        return self._spools.get((host, stream))

    def seal(self, host: str) -> None:
        """The host is done: its spools hold no descriptor any more."""
        for stream in ("stdout", "stderr"):
            spool = self._spools.get((host, stream))
            if spool is not None:
                spool.seal()

    def discard(self, host: str) -> None:
        """Forget a host's output (once it has been printed)."""
        for stream in ("stdout", "stderr"):
            spool = self._spools.pop((host, stream), None)
            if spool is not None:
                if spool.dropped:
                    self.cut.add(host)
                spool.discard()

    def close(self) -> None:
        """Forget everything and remove the directory; name the hosts whose output was cut."""
        for (host, _), spool in self._spools.items():
            spool.seal()
            if spool.dropped:
                self.cut.add(host)
        self._spools.clear()
        self.directory.remove()
        if self.cut:
            sys.stderr.write(
                f"bastion: warning: output cut for {fold(sorted(self.cut))}: the spool's disk "
                f"was full ({self.directory.broken}); the results and exit code are the hosts'\n"
            )
            self.cut = set()
