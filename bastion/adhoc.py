"""Hosts outside any inventory: ``[user@]host[:port]`` as pdsh ``-w``, clush ``-w`` and pssh ``-H``.

An ad-hoc host carries only what was typed; everything else (user, port when not given, keys,
known_hosts, ProxyJump, HostName aliases) comes from ``~/.ssh/config`` exactly as ``ssh HOST``
would use it (docs/selection.md). Host lists (``-h FILE``, ``-H ^FILE``, ``-H -``) hold one
spec per line, ``#`` comments and blank lines ignored, as pssh's ``-h`` and pdsh's ``^file``.
Pure except `read_host_list`, which reads the list file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bastion.errors import SelectionError
from bastion.hostset import expand
from bastion.models import Host

MAX_HOST_LIST_BYTES = 16 * 1024 * 1024
"""A host list larger than this is refused (a million hosts fit in far less)."""
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")
_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.\[\],/-]*[A-Za-z0-9_\]])?")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[A-Za-z0-9_.-]+)?")
_PORT = re.compile(r"[0-9]{1,5}")
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")


@dataclass(frozen=True, slots=True)
class HostSpec:
    """One typed ``[user@]host[:port]``; ``host`` may hold ranges (``web[01-20].example``)."""

    user: str | None
    host: str
    port: int | None

    def hosts(self) -> list[Host]:
        """The hosts this spec stands for, one per name its ranges expand to."""
        names = [self.host] if _IPV6.fullmatch(self.host) else expand(self.host)
        return [
            Host(
                name=self.name_of(name),
                address=name,
                port=22 if self.port is None else self.port,
                user=self.user,
            )
            for name in names
        ]

    def name_of(self, address: str) -> str:
        """How a host is named in output and records: as typed, ``[user@]host[:port]``."""
        user = f"{self.user}@" if self.user else ""
        shown = f"[{address}]" if ":" in address and self.port is not None else address
        port = f":{self.port}" if self.port is not None else ""
        return f"{user}{shown}{port}"


def looks_ad_hoc(text: str) -> bool:
    """Whether an unmatched ``-H`` item is clearly meant as an outside host, not a typo.

    With an inventory loaded, ``-H nod1`` stays an "unknown host" error; ``-H ops@web1``,
    ``-H web1:2222``, ``-H web1.example.org`` and ``-H 192.0.2.7`` are ad-hoc hosts (the same
    rule as an inventory's outside ``jump:`` host).
    """
    return "@" in text or ":" in text or "." in text


def parse_host_spec(text: str, *, source: str = "-H") -> HostSpec:
    """Parse ``[user@]host[:port]``, ``[user@][v6]:port`` or a bare IPv6 address.

    Raises `SelectionError` naming ``source`` for anything ssh would not take as a host
    (a leading ``-``, spaces, control characters, a bad port).
    """
    user, at, rest = text.rpartition("@")
    if not at:
        user = ""
    if at and not _USER.fullmatch(user):
        raise _bad(text, f"user {user!r} is not a login name", source)
    host, port = _host_and_port(text, rest, source)
    if host.startswith("-"):
        raise _bad(text, "a host name cannot start with '-'", source)
    if not (_IPV6.fullmatch(host) or _NAME.fullmatch(host)):
        raise _bad(text, "expected [user@]host[:port], host letters, digits, '.', '-', '_'", source)
    if _IPV4.fullmatch(host) and any(int(octet) > 255 for octet in host.split(".")):
        raise _bad(text, "not an IPv4 address", source)
    return HostSpec(user or None, host, port)


def ad_hoc_hosts(items: Iterable[str], *, source: str = "-H") -> list[Host]:
    """The hosts of several specs, in order, duplicates (same name) dropped."""
    found: dict[str, Host] = {}
    for item in items:
        for host in parse_host_spec(item, source=source).hosts():
            found.setdefault(host.name, host)
    return list(found.values())


def host_list_items(text: str, *, source: str) -> list[str]:
    """The specs of a host list: one per line, ``#`` comments and blank lines ignored.

    Each line is checked (`parse_host_spec`) so an error names ``source:line``.
    """
    items: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        spec = line.split("#", 1)[0].strip()
        if not spec:
            continue
        if " " in spec or "\t" in spec:
            raise SelectionError(f"{source}:{number}: one host per line, got {spec[:80]!r}")
        try:
            parse_host_spec(spec, source=f"{source}:{number}")
        except SelectionError as exc:
            raise SelectionError(str(exc)) from None
        items.append(spec)
    return items


def read_host_list(path: Path) -> list[str]:
    """The specs of a host-list file (`host_list_items`); errors name the file."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_HOST_LIST_BYTES + 1)
    except OSError as exc:
        raise SelectionError(f"cannot read host list {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_HOST_LIST_BYTES:
        raise SelectionError(f"host list {path} is larger than {MAX_HOST_LIST_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SelectionError(
            f"host list {path} is not UTF-8 (byte {exc.start}: {data[exc.start]:#04x})"
        ) from None
    return host_list_items(text, source=str(path))


def _host_and_port(text: str, rest: str, source: str) -> tuple[str, int | None]:
    if rest.startswith("[") and ":" in rest.split("]", 1)[0]:
        host, _, after = rest[1:].partition("]")
        if not after:
            return host, None
        if not after.startswith(":"):
            raise _bad(text, "expected [address]:port", source)
        return host, _port(text, after[1:], source)
    if rest.count(":") > 1:
        return rest, None  # a bare IPv6 address, as ssh takes it
    host, colon, port = rest.partition(":")
    return host, (_port(text, port, source) if colon else None)


def _port(text: str, port: str, source: str) -> int:
    if not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        raise _bad(text, f"port {port[:20]!r} is not a number from 1 to 65535", source)
    return int(port)


def _bad(text: str, why: str, source: str) -> SelectionError:
    shown = text if len(text) <= 80 else text[:77] + "..."
    return SelectionError(f"bad host {shown!r}: {why}", source=source)
