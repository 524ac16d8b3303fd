"""Text from a host made safe for a terminal: control characters shown, never interpreted.

A compromised node chooses its output bytes. Written raw, ``ESC ] 52`` sets the operator's
clipboard, ``ESC ] 0`` the window title, ``ESC [ 2J`` clears the screen, and a bare ``\\r``
or a backspace paints over what was written before (``node2: disk FULL`` disappears under
``node2: all good``). Every human renderer passes a host's text through `visible` first, so
each such character is shown the way ``cat -v`` shows it: ``^[`` for ESC, ``^M`` for a
carriage return not followed by a line feed, ``^H``, ``^G``, ``^?`` for DEL, ``M-^[`` for the
C1 control U+009B (a one-character CSI to some terminals). Unicode bidirectional controls
(which reorder what follows them on screen, "Trojan Source") are shown as ``<U+202E>``.

Kept as they are: line feeds (lines are the renderers' business), tabs (they only move
forward), and ``\\r\\n`` line ends (the ``\\r`` has nothing left to paint over). JSON Lines and
``--out-dir`` files never pass through here: they keep exactly what the host sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_LINE_SEPARATORS = "\u2028\u2029"


def _shown(code: int) -> str:
    """``cat -v`` notation of one control character (``<U+XXXX>`` beyond Latin-1)."""
    if code < 0x20:
        return "^" + chr(code + 0x40)
    if code == 0x7F:
        return "^?"
    if 0x80 <= code < 0xA0:
        return "M-" + _shown(code - 0x80)
    return f"<U+{code:04X}>"


_CONTROLS = (
    [c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)]
    + list(range(0x7F, 0xA0))
    + [ord(c) for c in _BIDI + _LINE_SEPARATORS]
)
_TABLE = {chr(code): _shown(code) for code in [*_CONTROLS, 0x0D]}
_CLASS = "".join(f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _CONTROLS)
# One regular expression scans the text in C; the callback runs only where something is
# found, so ordinary output costs one pass and no copy.
_UNSAFE = re.compile(f"[{_CLASS}]|\r(?!\n)")


def _replace(match: re.Match[str]) -> str:
    return _TABLE[match.group()]


def visible(text: str) -> str:
    """``text`` with every control character a terminal would act on shown as ``cat -v`` does."""
    return _UNSAFE.sub(_replace, text)


def has_controls(text: str) -> bool:
    """True when `visible` would change ``text``."""
    return _UNSAFE.search(text) is not None


def visible_pieces(pieces: Iterable[str]) -> Iterator[str]:
    """`visible` over a text that comes in pieces (a spool's chunks) split anywhere.

    A ``\\r`` ending a piece waits for the next one: followed by ``\\n`` it is a line end.
    """
    held = ""
    for piece in pieces:
        text = held + piece
        held = ""
        if text.endswith("\r"):
            text, held = text[:-1], "\r"
        if text:
            yield visible(text)
    if held:
        yield visible(held)


def split_lines(pieces: Iterable[str]) -> Iterator[str]:
    """The lines (without their ``\\n``) of a text that comes in pieces split anywhere."""
    partial = ""
    for piece in pieces:
        lines = (partial + piece).split("\n")
        partial = lines.pop()
        yield from lines
    if partial:
        yield partial
