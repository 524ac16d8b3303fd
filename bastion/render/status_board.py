"""A few status lines kept at the bottom of the terminal while output scrolls above them.

rich's ``Live`` did this before, but its stdout proxy re-printed every line through a rich
console: long lines got real newlines at the window width (a ``kubeadm join`` line could no
longer be pasted) and escape sequences were decoded into styles. Here what is written to
stdout and stderr goes to the terminal unchanged: the board is erased, the text written, the
board drawn again below it. Board lines are cut to the window width, so none of them wraps
and erasing them is exact. A ticker thread redraws twice a second for the elapsed times.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from collections.abc import Callable
from typing import TextIO, cast

ERASE_LINE = "\r\x1b[2K"
UP = "\x1b[1A"
TICK_S = 0.5


def cut_to_width(line: str, columns: int) -> str:
    """``line`` cut to at most ``columns`` terminal cells (wide characters count two)."""
    from rich.cells import cell_len

    if cell_len(line) <= columns:
        return line
    used = 0
    for index, char in enumerate(line):
        used += cell_len(char)
        if used > columns:
            return line[:index]
    return line


class StatusBoard:
    """Draws ``lines_of()`` on the terminal ``terminal`` and keeps it below other output."""

    def __init__(self, terminal: TextIO, lines_of: Callable[[], list[str]]) -> None:
        self._terminal = terminal
        self._lines_of = lines_of
        self._lock: threading.RLock = threading.RLock()
        self._drawn = 0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._saved: tuple[TextIO, TextIO] | None = None
        self._proxies: list[_Above] = []

    def start(self) -> None:
        """Take over sys.stdout (when it is a terminal) and sys.stderr, and draw."""
        self._saved = (sys.stdout, sys.stderr)
        stderr = _Above(sys.stderr, self)
        self._proxies = [stderr]
        sys.stderr = cast(TextIO, stderr)
        if _isatty(sys.stdout):
            stdout = _Above(sys.stdout, self)
            self._proxies.append(stdout)
            sys.stdout = cast(TextIO, stdout)
        self.refresh()
        self._ticker = threading.Thread(target=self._tick, name="bastion-status", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        """Erase the board, give the streams back (with any unfinished line) and stop ticking."""
        if self._saved is None:
            return
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        with self._lock:
            self._erase()
            for proxy in self._proxies:
                proxy.release()
            sys.stdout, sys.stderr = self._saved
            self._saved = None
            self._terminal.flush()

    @property
    def lock(self) -> threading.RLock:
        """Held while the board is drawn: hold it to change what ``lines_of`` reads."""
        return self._lock

    def refresh(self) -> None:
        """Draw the board again (its lines may have changed)."""
        with self._lock:
            if self._saved is None:
                return
            self._erase()
            self._draw()
            self._terminal.flush()

    def write_above(self, stream: TextIO, text: str) -> None:
        """Write whole lines ``text`` to ``stream`` where the board was, then redraw it."""
        with self._lock:
            self._erase()
            self._terminal.flush()
            stream.write(text)
            stream.flush()
            self._draw()
            self._terminal.flush()

    def _erase(self) -> None:
        if self._drawn:
            self._terminal.write(ERASE_LINE + (UP + ERASE_LINE) * (self._drawn - 1))
            self._drawn = 0

    def _draw(self) -> None:
        try:
            columns = os.get_terminal_size(self._terminal.fileno()).columns
        except (OSError, ValueError, io.UnsupportedOperation):
            columns = 0
        columns = columns or 80  # a pty nobody gave a size reports 0 columns
        # One cell short of the width: a line filling the last column would wrap on some
        # terminals, and then erasing it would leave a row behind.
        lines = [cut_to_width(line, max(columns - 1, 1)) for line in self._lines_of()]
        if lines:
            self._terminal.write("\n".join(lines))
        self._drawn = len(lines)

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            self.refresh()


class _Above(io.TextIOBase):
    """A stream whose whole lines are written above the board; a partial line waits."""

    def __init__(self, stream: TextIO, board: StatusBoard) -> None:
        super().__init__()
        self._stream = stream
        self._board = board
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        end = self._pending.rfind("\n")
        if end >= 0:
            ready, self._pending = self._pending[: end + 1], self._pending[end + 1 :]
            self._board.write_above(self._stream, ready)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def release(self) -> None:
        """Write the unfinished line (the board is gone by now)."""
        if self._pending:
            self._stream.write(self._pending)
            self._pending = ""
        self._stream.flush()

    def isatty(self) -> bool:
        return _isatty(self._stream)

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8") or "utf-8"

    def writable(self) -> bool:
        return True


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False
