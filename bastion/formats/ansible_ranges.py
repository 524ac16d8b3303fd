"""Ansible host patterns: ``node[01:20]``, ``rack[a:c]-n[1:4]``, ``[1:10:2]``, and ``host:port``.

Follows ``expand_hostname_range`` and ``parse_address`` of ansible-core
(lib/ansible/plugins/inventory/__init__.py, lib/ansible/parsing/utils/addresses.py): a range
``[beg:end[:step]]`` is inclusive, zero-padded when ``beg`` has a leading zero (and then ``end``
must have the same length), alphabetic over ``a-zA-Z`` when both ends are letters. Unlike
Ansible, the number of hosts is computed before any is made and refused past `MAX_HOSTS`.
"""

from __future__ import annotations

import re
import string

MAX_HOSTS = 100_000
"""Hosts one pattern may expand to."""
_MAX_BOUND_DIGITS = 9

_RANGE = re.compile(r"\[([^\]]*)\]")
_PORT = re.compile(r"(?P<host>.*?):(?P<port>[0-9]+)")


class PatternError(ValueError):
    """A host pattern Ansible would refuse (or that would make too many hosts)."""


def split_port(pattern: str) -> tuple[str, int | None]:
    """``host:22`` -> (``host``, 22); ``[::1]:22`` -> (``::1``, 22); IPv6 without brackets
    and patterns whose ``:`` are all inside ranges have no port."""
    bracketed = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::([0-9]+))?", pattern)
    if bracketed is not None and ":" in bracketed.group(1):
        port = bracketed.group(2)
        return bracketed.group(1), _port(port) if port else None
    outside = _RANGE.sub("", pattern)
    if outside.count(":") == 1:
        found = _PORT.fullmatch(pattern)
        if found is not None and ":" not in _RANGE.sub("", found.group("host")):
            return found.group("host"), _port(found.group("port"))
    if outside.endswith(":"):
        raise PatternError(f"host pattern {pattern[:60]!r} ends in ':' (reserved for a port)")
    return pattern, None


def expand(pattern: str) -> list[str]:
    """Every host name of an Ansible pattern, in Ansible's order."""
    ranges = [_sequence(found.group(1), pattern) for found in _RANGE.finditer(pattern)]
    total = 1
    for values in ranges:
        total *= len(values)
        if total > MAX_HOSTS:
            raise PatternError(f"host pattern expands to more than {MAX_HOSTS:,} hosts")
    if "[" in _RANGE.sub("", pattern) or "]" in _RANGE.sub("", pattern):
        raise PatternError(f"unbalanced brackets in host pattern {pattern[:60]!r}")
    names = [""]
    pieces = _RANGE.split(pattern)
    # split() with one group alternates literal text and range bodies.
    for index, piece in enumerate(pieces):
        if index % 2 == 0:
            names = [name + piece for name in names]
        else:
            values = ranges[index // 2]
            names = [name + value for name in names for value in values]
    return names


def _sequence(whole: str, pattern: str) -> list[str]:
    bounds = whole.split(":")
    body = whole if len(whole) <= 40 else f"{whole[:40]}..."
    pattern = pattern if len(pattern) <= 60 else f"{pattern[:60]}..."
    if len(bounds) not in (2, 3):
        raise PatternError(f"host range [{body}] must be begin:end or begin:end:step")
    begin, end = bounds[0] or "0", bounds[1]
    if not end:
        raise PatternError(f"host range [{body}] must specify an end value")
    step_text = bounds[2] if len(bounds) == 3 else "1"
    if not step_text.isdigit() or len(step_text) > _MAX_BOUND_DIGITS or int(step_text) < 1:
        raise PatternError(f"host range [{body}]: the step must be a positive integer")
    step = int(step_text)
    letters = string.ascii_letters
    if begin in letters and end in letters and len(begin) == len(end) == 1:
        first, last = letters.index(begin), letters.index(end)
        if first > last:
            raise PatternError(f"host range [{body}] must have begin <= end")
        return list(letters[first : last + 1 : step])
    for bound in (begin, end):
        if bound.isdigit() and len(bound) > _MAX_BOUND_DIGITS:
            raise PatternError(f"host range [{body}]: a bound of {len(bound)} digits is too large")
        if not bound.isdigit():
            raise PatternError(f"host range [{body}] in {pattern!r} must be numbers or letters")
    width = len(begin) if begin.startswith("0") and len(begin) > 1 else 0
    if width and len(end) != width:
        raise PatternError(f"host range [{body}] must have begin and end of the same length")
    first, last = int(begin), int(end)
    count = max(0, (last - first) // step + 1) if last >= first else 0
    if count > MAX_HOSTS:
        raise PatternError(f"host pattern expands to more than {MAX_HOSTS:,} hosts")
    return [str(value).zfill(width) for value in range(first, last + 1, step)]


def _port(text: str) -> int:
    if len(text) > 5 or not 1 <= int(text) <= 65535:
        raise PatternError(f"port {text[:20]!r} must be from 1 to 65535")
    return int(text)
