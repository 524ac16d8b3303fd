"""Host name patterns: expand ``node[1-3]`` into names and fold names back into patterns.

Read and written as ClusterShell's NodeSet does (docs/selection.md): a pattern is a name with
bracketed ranges (``node[1-3,7]``; zero padding kept, ``web[01-20]``; steps, ``[1-10/2]``;
several brackets give their cartesian product, ``rack[1-2]-n[1-2]``), and a pattern list
joins patterns with commas outside brackets. Digits written next to a bracket are plain text,
as pdsh reads them (``node1[1-3]`` is node11, node12, node13; ClusterShell reads it
differently), and `fold` never writes such a pattern, so what it prints pastes back into
clush, pdsh and bastion alike with the same meaning. `fold` folds every number in a name, in
as many dimensions as vary (``node[1-100].k8s.lab``, ``rack[1-4]-n[1-32]``).

Sizes are computed from the ranges before any name is made: a pattern or a pattern list that
would expand to more than `MAX_EXPANSION` names, or a number longer than `MAX_DIGITS`, is
refused with its size, before allocating anything.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from itertools import product
from math import prod
from typing import NamedTuple

from bastion.errors import SelectionError

MAX_EXPANSION = 100_000
"""More names than any fan-out needs: stops a typo such as ``node[1-10000000]`` eating memory."""
MAX_DIGITS = 18
"""The longest number a range may use (far beyond any host number; checked before int())."""

_RANGE_ITEM = re.compile(r"([0-9]+)(?:-([0-9]+)(?:/([0-9]+))?)?")
_DIGIT_RUN = re.compile(r"[0-9]+")
_GLOB_CHARS = frozenset("*?")


class Match(NamedTuple):
    """What a pattern list matched among known names."""

    names: list[str]
    """The matched names, in the order of the known names."""
    unmatched: list[str]
    """Expanded names and globs that matched nothing, in pattern order."""


@dataclass(frozen=True, slots=True)
class _Range:
    """One bracket item: ``first-last/step``, written ``width`` digits wide (0: unpadded)."""

    first: int
    last: int
    step: int
    width: int

    def __len__(self) -> int:
        return (self.last - self.first) // self.step + 1

    def __iter__(self) -> Iterator[str]:
        for number in range(self.first, self.last + 1, self.step):
            yield str(number).zfill(self.width)


_Piece = str | tuple[_Range, ...]
"""Literal text, or a bracket (its items)."""


def expand(pattern: str) -> list[str]:
    """The names a pattern stands for, in order, without duplicates.

    ``node[1-3]`` gives node1, node2, node3; ``web[08-10]`` gives web08, web09, web10; a
    pattern without brackets is one name. Raises `SelectionError` for a malformed pattern or
    one that expands to more than `MAX_EXPANSION` names.
    """
    text = pattern.strip()
    if not text:
        raise SelectionError("empty host pattern")
    pieces = _parse(text)
    _check_size(text, _size(pieces))
    return _names(pieces)


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


OPERATORS = {",": "union", "&": "intersection", "!": "difference", "^": "symmetric difference"}
"""ClusterShell's set operators between items of a pattern list, applied left to right."""


def split_operations(text: str) -> list[tuple[str, str]]:
    """Split ``a,b&c!d`` into ``[(",", "a"), (",", "b"), ("&", "c"), ("!", "d")]``.

    Operators outside brackets separate items (ClusterShell's NodeSet string syntax: ``,``
    union, ``&`` intersection, ``!`` difference, ``^`` symmetric difference, evaluated left
    to right); the first item's operator is ``,``. Blank items are dropped; an operator with
    nothing after it is an error.
    """
    terms: list[tuple[str, str]] = []
    depth, start, operator = 0, 0, ","
    for index, char in enumerate(text + ","):
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(depth - 1, 0)
        elif char in OPERATORS and depth == 0:
            item = text[start:index].strip()
            if item:
                terms.append((operator, item))
            elif operator != ",":
                raise SelectionError(f"bad host set {text!r}: {OPERATORS[operator]} of nothing")
            operator, start = char, index + 1
    if terms and terms[0][0] != ",":
        raise SelectionError(f"bad host set {text!r}: it starts with an operator")
    return terms


def combine(left: dict[str, None], operator: str, right: dict[str, None]) -> dict[str, None]:
    """``left OPERATOR right`` on ordered sets (dicts), keeping the left set's order first."""
    match operator:
        case ",":
            return {**left, **right}
        case "&":
            return {name: None for name in left if name in right}
        case "!":
            return {name: None for name in left if name not in right}
        case _:
            return {
                **{name: None for name in left if name not in right},
                **{name: None for name in right if name not in left},
            }


def expand_all(text: str) -> list[str]:
    """Every name of a comma-separated pattern list, in order, first occurrence kept.

    The whole list is sized before any name is made (80 items of ``[0-99998]`` are refused
    at once, not after building eight million names).
    """
    parsed = [(item, _parse(item)) for item in split_patterns(text)]
    total = sum(_size(pieces) for _, pieces in parsed)
    if total > MAX_EXPANSION:
        shown = text if len(text) <= 80 else text[:77] + "..."
        _check_size(shown, total)
    return list(dict.fromkeys(name for _, pieces in parsed for name in _names(pieces)))


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
    """The shortest readable pattern list for a set of names, as ClusterShell folds them.

    Every number in a name folds: ``node1,node2,node3,web01,web02`` gives
    ``node[1-3],web[01-02]``; ``node7.k8s.lab`` … ``node100.k8s.lab`` give
    ``node[7-100].k8s.lab``; names that differ in several numbers fold in several
    dimensions (``rack[1-4]-n[1-32]``). Padding is never lost (``node[1,01]``), a lone name
    stays as it is, and names without a number are kept. Output is sorted.
    """
    plain: set[str] = set()
    shapes: dict[tuple[str, ...], set[tuple[str, ...]]] = defaultdict(set)
    for name in set(names):
        literals, numbers = _split_numbers(name)
        if numbers:
            shapes[literals].add(numbers)
        else:
            plain.add(name)
    items: list[tuple[tuple[str, ...], tuple[int, ...], str]] = [
        ((name,), (), name) for name in plain
    ]
    for literals, vectors in shapes.items():
        for dimensions in _fold_vectors(vectors):
            text = literals[0] + "".join(
                _bracket(numbers) + literal
                for numbers, literal in zip(dimensions, literals[1:], strict=True)
            )
            first = tuple(min(int(number) for number in numbers) for numbers in dimensions)
            items.append((literals, first, text))
    return ",".join(text for *_, text in sorted(items))


def _split_numbers(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A name as its text around numbers, and its numbers: ``r1-n2`` is (r, -n, ''), (1, 2).

    A digit run longer than `MAX_DIGITS` is kept as text (no name has such a host number).
    """
    literals: list[str] = []
    numbers: list[str] = []
    start = 0
    for found in _DIGIT_RUN.finditer(name):
        if len(found.group()) > MAX_DIGITS:
            continue
        literals.append(name[start : found.start()])
        numbers.append(found.group())
        start = found.end()
    literals.append(name[start:])
    return tuple(literals), tuple(numbers)


def _fold_vectors(vectors: set[tuple[str, ...]]) -> list[tuple[frozenset[str], ...]]:
    """Fold number vectors into a few boxes (one set of numbers per dimension).

    The last dimension is folded first; then the values of each earlier dimension whose
    folded remainders are the same are merged, as ClusterShell's RangeSetND does.
    """
    if len(next(iter(vectors))) == 1:
        return [(frozenset(vector[0] for vector in vectors),)]
    rests: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for vector in vectors:
        rests[vector[0]].add(vector[1:])
    by_remainder: dict[frozenset[tuple[frozenset[str], ...]], set[str]] = defaultdict(set)
    for head, rest in rests.items():
        by_remainder[frozenset(_fold_vectors(rest))].add(head)
    return [
        (frozenset(heads), *boxes)
        for remainder, heads in by_remainder.items()
        for boxes in remainder
    ]


def _bracket(numbers: frozenset[str]) -> str:
    """One folded dimension: the number itself when alone, else ``[ranges]``."""
    if len(numbers) == 1:
        return next(iter(numbers))
    families: dict[int, set[int]] = defaultdict(set)
    unpadded: list[str] = []
    for digits in numbers:
        if _padded(digits):
            families[len(digits)].add(int(digits))
        else:
            unpadded.append(digits)
    for digits in sorted(unpadded, key=int):
        families[_width_to_join(families, int(digits), len(digits))].add(int(digits))
    runs = [
        _zfill(first, width) if first == last else f"{_zfill(first, width)}-{_zfill(last, width)}"
        for width in sorted(families)
        for first, last in _runs(sorted(families[width]))
    ]
    return f"[{','.join(runs)}]"


def _width_to_join(widths: dict[int, set[int]], number: int, length: int) -> int:
    """The family an unpadded number joins, among those that write it unchanged.

    ``web10`` reads the same in ``web[08-10]`` and in ``web[10-12]``. It extends a run if it
    can (``web[01-10]`` rather than ``web[01-09,10]``), else joins the unpadded family,
    else the widest padded one (``web[01-02,10]``).
    """
    padded = [width for width in widths if 1 < width <= length]
    continued = [width for width in [0, *padded] if number - 1 in widths.get(width, ())]
    if continued:
        return max(continued)
    if widths.get(0):
        return 0
    return max(padded, default=0)


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    """Sorted numbers as runs of consecutive values: [1, 2, 3, 7] gives (1, 3), (7, 7)."""
    runs: list[tuple[int, int]] = []
    for number in numbers:
        if runs and runs[-1][1] == number - 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    return runs


def _parse(pattern: str) -> list[_Piece]:
    """Split a pattern into pieces: literal text and brackets, without expanding anything."""
    pieces: list[_Piece] = []
    rest = pattern
    while rest:
        opening, closing = rest.find("["), rest.find("]")
        if closing != -1 and (opening == -1 or closing < opening):
            raise _malformed(pattern, "']' without a matching '['")
        if opening == -1:
            pieces.append(rest)
            break
        if closing == -1:
            raise _malformed(pattern, "'[' is never closed")
        body = rest[opening + 1 : closing]
        if "[" in body:
            raise _malformed(pattern, "brackets cannot be nested")
        pieces.append(rest[:opening])
        pieces.append(_bracket_items(pattern, body))
        rest = rest[closing + 1 :]
    return pieces


def _bracket_items(pattern: str, body: str) -> tuple[_Range, ...]:
    """The ranges of a bracket body such as ``1-3,7``, ``01-10`` or ``1-10/2``."""
    if not body:
        raise _malformed(pattern, "empty brackets")
    items: list[_Range] = []
    for item in body.split(","):
        found = _RANGE_ITEM.fullmatch(item.strip())
        if found is None:
            raise _malformed(pattern, f"{item!r} is not a number or a range such as 1-3 or 1-9/2")
        first, last, step = found.group(1), found.group(2) or found.group(1), found.group(3)
        for digits in (first, last, step or ""):
            if len(digits) > MAX_DIGITS:
                raise _malformed(
                    pattern, f"a number has {len(digits)} digits (at most {MAX_DIGITS})"
                )
        if int(first) > int(last):
            raise _malformed(pattern, f"range {item!r} goes backwards")
        if _padded(last) and len(last) != len(first):
            raise _malformed(pattern, f"range {item!r} mixes zero-padded and plain numbers")
        if step is not None and int(step) == 0:
            raise _malformed(pattern, f"range {item!r} has a step of 0")
        width = len(first) if _padded(first) else 0
        items.append(_Range(int(first), int(last), int(step or 1), width))
    return tuple(items)


def _size(pieces: list[_Piece]) -> int:
    """How many names the pieces stand for at most (duplicates counted), computed, not built."""
    return prod(sum(len(item) for item in piece) for piece in pieces if isinstance(piece, tuple))


def _check_size(pattern: str, size: int) -> None:
    if size > MAX_EXPANSION:
        raise _malformed(pattern, f"expands to {size:,} names, more than {MAX_EXPANSION:,}")


def _names(pieces: list[_Piece]) -> list[str]:
    choices = [
        [piece] if isinstance(piece, str) else [name for item in piece for name in item]
        for piece in pieces
    ]
    return list(dict.fromkeys("".join(combo) for combo in product(*choices)))


def _padded(digits: str) -> bool:
    """Whether a number is written with leading zeros (``01``), which fixes its width."""
    return len(digits) > 1 and digits.startswith("0")


def _zfill(number: int, width: int) -> str:
    return str(number).zfill(width)


def _malformed(pattern: str, why: str) -> SelectionError:
    return SelectionError(f"bad host pattern {pattern!r}: {why}")
