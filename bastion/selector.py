"""Label selectors in the kubectl grammar: ``role=worker,env!=prod,gpu,!spot``.

Both the inventory (groups defined by a selector) and the command-line selection use this
module, which depends on nothing but the error tree, so imports stay one-directional.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from bastion.errors import SelectionError

LABEL_RULE = "non-empty, without spaces, ',', '=', '!', '<', '>', '(' or ')'"
"""What a label key or value may look like, phrased for error messages."""

# Looser than Kubernetes' label syntax on purpose: only the characters of the selector grammar
# (with kubectl's '<' and '>', which we do not support) are excluded, so that `role>1` is an
# error rather than a test for a label named "role>1".
_LABEL = r"[^\s,=!<>()]+"
_LABEL_RE = re.compile(_LABEL)
_NOT_EXISTS = re.compile(rf"!\s*({_LABEL})")
_SET = re.compile(rf"({_LABEL})\s+(in|notin)\s*\((.*)\)")
_EQUALITY = re.compile(rf"({_LABEL})\s*(==|!=|=)\s*({_LABEL})")
_EXPECTED = "expected k=v, k!=v, k, !k, 'k in (a,b)' or 'k notin (a,b)'"


class Operator(StrEnum):
    """How a requirement tests one label."""

    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    NOT_EXISTS = "!exists"


_EQUALITY_OPERATORS = {"=": Operator.EQUALS, "==": Operator.EQUALS, "!=": Operator.NOT_EQUALS}


@dataclass(frozen=True, slots=True)
class Requirement:
    """One comma-separated term of a selector."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the labels satisfy this term (kubectl semantics)."""
        value = labels.get(self.key)
        match self.operator:
            case Operator.EXISTS:
                return value is not None
            case Operator.NOT_EXISTS:
                return value is None
            case Operator.EQUALS | Operator.IN:
                return value in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                # As in Kubernetes, a host without the label is "not equal" to any value.
                return value not in self.values

    def __str__(self) -> str:
        match self.operator:
            case Operator.EXISTS:
                return self.key
            case Operator.NOT_EXISTS:
                return f"!{self.key}"
            case Operator.EQUALS | Operator.NOT_EQUALS:
                return f"{self.key}{self.operator}{self.values[0]}"
            case Operator.IN | Operator.NOT_IN:
                return f"{self.key} {self.operator} ({','.join(self.values)})"


@dataclass(frozen=True, slots=True)
class Selector:
    """A conjunction of requirements: a host matches when every term does."""

    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a host with these labels is selected."""
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


def is_label_text(text: str) -> bool:
    """Whether text can be a label key or value (see `LABEL_RULE`)."""
    return _LABEL_RE.fullmatch(text) is not None


def parse_selector(text: str) -> Selector:
    """Parse ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``, ``k notin (a,b)``.

    Commas outside parentheses separate terms, all of which must hold. Raises
    `SelectionError` (source ``-l``) naming the first malformed term.
    """
    if not text.strip():
        raise _bad("empty selector")
    terms = [term.strip() for term in _split_terms(text)]
    if not all(terms):
        raise _bad(f"empty term in {text!r} (two commas in a row, or a comma at an end)")
    return Selector(tuple(_parse_term(term) for term in terms))


def _split_terms(text: str) -> list[str]:
    """Split on the commas outside parentheses, so ``k in (a,b)`` stays one term."""
    terms: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise _bad(f"')' without a matching '(' in {text!r}")
        elif char == "," and depth == 0:
            terms.append(text[start:index])
            start = index + 1
    if depth > 0:
        raise _bad(f"'(' is never closed in {text!r}")
    terms.append(text[start:])
    return terms


def _parse_term(term: str) -> Requirement:
    if found := _NOT_EXISTS.fullmatch(term):
        return Requirement(found.group(1), Operator.NOT_EXISTS)
    if found := _SET.fullmatch(term):
        key, operator, body = found.groups()
        return Requirement(key, Operator(operator), _set_values(term, body))
    if found := _EQUALITY.fullmatch(term):
        key, operator, value = found.groups()
        return Requirement(key, _EQUALITY_OPERATORS[operator], (value,))
    if is_label_text(term):
        return Requirement(term, Operator.EXISTS)
    raise _bad(f"bad selector term {term!r}: {_EXPECTED}")


def _set_values(term: str, body: str) -> tuple[str, ...]:
    values = tuple(value.strip() for value in body.split(","))
    for value in values:
        if not is_label_text(value):
            raise _bad(f"bad selector term {term!r}: value {value!r} must be {LABEL_RULE}")
    return values


def _bad(message: str) -> SelectionError:
    return SelectionError(message, source="-l")
