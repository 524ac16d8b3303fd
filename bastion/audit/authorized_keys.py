"""A line-by-line authorized_keys parser following sshd(8) "AUTHORIZED_KEYS FILE FORMAT".

Pure: text in, records out. Unlike ``ssh-keygen -lf`` and asyncssh's loader, a line that sshd
would reject is reported with its line number and the reason, never skipped silently. The key
blob is decoded here (SSH wire format) for the type, the size and the SHA256 fingerprint, so
no crypto library is needed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

# Options that take no value (sshd auth-options.c), lower case: sshd matches them that way.
FLAG_OPTIONS = frozenset(
    {
        "agent-forwarding",
        "cert-authority",
        "no-agent-forwarding",
        "no-port-forwarding",
        "no-pty",
        "no-user-rc",
        "no-x11-forwarding",
        "port-forwarding",
        "pty",
        "restrict",
        "user-rc",
        "x11-forwarding",
        "no-touch-required",
        "touch-required",
        "verify-required",
    }
)
VALUE_OPTIONS = frozenset(
    {
        "command",
        "environment",
        "expiry-time",
        "from",
        "permitopen",
        "permitlisten",
        "principals",
        "tunnel",
    }
)

_BLANKS = " \t\r"
_WORD_BREAK = re.compile(r"[ \t]+")
_ECDSA_BITS = {"nistp256": 256, "nistp384": 384, "nistp521": 521}
CERT_SUFFIX = "-cert-v01@openssh.com"
KEY_TYPES = frozenset(
    {
        "ssh-rsa",
        "ssh-dss",
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "sk-ssh-ed25519@openssh.com",
    }
)
ALL_KEY_TYPES = KEY_TYPES | {t + CERT_SUFFIX for t in KEY_TYPES}


@dataclass(frozen=True, slots=True)
class KeyOptions:
    """The options in front of a key, in file order; names are lower case."""

    flags: frozenset[str] = frozenset()
    values: tuple[tuple[str, str], ...] = ()

    def value(self, name: str) -> str | None:
        """The first value of option ``name`` (sshd uses the first), or None."""
        return next((v for n, v in self.values if n == name), None)

    def all_values(self, name: str) -> list[str]:
        """Every value of a repeatable option (``permitopen``, ``environment``)."""
        return [v for n, v in self.values if n == name]

    @property
    def restrict(self) -> bool:
        return "restrict" in self.flags

    @property
    def command(self) -> str | None:
        return self.value("command")

    @property
    def source(self) -> list[str]:
        """The ``from=`` patterns, split on commas."""
        text = self.value("from")
        return [p for p in text.split(",") if p] if text is not None else []

    @property
    def cert_authority(self) -> bool:
        return "cert-authority" in self.flags

    @property
    def port_forwarding(self) -> bool:
        """Whether TCP forwarding stays possible with these options (sshd's rules)."""
        if "port-forwarding" in self.flags:
            return True
        return not (self.restrict or "no-port-forwarding" in self.flags)

    def is_empty(self) -> bool:
        return not self.flags and not self.values

    def render(self) -> str:
        """The options as sshd would read them back, flags first then values, sorted."""
        parts = sorted(self.flags)
        for name, value in self.values:
            escaped = value.replace('"', '\\"')
            parts.append(f'{name}="{escaped}"')
        return ",".join(parts)


@dataclass(frozen=True, slots=True)
class AuthorizedKey:
    """One usable line: the key, its options and where it is."""

    line: int
    key_type: str
    """The type token, e.g. ``ssh-ed25519`` or ``ssh-rsa-cert-v01@openssh.com``."""
    algorithm: str
    """Short family: rsa, dsa, ed25519, ecdsa, sk-ecdsa, sk-ed25519."""
    bits: int
    fingerprint: str
    """``SHA256:`` and the unpadded base64 digest of the blob, as ssh-keygen prints it."""
    blob: str
    """The public key's base64 blob (public data: needed to write the key back)."""
    comment: str = ""
    options: KeyOptions = field(default_factory=KeyOptions)

    @property
    def public_key(self) -> str:
        """``TYPE BLOB`` without options or comment."""
        return f"{self.key_type} {self.blob}"

    def render(self) -> str:
        """The line as it would be written to an authorized_keys file."""
        opts = self.options.render()
        text = f"{opts} {self.public_key}" if opts else self.public_key
        return f"{text} {self.comment}" if self.comment else text


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line sshd would ignore, and why."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """Every key and every rejected line of one file, in order."""

    keys: tuple[AuthorizedKey, ...]
    bad: tuple[BadLine, ...]


class KeyLineError(ValueError):
    """One line's reason for rejection (internal; becomes a `BadLine`)."""


def parse_authorized_keys(text: str) -> ParsedFile:
    """Parse a whole authorized_keys file; blank and comment lines are neither key nor error."""
    keys: list[AuthorizedKey] = []
    bad: list[BadLine] = []
    # sshd reads lines ending in \n and skips spaces and tabs; str.splitlines() and str.strip()
    # would also cut at \f, \v, \x1c-\x1e, \x85, U+2028, U+2029 (a line sshd sees whole).
    for number, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.strip(_BLANKS)
        if not stripped or stripped.startswith("#"):
            continue
        try:
            keys.append(parse_key_line(stripped, number))
        except KeyLineError as exc:
            bad.append(BadLine(number, str(exc)))
    return ParsedFile(tuple(keys), tuple(bad))


def parse_key_line(text: str, number: int = 1) -> AuthorizedKey:
    """Parse one non-blank line; `KeyLineError` says why sshd would not use it."""
    first = (_words(text, 1) or [""])[0]
    options = KeyOptions()
    rest = text
    if first not in ALL_KEY_TYPES:
        # sshd: a line not starting with a key type starts with options.
        options, rest = _split_options(text)
    fields = _words(rest, 2)
    if not fields:
        raise KeyLineError("options but no key")
    key_type = fields[0]
    if key_type not in ALL_KEY_TYPES:
        raise KeyLineError(f"unknown key type {_shorten(key_type)!r}")
    if len(fields) < 2:
        raise KeyLineError(f"{key_type} without key data")
    blob_text = fields[1]
    comment = fields[2].strip(_BLANKS) if len(fields) > 2 else ""
    try:
        blob = base64.b64decode(blob_text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyLineError("key data is not valid base64") from None
    algorithm, bits = _describe_blob(key_type, blob)
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return AuthorizedKey(
        line=number,
        key_type=key_type,
        algorithm=algorithm,
        bits=bits,
        fingerprint=f"SHA256:{digest}",
        blob=blob_text,
        comment=comment,
        options=options,
    )


def fingerprint_of(public_key: str) -> str:
    """The SHA256 fingerprint of ``TYPE BLOB [comment]``; `KeyLineError` if it is not a key."""
    return parse_key_line(public_key.strip(_BLANKS)).fingerprint


def _split_options(text: str) -> tuple[KeyOptions, str]:
    """Split ``opt,opt="v" keytype ...`` into options and the rest (sshd's quoting rules)."""
    flags: set[str] = set()
    values: list[tuple[str, str]] = []
    pos = 0
    while True:
        start = pos
        while pos < len(text) and text[pos] not in ',= \t"':
            pos += 1
        name = text[start:pos].lower()
        if not name:
            raise KeyLineError("bad options: empty option name")
        if pos < len(text) and text[pos] == "=":
            pos += 1
            if pos >= len(text) or text[pos] != '"':
                raise KeyLineError(f"bad options: {name}= needs a double-quoted value")
            value, pos = _quoted(text, pos + 1, name)
            if name not in VALUE_OPTIONS:
                raise KeyLineError(f"bad options: unknown option {_shorten(name)!r}")
            values.append((name, value))
        else:
            if name not in FLAG_OPTIONS:
                reason = "needs a value" if name in VALUE_OPTIONS else "unknown option"
                raise KeyLineError(f"bad options: {reason} {_shorten(name)!r}")
            flags.add(name)
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if pos < len(text) and text[pos] in " \t":
            return KeyOptions(frozenset(flags), tuple(values)), text[pos:].strip(_BLANKS)
        raise KeyLineError("bad options: no key after the options")


def _quoted(text: str, pos: int, name: str) -> tuple[str, int]:
    """Read a double-quoted value starting after the opening quote; ``\\"`` is a quote."""
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text) and text[pos + 1] == '"':
            out.append('"')
            pos += 2
            continue
        if char == '"':
            return "".join(out), pos + 1
        out.append(char)
        pos += 1
    raise KeyLineError(f"bad options: unterminated quote in {name}=")


def _describe_blob(key_type: str, blob: bytes) -> tuple[str, int]:
    """Check the blob's own type against ``key_type`` and return (family, bits)."""
    reader = _WireReader(blob)
    inner = reader.string().decode("ascii", "replace")
    if inner != key_type:
        raise KeyLineError(f"key data is a {_shorten(inner)!r} key, not {key_type}")
    base = key_type.removesuffix(CERT_SUFFIX)
    if key_type.endswith(CERT_SUFFIX):
        reader.string()  # the certificate's nonce precedes the public key fields
    if base == "ssh-rsa":
        reader.mpint()  # e
        return "rsa", reader.mpint().bit_length()
    if base == "ssh-dss":
        return "dsa", reader.mpint().bit_length()
    if base == "ssh-ed25519":
        return "ed25519", 256
    if base == "sk-ssh-ed25519@openssh.com":
        return "sk-ed25519", 256
    curve = reader.string().decode("ascii", "replace")
    if curve not in _ECDSA_BITS:
        raise KeyLineError(f"unknown ECDSA curve {_shorten(curve)!r}")
    family = "sk-ecdsa" if base.startswith("sk-") else "ecdsa"
    return family, _ECDSA_BITS[curve]


class _WireReader:
    """Reads SSH wire-format strings and mpints (RFC 4251 §5)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def string(self) -> bytes:
        if self._pos + 4 > len(self._data):
            raise KeyLineError("key data is truncated")
        size = int.from_bytes(self._data[self._pos : self._pos + 4], "big")
        self._pos += 4
        if self._pos + size > len(self._data):
            raise KeyLineError("key data is truncated")
        value = self._data[self._pos : self._pos + size]
        self._pos += size
        return value

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)


def _words(text: str, maxsplit: int) -> list[str]:
    """``text`` split on runs of spaces and tabs (sshd's separators), at most ``maxsplit`` times."""
    return [w for w in _WORD_BREAK.split(text.strip(_BLANKS), maxsplit) if w]


def _shorten(text: str, limit: int = 40) -> str:
    """Bound what a hostile line can put into a report."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
