"""A plain host-list file, as pssh ``-h`` and pdsh ``-w ^FILE`` read one.

One ``[user@]host[:port]`` per line (bastion ranges such as ``node[1-3]`` allowed), ``#``
starts a comment, blank lines are skipped. Each host is named by its address, with ``:port``
when a port is given (so the same address on two ports is two hosts).
"""

from __future__ import annotations

import re

from bastion.errors import InputError, SelectionError
from bastion.formats.tree import mapping, scalar
from bastion.hostset import expand
from bastion.located_yaml import Node, YamlMap

_ENTRY = re.compile(
    r"(?:(?P<user>[^@\s:\[\]]+)@)?"
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_][A-Za-z0-9_.\-\[\],]*))"
    r"(?::(?P<port>[0-9]{1,5}))?"
)


def _entries(text: str) -> list[tuple[int, str]]:
    found = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            found.append((number, line))
    return found


def looks_like_host_list(text: str) -> bool:
    """Every non-comment line is one ``[user@]host[:port]`` (and there is at least one)."""
    entries = _entries(text)
    return bool(entries) and all(_ENTRY.fullmatch(line) for _, line in entries)


def read_host_list(text: str, error: type[InputError], source: str) -> YamlMap:
    """The bastion inventory tree of a host list."""
    hosts: list[tuple[str, int, Node]] = []
    for number, line in _entries(text):
        found = _ENTRY.fullmatch(line)
        if found is None:
            raise error(
                f"expected [user@]host[:port], got {line[:60]!r}", source=source, line=number
            )
        address = found.group("v6") or found.group("host")
        try:
            addresses = [address] if found.group("v6") else expand(address)
        except (SelectionError, ValueError) as exc:
            message = exc.message if isinstance(exc, SelectionError) else "bad range"
            raise error(message, source=source, line=number) from None
        port = found.group("port")
        for each in addresses:
            settings: list[tuple[str, int, Node]] = [("address", number, scalar(each, number))]
            if found.group("user"):
                settings.append(("user", number, scalar(found.group("user"), number)))
            if port:
                settings.append(("port", number, scalar(int(port), number)))
            name = f"{each}:{port}" if port else each
            hosts.append((name, number, mapping(number, settings)))
    return mapping(1, [("hosts", 1, _hosts_checked(hosts, error, source))])


def _hosts_checked(
    hosts: list[tuple[str, int, Node]], error: type[InputError], source: str
) -> YamlMap:
    seen: dict[str, int] = {}
    for name, line, _ in hosts:
        if name in seen:
            raise error(
                f"duplicate host {name!r} (first at line {seen[name]})", source=source, line=line
            )
        seen[name] = line
    return mapping(1, hosts)
