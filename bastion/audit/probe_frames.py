"""The probe's framing: marker lines with the run's nonce, encoded fields, a counted end (pure).

probe.sh prints (see its header and docs/audit.md "The probe's output")::

    @@NONCE probe 2 base64|hex
    @@NONCE section NAME
    @@NONCE field NAME
    <base64 or od hex lines: the field's bytes>
    @@NONCE end COUNT

No host string is ever printed raw, so no file name, link target or file content can look
like a marker; the nonce is drawn by bastion for the run, so a node cannot print one it did
not receive; the end marker counts the sections, so none can be dropped or added unnoticed.
Lines before the header are not the probe's (a login shell's startup file printing
something) and are skipped. Anything else after it (a line that is neither, a marker without
the nonce, an unknown section or field, a bad encoding, a wrong count) makes the output
unreadable: `Frames.error` says where, and the host is not fully audited. Reading never
raises, splits on ``\\n`` only, and takes time and memory linear in the output.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field

FORMAT_VERSION = "2"
NONCE_BYTES = 16

# Each section's fields (``warn`` is allowed in every section).
SECTION_FIELDS: dict[str, frozenset[str]] = {
    "facts": frozenset({"facts"}),
    "sshd_t": frozenset({"account", "output"}),
    "passwd": frozenset({"output"}),
    "group": frozenset({"output"}),
    "shadow": frozenset({"output"}),
    "keys": frozenset({"meta", "link", "dirs", "content", "readerror"}),
    "hostkeys": frozenset({"hostkey"}),
    "privatekeys": frozenset({"keys"}),
    "sudo": frozenset({"absent"}),
    "sudouser": frozenset({"account", "output"}),
    "sudoers": frozenset({"file", "output"}),
    "kube": frozenset({"kubeconfig"}),
    "logins": frozenset({"source", "output"}),
}
_LINE_CHARS = {
    "base64": re.compile(r"[A-Za-z0-9+/=]*"),
    "hex": re.compile(r"[0-9a-f ]*"),
}
_SHOWN = 60  # characters of a bad line quoted in the error


def new_nonce() -> str:
    """A fresh random nonce for one run (hex: safe in a shell assignment and a marker)."""
    return secrets.token_hex(NONCE_BYTES)


@dataclass(slots=True)
class Section:
    """One section: its name and its fields in order (bytes as the host sent them)."""

    name: str
    fields: list[tuple[str, bytes]] = field(default_factory=list)

    def data(self, name: str) -> bytes | None:
        """The first field ``name``, or None."""
        return next((value for key, value in self.fields if key == name), None)

    def text(self, name: str, default: str = "") -> str:
        """The first field ``name`` as text (UTF-8, bad bytes replaced)."""
        value = self.data(name)
        return default if value is None else value.decode("utf-8", "replace")

    def texts(self, name: str) -> list[str]:
        """Every field ``name``, as text."""
        return [v.decode("utf-8", "replace") for k, v in self.fields if k == name]


@dataclass(slots=True)
class Frames:
    """What could be read: the sections up to the end, or up to the first unreadable line."""

    sections: list[Section] = field(default_factory=list)
    ended: bool = False
    """The end marker was read and its count matched."""
    error: str | None = None
    """Why the output is unreadable (``line N: ...``); None when it is well formed."""
    ignored: int = 0
    """Lines before the probe's header (a noisy shell startup file): not the probe's, skipped."""


class _Unreadable(ValueError):
    pass


class _Reader:
    def __init__(self, nonce: str) -> None:
        self.prefix = f"@@{nonce} "
        self.frames = Frames()
        self.encoding: str | None = None
        self.field_name: str | None = None
        self.chunks: list[str] = []

    def line(self, text: str) -> None:
        if self.frames.ended:
            raise _Unreadable("output after the end marker")
        if text.startswith(self.prefix):
            self.close_field()
            self._marker(text[len(self.prefix) :])
        elif text.startswith("@@"):
            raise _Unreadable("a marker without this run's nonce")
        elif self.encoding is None:
            self.frames.ignored += 1  # a login shell's noise before the probe started
        elif self.field_name is None:
            raise _Unreadable("data outside a field")
        elif _LINE_CHARS[self.encoding].fullmatch(text) is None:
            raise _Unreadable(f"not {self.encoding} data")
        else:
            self.chunks.append(text)

    def _marker(self, text: str) -> None:
        word, _, rest = text.partition(" ")
        if self.encoding is None:
            version, _, encoding = rest.partition(" ")
            if word != "probe" or version != FORMAT_VERSION or encoding not in _LINE_CHARS:
                raise _Unreadable("not a version 2 probe header")
            self.encoding = encoding
        elif word == "section":
            if rest not in SECTION_FIELDS:
                raise _Unreadable("unknown section")
            self.frames.sections.append(Section(rest))
        elif word == "field":
            if not self.frames.sections:
                raise _Unreadable("a field before any section")
            if rest != "warn" and rest not in SECTION_FIELDS[self.frames.sections[-1].name]:
                raise _Unreadable("unknown field")
            self.field_name = rest
        elif word == "end":
            count = len(self.frames.sections)
            if rest != str(count):
                raise _Unreadable(f"the end marker counts {rest[:20]!r} sections, {count} came")
            self.frames.ended = True
        else:
            raise _Unreadable("unknown marker")

    def close_field(self) -> None:
        """Decode the field being read, if any, into its section."""
        if self.field_name is None:
            return
        name, self.field_name = self.field_name, None
        joined = "".join(self.chunks)
        self.chunks = []
        try:
            if self.encoding == "hex":
                value = bytes.fromhex(joined)
            else:
                value = base64.b64decode(joined, validate=True)
        except (binascii.Error, ValueError):
            raise _Unreadable(f"field {name} is not valid {self.encoding}") from None
        self.frames.sections[-1].fields.append((name, value))


def read_frames(text: str, nonce: str) -> Frames:
    """Read the probe's output; never raises (see the module docstring)."""
    reader = _Reader(nonce)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    number = 0
    try:
        for number, line in enumerate(lines, start=1):  # noqa: B007 (used in the error)
            reader.line(line)
        if not reader.frames.ended:
            reader.close_field()  # a probe cut short keeps its last field
        if reader.encoding is None and reader.frames.ignored:
            number = 0
            raise _Unreadable(f"no probe header in {reader.frames.ignored} lines of output")
    except _Unreadable as exc:
        shown = lines[number - 1][:_SHOWN] if number else ""
        reader.frames.error = f"line {number}: {exc} ({shown!r})" if number else str(exc)
        reader.frames.ended = False
    return reader.frames
