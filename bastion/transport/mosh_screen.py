"""Read a durable job's output off a mosh screen: verified pages, acknowledged one key each.

mosh synchronises a screen, not a byte stream: the client may show any intermediate state of
the node's terminal, skip states, and show the same one again. So nothing is scraped as a
stream. The node's pager (``serve`` in `bastion/durable/wrapper.sh`) repaints the whole
screen for each page: a header with the page's stream, byte offset, length and a `cksum`
CRC, the bytes in base64 (or hex), and a trailer with the page's number. A page counts only
once header, trailer and checksum agree; its bytes are placed by their offset, so a page seen
twice adds nothing. Each counted page is answered with one key (``n``: the next page); mosh
delivers keystrokes reliably and in order, and the final screen state eventually.

`PageReader` is sans-IO: feed it what mosh-client writes to its terminal, send what it
returns; `tick` asks for a redraw when no new screen has come for a while.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pyte

from bastion.models import Stream

NEXT = b"n"
"""The page is read: show the next one."""
REDRAW = b"r"
"""Draw the current screen again."""
QUIT = b"q"
"""The end is read: remove the job directory and leave."""
REDRAW_AFTER_S = 5.0
"""Ask for a redraw when no new verified screen has come for this long after a key."""
FIRST_ROW_FREE = 1
"""Rows the pager leaves blank at the top: mosh draws its notification bar there."""
FRAME_ROWS = 4
"""Rows a page needs besides its data: the free one, header, trailer, and the cursor's."""


def posix_cksum(data: bytes) -> int:
    """The CRC that POSIX `cksum` prints: CRC-32/CKSUM over the data, then its length."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _TABLE[(crc >> 24) ^ byte]
    length = len(data)
    while length:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _TABLE[(crc >> 24) ^ (length & 0xFF)]
        length >>= 8
    return ~crc & 0xFFFFFFFF


def _cksum_table() -> tuple[int, ...]:
    table = []
    for index in range(256):
        crc = index << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_TABLE = _cksum_table()


def page_geometry(window: tuple[int, int]) -> tuple[int, int]:
    """Data lines and characters a line of a page in a ``(rows, columns)`` window."""
    rows, cols = window
    # One column spare: a line that fills the last column leaves the cursor in limbo.
    return rows - FRAME_ROWS, cols - 1


@dataclass(frozen=True, slots=True)
class Page:
    """A verified page: ``data`` is ``stream`` from byte ``offset``."""

    screen: int
    stream: Stream
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Waiting:
    """The node has shown everything so far; the job still runs."""

    screen: int


@dataclass(frozen=True, slots=True)
class End:
    """The job has ended and all its output has been shown."""

    screen: int
    rc: int
    timed_out: bool
    stdout_total: int
    stderr_total: int


Shown = Page | Waiting | End


def read_screen(rows: list[str]) -> Shown | None:
    """The complete, verified screen among ``rows``, or None (half drawn, stale, garbled)."""
    lines = [row.rstrip() for row in rows]
    for index, line in enumerate(lines):
        if line.startswith(("BASTION-PAGE ", "BASTION-WAIT ", "BASTION-END ")):
            return _verified(lines, index)
    return None


def _number(word: str) -> bool:
    """Whether ``word`` is a number the pager writes: ASCII digits, not absurdly long (a
    screen is the node's to draw; ``str.isdigit`` would also pass ``²``, which ``int`` refuses)."""
    return 0 < len(word) <= 18 and word.isascii() and word.isdigit()


def _verified(lines: list[str], header_at: int) -> Shown | None:
    words = lines[header_at].split()
    if len(words) < 2 or not _number(words[1]):
        return None
    screen = int(words[1])
    trailer = f"BASTION-FIN {screen}"
    try:
        trailer_at = lines.index(trailer, header_at + 1)
    except ValueError:
        return None  # not drawn to the end yet (or a trailer of another screen)
    body = lines[header_at + 1 : trailer_at]
    kind = words[0]
    if kind == "BASTION-WAIT":
        return Waiting(screen) if not body and len(words) == 4 else None
    if kind == "BASTION-END":
        return _end(words, body)
    return _page(words, body)


def _end(words: list[str], body: list[str]) -> End | None:
    if body or len(words) != 7 or not all(_number(word) for word in words[1:]):
        return None
    screen, rc, timed_out, out_total, err_total, crc = (int(word) for word in words[1:])
    if posix_cksum((" ".join(words[1:6]) + "\n").encode()) != crc:
        return None
    return End(screen, rc, timed_out == 1, out_total, err_total)


def _page(words: list[str], body: list[str]) -> Page | None:
    if len(words) != 8:
        return None
    _, screen, stream, offset, length, total, encoding, crc = words
    well_formed = all(_number(word) for word in (offset, length, total, crc))
    if not well_formed or stream not in ("stdout", "stderr") or encoding not in ("b64", "hex"):
        return None
    text = "".join(body)
    try:
        data = base64.b64decode(text, validate=True) if encoding == "b64" else bytes.fromhex(text)
    except (binascii.Error, ValueError):
        return None
    if len(data) != int(length):
        return None
    fields = " ".join(words[1:7]) + "\n"
    if posix_cksum(fields.encode() + data) != int(crc):
        return None
    return Page(int(screen), "stdout" if stream == "stdout" else "stderr", int(offset), data)


class PageReader:
    """Follows the pager on a mosh-client's screen: verified pages in, keys out.

    ``offsets`` is what has arrived of each stream so far (read live: ``deliver`` advances
    it), ``deliver`` takes the new bytes of a stream, each exactly once and in order.
    """

    def __init__(
        self,
        window: tuple[int, int],
        offsets: Mapping[Stream, int],
        deliver: Callable[[Stream, bytes], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        rows, cols = window
        self._screen = pyte.Screen(cols, rows)
        self._stream = pyte.ByteStream(self._screen)
        self._offsets = offsets
        self._deliver = deliver
        self._clock = clock
        self._handled = -1
        """The number of the last screen acted on; screens are numbered in order."""
        self._asked_at = clock()
        self._waiting = False
        self.end: End | None = None
        self.error: str | None = None
        self.pages = 0
        """Pages counted (each acknowledged with one key)."""
        self.redraws = 0

    @property
    def finished(self) -> bool:
        """The end was read, or the pager broke the protocol: the session has no more use."""
        return self.end is not None or self.error is not None

    def feed(self, data: bytes) -> bytes:
        """Take what mosh-client wrote to its terminal; the keys to type in answer."""
        self._stream.feed(data)
        if self.finished or not self._screen.dirty:
            return b""
        self._screen.dirty.clear()
        shown = read_screen(self._screen.display)
        if shown is None or shown.screen <= self._handled:
            return b""
        self._handled = shown.screen
        self._asked_at = self._clock()
        self._waiting = isinstance(shown, Waiting)
        if isinstance(shown, Page):
            return self._take(shown)
        if isinstance(shown, End):
            return self._finish(shown)
        return b""

    def tick(self) -> bytes:
        """Call now and then: a redraw key when no new screen has come for a while."""
        if self.finished or self._waiting:
            return b""
        now = self._clock()
        if now - self._asked_at < REDRAW_AFTER_S:
            return b""
        self._asked_at = now
        self.redraws += 1
        return REDRAW

    def _take(self, page: Page) -> bytes:
        have = self._offsets[page.stream]
        if page.offset > have:
            # Bytes between would be missing: the pager and this reader disagree.
            self.error = (
                f"page {page.screen} of {page.stream} starts at byte {page.offset}, "
                f"but only {have} have arrived"
            )
            return b""
        new = page.data[have - page.offset :]
        if new:
            self._deliver(page.stream, new)
        self.pages += 1
        return NEXT

    def _finish(self, end: End) -> bytes:
        got = (self._offsets["stdout"], self._offsets["stderr"])
        if got != (end.stdout_total, end.stderr_total):
            self.error = (
                f"the node ended at {end.stdout_total} and {end.stderr_total} bytes, "
                f"but {got[0]} and {got[1]} have arrived"
            )
            return b""
        self.end = end
        return QUIT
