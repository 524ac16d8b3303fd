"""Label selectors exactly as Kubernetes reads them: ``role=worker,env!=prod,gpu,!spot``.

A port of apimachinery's ``labels.Parse`` (staging/src/k8s.io/apimachinery/pkg/labels/
selector.go): the same lexer (identifiers end at whitespace or one of ``=!(),<>``), the same
grammar (``k``, ``!k``, ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``,
``k>1``, ``k<1``), the same empty values (``k=``, ``k in ()`` and ``k in (a,)`` all admit
the empty value, which Kubernetes uses for ``node-role.kubernetes.io/control-plane: ""``),
the same key and value validation (`label_key_problem`, `label_value_problem`) and the same
canonical string (requirements sorted by key, set values sorted). An empty selector selects
everything. tests/test_selector_kubernetes.py replays Kubernetes' own test cases.

Both the inventory (groups defined by a selector, label validation) and the command-line
selection use this module, which depends on nothing but the error tree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum

from bastion.errors import SelectionError

MAX_SELECTOR_CHARS = 64 * 1024
"""Longer than any real selector; the parser refuses more before doing any work."""
_INT64 = (-(2**63), 2**63 - 1)
_WHITESPACE = frozenset(" \t\r\n")
_SPECIAL = frozenset("=!(),<>")
_NAME = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)"
_NAME_RE = re.compile(_NAME)
_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN_RE = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_INTEGER_RE = re.compile(r"[+-]?[0-9]{1,19}")


class Operator(StrEnum):
    """How a requirement tests one label (apimachinery's selection.Operator)."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    NOT_EXISTS = "!"
    GREATER_THAN = ">"
    LESS_THAN = "<"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One comma-separated term of a selector."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the labels satisfy this term (``Requirement.Matches`` in Kubernetes)."""
        value = labels.get(self.key)
        match self.operator:
            case Operator.EXISTS:
                return value is not None
            case Operator.NOT_EXISTS:
                return value is None
            case Operator.EQUALS | Operator.DOUBLE_EQUALS | Operator.IN:
                return value is not None and value in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                # As in Kubernetes, a host without the label is "not equal" to any value.
                return value is None or value not in self.values
            case Operator.GREATER_THAN | Operator.LESS_THAN:
                have, want = _int64(value), _int64(self.values[0])
                if have is None or want is None:
                    return False
                return have > want if self.operator is Operator.GREATER_THAN else have < want

    def __str__(self) -> str:
        match self.operator:
            case Operator.EXISTS:
                return self.key
            case Operator.NOT_EXISTS:
                return f"!{self.key}"
            case Operator.IN | Operator.NOT_IN:
                return f"{self.key} {self.operator} ({','.join(sorted(self.values))})"
            case _:
                return f"{self.key}{self.operator}{self.values[0]}"


@dataclass(frozen=True, slots=True)
class Selector:
    """A conjunction of requirements: a host matches when every term does (none: all do)."""

    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a host with these labels is selected."""
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        """The canonical form Kubernetes prints: sorted by key, set values sorted."""
        return ",".join(str(requirement) for requirement in self.requirements)


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label key (apimachinery IsQualifiedName), or None.

    A key is an optional DNS subdomain prefix of at most 253 characters and a ``/``, then a
    name of 1 to 63 characters: alphanumerics, ``-``, ``_`` and ``.``, starting and ending
    with an alphanumeric (``node-role.kubernetes.io/control-plane``).
    """
    prefix, slash, name = key.rpartition("/")
    if slash and (problem := _prefix_problem(prefix)):
        return problem
    if not name:
        return "name part must be non-empty"
    return _name_problem(name, "name part must")


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value (apimachinery IsValidLabelValue), or None.

    A value is empty, or 1 to 63 alphanumerics, ``-``, ``_`` and ``.``, starting and ending
    with an alphanumeric.
    """
    return _name_problem(value, "must")


def _prefix_problem(prefix: str) -> str | None:
    if not prefix:
        return "prefix part must be non-empty"
    if len(prefix) > 253:
        return "prefix part must be no more than 253 characters"
    if not _DNS_SUBDOMAIN_RE.fullmatch(prefix):
        return "prefix part must be a lowercase DNS subdomain, such as example.com"
    return None


def _name_problem(name: str, must: str) -> str | None:
    """A label name's or value's problem; only a value (``must``) may be empty."""
    if len(name) > 63:
        return f"{must} be no more than 63 characters"
    if name and not _NAME_RE.fullmatch(name):
        empty = "be empty, or " if must == "must" else ""
        return (
            f"{must} {empty}consist of alphanumerics, '-', '_' or '.', "
            "and start and end with an alphanumeric"
        )
    return None


def parse_selector(text: str) -> Selector:
    """Parse a selector as ``kubectl get -l`` does; raises `SelectionError` (source ``-l``).

    ``""`` (or only whitespace) selects everything, as in Kubernetes.
    """
    if len(text) > MAX_SELECTOR_CHARS:
        raise _bad(f"selector is {len(text)} characters; at most {MAX_SELECTOR_CHARS}")
    requirements = _Parser(text).parse()
    return Selector(tuple(sorted(requirements, key=lambda requirement: requirement.key)))


class _Token(Enum):
    END = "end of string"
    CLOSE = ")"
    COMMA = ","
    NOT = "!"
    DOUBLE_EQUALS = "=="
    EQUALS = "="
    GREATER = ">"
    IDENTIFIER = "identifier"
    IN = "in"
    LESS = "<"
    NOT_EQUALS = "!="
    NOT_IN = "notin"
    OPEN = "("


_LITERALS = {token.value: token for token in _Token if token not in (_Token.END, _Token.IDENTIFIER)}
_OPERATORS = {
    _Token.IN: Operator.IN,
    _Token.EQUALS: Operator.EQUALS,
    _Token.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
    _Token.GREATER: Operator.GREATER_THAN,
    _Token.LESS: Operator.LESS_THAN,
    _Token.NOT_IN: Operator.NOT_IN,
    _Token.NOT_EQUALS: Operator.NOT_EQUALS,
}
_BINARY = "in, notin, =, ==, !=, >, <"


def _lex(text: str) -> list[tuple[_Token, str]]:
    """The tokens of a selector (apimachinery's Lexer): longest special symbol first."""
    tokens: list[tuple[_Token, str]] = []
    position = 0
    while True:
        while position < len(text) and text[position] in _WHITESPACE:
            position += 1
        if position == len(text):
            tokens.append((_Token.END, ""))
            return tokens
        start = position
        if text[position] in _SPECIAL:
            token: _Token | None = None
            end = position
            while position < len(text) and text[position] in _SPECIAL:
                found = _LITERALS.get(text[start : position + 1])
                if found is not None:
                    token, end = found, position + 1
                elif token is not None:
                    break
                position += 1
            if token is None:
                raise _bad(f"unexpected {text[start:position]!r} in {_shown(text)}")
            position = end
            tokens.append((token, text[start:end]))
            continue
        while (
            position < len(text)
            and text[position] not in _SPECIAL
            and text[position] not in _WHITESPACE
        ):
            position += 1
        word = text[start:position]
        tokens.append((_LITERALS.get(word, _Token.IDENTIFIER), word))


class _Parser:
    """apimachinery's recursive-descent Parser, with its lookahead contexts."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = _lex(text)
        self._position = 0

    def _peek(self, values: bool = True) -> tuple[_Token, str]:
        token, literal = self._tokens[self._position]
        return (_as_value(token) if values else token), literal

    def _take(self, values: bool = True) -> tuple[_Token, str]:
        found = self._peek(values)
        self._position += 1
        return found

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            token, literal = self._peek()
            if token is _Token.END:
                return requirements
            if token not in (_Token.IDENTIFIER, _Token.NOT):
                raise self._error(f"found {literal!r}, expected: !, identifier, or end of string")
            requirements.append(self._requirement())
            token, literal = self._take()
            if token is _Token.END:
                return requirements
            if token is not _Token.COMMA:
                raise self._error(f"found {literal!r}, expected: ',' or end of string")
            following, literal = self._peek()
            if following not in (_Token.IDENTIFIER, _Token.NOT):
                raise self._error(f"found {literal or 'end of string'!r}, expected: identifier")

    def _requirement(self) -> Requirement:
        negated = self._peek()[0] is _Token.NOT
        if negated:
            self._take()
        token, key = self._take()
        if token is not _Token.IDENTIFIER:
            raise self._error(f"found {key or 'end of string'!r}, expected: identifier")
        if problem := label_key_problem(key):
            raise self._error(f"invalid label key {key!r}: {problem}")
        if self._peek()[0] in (_Token.END, _Token.COMMA):
            return Requirement(key, Operator.NOT_EXISTS if negated else Operator.EXISTS)
        token, literal = self._take(values=False)
        operator = _OPERATORS.get(token)
        if operator is None or negated:
            raise self._error(f"found {literal!r}, expected: {_BINARY}")
        values = self._set() if operator in (Operator.IN, Operator.NOT_IN) else self._exact()
        if operator in (Operator.GREATER_THAN, Operator.LESS_THAN) and _int64(values[0]) is None:
            raise self._error(f"{key}{operator}{values[0]}: the value must be an integer")
        for value in values:
            if problem := label_value_problem(value):
                raise self._error(f"invalid label value {value!r} for {key!r}: {problem}")
        return Requirement(key, operator, values)

    def _set(self) -> tuple[str, ...]:
        token, literal = self._take()
        if token is not _Token.OPEN:
            raise self._error(f"found {literal or 'end of string'!r}, expected: '('")
        values: dict[str, None] = {}
        token, literal = self._peek()
        if token is _Token.CLOSE:
            self._take()
            return ("",)
        if token not in (_Token.IDENTIFIER, _Token.COMMA):
            raise self._error(f"found {literal or 'end of string'!r}, expected: ',', ')' or value")
        while True:
            token, literal = self._take()
            if token is _Token.IDENTIFIER:
                values[literal] = None
                following, literal = self._peek()
                if following is _Token.CLOSE:
                    break
                if following is not _Token.COMMA:
                    raise self._error(f"found {literal or 'end of string'!r}, expected: ',' or ')'")
            elif token is _Token.COMMA:
                if not values:
                    values[""] = None  # "(,"
                following, _ = self._peek()
                if following is _Token.CLOSE:
                    values[""] = None  # ",)"
                    break
                if following is _Token.COMMA:
                    values[""] = None  # ",,"
            else:
                raise self._error(f"found {literal or 'end of string'!r}, expected: ',' or value")
        self._take()
        return tuple(sorted(values))

    def _exact(self) -> tuple[str, ...]:
        token, literal = self._peek()
        if token in (_Token.END, _Token.COMMA):
            return ("",)
        self._take()
        if token is not _Token.IDENTIFIER:
            raise self._error(f"found {literal!r}, expected: value")
        return (literal,)

    def _error(self, why: str) -> SelectionError:
        return _bad(f"bad selector {_shown(self._text)}: {why}")


def _as_value(token: _Token) -> _Token:
    """In a value position, ``in`` and ``notin`` are plain words (``a in (in,notin)``)."""
    return _Token.IDENTIFIER if token in (_Token.IN, _Token.NOT_IN) else token


def _int64(text: str | None) -> int | None:
    """Go's strconv.ParseInt(text, 10, 64), or None; never converts more than 19 digits."""
    if text is None or not _INTEGER_RE.fullmatch(text):
        return None
    number = int(text)
    return number if _INT64[0] <= number <= _INT64[1] else None


def _shown(text: str) -> str:
    """The selector for a message, cut when long."""
    return repr(text if len(text) <= 120 else text[:117] + "...")


def _bad(message: str) -> SelectionError:
    return SelectionError(message, source="-l")
