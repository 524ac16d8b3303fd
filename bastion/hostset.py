"""Host name patterns: expand ``node[1-3]`` into names and fold names back into patterns.

Like ClusterShell's NodeSet, but small and pure. A pattern is a name with bracketed ranges
(``node[1-3,7]``; zero padding is kept, as in ``web[01-20]``; several brackets give their
cartesian product, ``rack[1-2]-n[1-2]``). A pattern list joins patterns with commas outside
brackets. `match` adds globs (``*`` and ``?``) resolved against a known set of names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from itertools import product
from math import prod
from typing import NamedTuple

from bastion.errors import SelectionError

MAX_EXPANSION = 100_000
"""More names than any fan-out needs: stops a typo such as ``node[1-10000000]`` eating memory."""

_RANGE_ITEM = re.compile(r"([0-9]+)(?:-([0-9]+))?")
_LAST_NUMBER = re.compile(r"([0-9]+)([^0-9]*)$")
_GLOB_CHARS = frozenset("*?")


class Match(NamedTuple):
    """What a pattern list matched among known names."""

    names: list[str]
    """The matched names, in the order of the known names."""
    unmatched: list[str]
    """Expanded names and globs that matched nothing, in pattern order."""


def expand(pattern: str) -> list[str]:
    """The names a pattern stands for, in order, without duplicates.

    ``node[1-3]`` gives node1, node2, node3; ``web[08-10]`` gives web08, web09, web10; a
    pattern without brackets is one name. Raises `SelectionError` for a malformed pattern.
    """
    text = pattern.strip()
    if not text:
        raise SelectionError("empty host pattern")
    pieces = _parse(text)
    if prod(len(choices) for choices in pieces) > MAX_EXPANSION:
        raise _malformed(text, f"expands to more than {MAX_EXPANSION} names")
    return list(dict.fromkeys("".join(combo) for combo in product(*pieces)))


def split_patterns(text: str) -> list[str]:
    """Split a pattern list on the commas outside brackets; blanks are dropped.

    ``"a, node[1-3,5],b"`` gives ``["a", "node[1-3,5]", "b"]``.
    """
    items: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            # A stray ']' is left for `expand` to report with the whole pattern in view.
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            items.append(text[start:index])
            start = index + 1
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]


def expand_all(text: str) -> list[str]:
    """Every name of a comma-separated pattern list, in order, first occurrence kept."""
    return list(dict.fromkeys(name for item in split_patterns(text) for name in expand(item)))


def is_glob(name: str) -> bool:
    """Whether an expanded name is a glob (``*`` or ``?``) rather than a plain name."""
    return not _GLOB_CHARS.isdisjoint(name)


def match(text: str, names: Sequence[str]) -> Match:
    """Resolve a pattern list (names, ranges, globs) against known names.

    Brackets are ranges, never glob character classes, so ``node[1-2]`` means node1 and
    node2. Each expanded name must exist and each glob must match something; those that do
    not are reported in `Match.unmatched` for the caller to phrase the error.
    """
    known = set(names)
    wanted: set[str] = set()
    unmatched: list[str] = []
    for term in expand_all(text):
        if is_glob(term):
            hits = {name for name in names if fnmatchcase(name, term)}
        else:
            hits = {term} & known
        if not hits:
            unmatched.append(term)
        wanted |= hits
    return Match([name for name in names if name in wanted], unmatched)


def fold(names: Iterable[str]) -> str:
    """The shortest readable pattern list for a set of names.

    The last number in each name is folded: ``node1,node2,node3,web01,web02`` gives
    ``node[1-3],web[01-02]``. A lone name stays as it is, names without a number are
    kept, and padding is never lost: ``node01`` and ``node1`` stay different. Output is
    sorted by prefix, then number.
    """
    plain: set[str] = set()
    # (prefix, suffix) -> number width -> numbers; width 0 means "not zero-padded".
    families: dict[tuple[str, str], dict[int, set[int]]] = {}
    unpadded: list[tuple[str, str, str]] = []
    for name in set(names):
        found = _LAST_NUMBER.search(name)
        if found is None:
            plain.add(name)
            continue
        prefix, digits, suffix = name[: found.start()], found.group(1), found.group(2)
        widths = families.setdefault((prefix, suffix), {})
        if _padded(digits):
            widths.setdefault(len(digits), set()).add(int(digits))
        else:
            unpadded.append((prefix, digits, suffix))
    for prefix, digits, suffix in sorted(unpadded, key=lambda item: int(item[1])):
        widths = families[(prefix, suffix)]
        widths.setdefault(_width_to_join(widths, int(digits), len(digits)), set()).add(int(digits))

    parts = [((name, -1, "", 0), name) for name in plain]
    for (prefix, suffix), widths in families.items():
        for width, numbers in widths.items():
            ordered = sorted(numbers)
            text = _fold_family(prefix, suffix, width, ordered)
            parts.append(((prefix, ordered[0], suffix, width), text))
    return ",".join(text for _, text in sorted(parts))


def _width_to_join(widths: dict[int, set[int]], number: int, length: int) -> int:
    """The family an unpadded number joins, among those that write it unchanged.

    ``web10`` reads the same in ``web[08-10]`` and in ``web[10-12]``. It extends a run if it
    can (``web[01-10]`` rather than ``web[01-09],web10``), else joins the unpadded family,
    else the widest padded one (``web[01-02,10]``).
    """
    padded = [width for width in widths if 1 < width <= length]
    continued = [width for width in [0, *padded] if number - 1 in widths.get(width, ())]
    if continued:
        return max(continued)
    if widths.get(0):
        return 0
    return max(padded, default=0)


def _fold_family(prefix: str, suffix: str, width: int, numbers: list[int]) -> str:
    """One folded item: the name itself for a single number, else ``prefix[ranges]suffix``."""
    if len(numbers) == 1:
        return f"{prefix}{_zfill(numbers[0], width)}{suffix}"
    runs = [
        _zfill(first, width) if first == last else f"{_zfill(first, width)}-{_zfill(last, width)}"
        for first, last in _runs(numbers)
    ]
    return f"{prefix}[{','.join(runs)}]{suffix}"


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    """Sorted numbers as runs of consecutive values: [1, 2, 3, 7] gives (1, 3), (7, 7)."""
    runs: list[tuple[int, int]] = []
    for number in numbers:
        if runs and runs[-1][1] == number - 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    return runs


def _parse(pattern: str) -> list[list[str]]:
    """Split a pattern into pieces: literal text (one choice) and ranges (many choices)."""
    pieces: list[list[str]] = []
    rest = pattern
    while rest:
        opening, closing = rest.find("["), rest.find("]")
        if closing != -1 and (opening == -1 or closing < opening):
            raise _malformed(pattern, "']' without a matching '['")
        if opening == -1:
            pieces.append([rest])
            break
        if closing == -1:
            raise _malformed(pattern, "'[' is never closed")
        body = rest[opening + 1 : closing]
        if "[" in body:
            raise _malformed(pattern, "brackets cannot be nested")
        pieces.append([rest[:opening]])
        pieces.append(_range_choices(pattern, body))
        rest = rest[closing + 1 :]
    return pieces


def _range_choices(pattern: str, body: str) -> list[str]:
    """The numbers a bracket body such as ``1-3,7`` or ``01-10`` stands for, as text."""
    if not body:
        raise _malformed(pattern, "empty brackets")
    choices: list[str] = []
    for item in body.split(","):
        found = _RANGE_ITEM.fullmatch(item)
        if found is None:
            raise _malformed(pattern, f"{item!r} is not a number or a range such as 1-3")
        first, last = found.group(1), found.group(2) or found.group(1)
        if int(first) > int(last):
            raise _malformed(pattern, f"range {item!r} goes backwards")
        if _padded(last) and len(last) != len(first):
            raise _malformed(pattern, f"range {item!r} mixes zero-padded and plain numbers")
        if int(last) - int(first) + len(choices) >= MAX_EXPANSION:
            raise _malformed(pattern, f"expands to more than {MAX_EXPANSION} names")
        width = len(first) if _padded(first) else 0
        choices.extend(_zfill(number, width) for number in range(int(first), int(last) + 1))
    return choices


def _padded(digits: str) -> bool:
    """Whether a number is written with leading zeros (``01``), which fixes its width."""
    return len(digits) > 1 and digits.startswith("0")


def _zfill(number: int, width: int) -> str:
    return str(number).zfill(width)


def _malformed(pattern: str, why: str) -> SelectionError:
    return SelectionError(f"bad host pattern {pattern!r}: {why}")
