"""Scalars as the YAML 1.2 core schema types them: str, int, float, bool, null; nothing else.

PyYAML follows YAML 1.1: ``2024-13-01`` is a (broken) date, ``yes`` and ``off`` are booleans,
``1:20`` is the integer 80, and a 5,000-digit integer reaches ``int()`` (which refuses it with
a traceback). Bastion's files are typed by the 1.2 core schema instead (yaml.org/spec/1.2.2,
section 10.3): anything that is not exactly a core null, bool, int or float stays text, and an
integer is length-checked before it is converted. Pure: no I/O, no PyYAML.
"""

from __future__ import annotations

import re

MAX_INTEGER_DIGITS = 64
"""Longer integer literals are refused before conversion (a 64-bit value has at most 20)."""

TAG_PREFIX = "tag:yaml.org,2002:"
CORE_SCALAR_TAGS = ("str", "int", "float", "bool", "null")

_NULL = re.compile(r"null|Null|NULL|~|")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_DECIMAL = re.compile(r"[-+]?[0-9]+")
_OCTAL = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INFINITY = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")


class ScalarProblem(ValueError):
    """A scalar that cannot have the type asked for (or an integer too long to convert)."""


def resolve_plain(text: str) -> object:
    """The value of an untagged plain scalar: the first core type whose pattern matches."""
    if _NULL.fullmatch(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    integer = _integer(text)
    if integer is not None:
        return integer
    number = _float(text)
    return text if number is None else number


def construct_tagged(tag: str, text: str) -> object:
    """The value of a scalar with an explicit core tag (``!!int "12"``); `ScalarProblem` if not."""
    name = tag.removeprefix(TAG_PREFIX)
    if name == "str":
        return text
    if name == "null":
        if _NULL.fullmatch(text):
            return None
        raise ScalarProblem(f"!!null needs null, ~ or nothing, not {shown(text)}")
    if name == "bool":
        if text in _BOOL:
            return _BOOL[text]
        raise ScalarProblem(f"!!bool needs true or false, not {shown(text)}")
    if name == "int":
        integer = _integer(text)
        if integer is None:
            raise ScalarProblem(f"!!int needs an integer, not {shown(text)}")
        return integer
    if name == "float":
        number = _float(text)
        if number is None:
            integer = _integer(text)
            if integer is None:
                raise ScalarProblem(f"!!float needs a number, not {shown(text)}")
            number = float(integer)
        return number
    raise ScalarProblem(unknown_tag(tag))


def unknown_tag(tag: str) -> str:
    """The message for a tag outside the core schema (``!secret``, ``!!timestamp``, ``!!set``)."""
    return (
        f"unknown tag {shown(short_tag(tag))} (only the YAML 1.2 core types: "
        "!!str, !!int, !!float, !!bool, !!null, !!map, !!seq)"
    )


def short_tag(tag: str) -> str:
    """``tag:yaml.org,2002:timestamp`` as it is usually written: ``!!timestamp``."""
    return "!!" + tag.removeprefix(TAG_PREFIX) if tag.startswith(TAG_PREFIX) else tag


def shown(text: str, limit: int = 40) -> str:
    """A value quoted for a message, cut when long (errors never echo a whole 100 KB input)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def _integer(text: str) -> int | None:
    if _DECIMAL.fullmatch(text):
        digits, base = text.lstrip("+-"), 10
    elif _OCTAL.fullmatch(text):
        digits, base = text[2:], 8
    elif _HEX.fullmatch(text):
        digits, base = text[2:], 16
    else:
        return None
    # Checked before int(): Python refuses more than 4,300 decimal digits with a ValueError,
    # and converting a long literal costs time quadratic in its length.
    if len(digits) > MAX_INTEGER_DIGITS:
        raise ScalarProblem(
            f"integer of {len(digits)} digits is too long (at most {MAX_INTEGER_DIGITS}); "
            "quote it to keep it as text"
        )
    value = int(digits, base)
    return -value if text.startswith("-") else value


def _float(text: str) -> float | None:
    if _INFINITY.fullmatch(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.fullmatch(text):
        return float("nan")
    if _FLOAT.fullmatch(text):
        return float(text)
    return None
