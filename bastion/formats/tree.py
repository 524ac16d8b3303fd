"""Building located trees (`bastion.located_yaml` values) from parsed, non-YAML sources."""

from __future__ import annotations

from collections.abc import Iterable

from bastion.located_yaml import Entry, Node, Scalar, Seq, YamlMap


def scalar(value: object, line: int) -> Scalar:
    """A located scalar; its text is what YAML would have shown for the value."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return Scalar(line, value, text)


def mapping(line: int, items: Iterable[tuple[str, int, Node]]) -> YamlMap:
    """A located mapping from (key, key line, value) in order."""
    return YamlMap(line, {key: Entry(key_line, value) for key, key_line, value in items})


def from_python(value: object, line: int) -> Node:
    """Plain data (from ``ast.literal_eval`` or a located tree's `plain`) as located values."""
    if isinstance(value, dict):
        return mapping(line, ((str(k), line, from_python(v, line)) for k, v in value.items()))
    if isinstance(value, list | tuple | set | frozenset):
        return Seq(line, tuple(from_python(item, line) for item in value))
    if value is None or isinstance(value, str | int | float | bool):
        return scalar(value, line)
    return scalar(str(value), line)
