"""YAML with line numbers: documents walked into small located values.

PyYAML's dictionaries forget where things were written and silently keep the last of two
duplicate keys. Files a user writes by hand (inventories, later playbooks and access lists)
must name the line of every problem, so the document is composed into YAML nodes and walked
into a tree of located values (`Scalar`, `Seq`, `YamlMap`) that validation reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from bastion.errors import InputError

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class Scalar:
    line: int
    value: object
    """As YAML typed it: str, int, float, bool, None, a date..."""
    text: str
    """As written (without quotes), for labels, where ``01`` and ``true`` must stay text."""
    style: str | None = None
    """``|`` or ``>`` for block scalars (whose text starts on the next line), else None."""


@dataclass(frozen=True, slots=True)
class Seq:
    line: int
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    key_line: int
    value: Node


@dataclass(frozen=True, slots=True)
class YamlMap:
    line: int
    entries: Mapping[str, Entry]


Node = Scalar | Seq | YamlMap


def compose(path: Path, data: bytes, error: type[InputError]) -> Node | None:
    """Parse YAML text into located values; None for an empty document."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (bad byte at offset {exc.start})", source=path) from None
    with contextlib.suppress(yaml.YAMLError):
        return _compose_text(path, text, _FAST_LOADER, error)
    try:
        # libyaml words its errors differently; the pure-Python parser's messages are the
        # documented ones, and a file with an error is worth parsing twice.
        return _compose_text(path, text, yaml.SafeLoader, error)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        # The context ("while parsing a flow mapping") explains problems such as "but found".
        what = ", ".join(part for part in (exc.context, exc.problem) if part)
        raise error(f"invalid YAML: {what}", source=path, line=line) from None
    except yaml.YAMLError as exc:
        # Reader errors (control characters) carry an offset, not a line.
        raise error(f"invalid YAML: {str(exc).splitlines()[0]}", source=path) from None


_FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader when PyYAML has it: about 0.05 ms of CPU per inventory host, not 0.25."""


def _compose_text(
    path: Path, text: str, loader_class: type[yaml.SafeLoader], error: type[InputError]
) -> Node | None:
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        return None if root is None else _Tree(path, loader, error).convert(root)
    finally:
        loader.dispose()


class _Tree:
    """Walks composed YAML nodes into located values, rejecting duplicate keys."""

    def __init__(self, path: Path, loader: yaml.SafeLoader, error: type[InputError]) -> None:
        self._path = path
        self._error_type = error
        self._loader = loader
        # Aliases make the node graph a DAG (or a cycle): convert each node once.
        self._done: dict[int, Node] = {}
        self._open: set[int] = set()

    def convert(self, node: yaml.Node) -> Node:
        key = id(node)
        if key in self._done:
            return self._done[key]
        if key in self._open:
            raise self._error("a YAML alias refers to itself", node)
        self._open.add(key)
        line = node.start_mark.line + 1
        result: Node
        if isinstance(node, yaml.MappingNode):
            result = YamlMap(line, self._entries(node))
        elif isinstance(node, yaml.SequenceNode):
            result = Seq(line, tuple(self.convert(item) for item in node.value))
        else:
            style = node.style if isinstance(node, yaml.ScalarNode) else None
            result = Scalar(line, self._construct(node), str(node.value), style)
        self._open.discard(key)
        self._done[key] = result
        return result

    def _entries(self, node: yaml.MappingNode) -> dict[str, Entry]:
        merged: dict[str, Entry] = {}
        own: dict[str, Entry] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for source in self._merge_sources(value_node):
                    for key, entry in source.entries.items():
                        # Earlier mappings in a merge list win, as in YAML's merge spec.
                        merged.setdefault(key, entry)
                continue
            key = self._key(key_node)
            line = key_node.start_mark.line + 1
            if key in own:
                first = own[key].key_line
                raise self._error(f"duplicate key {key!r} (first at line {first})", key_node)
            own[key] = Entry(line, self.convert(value_node))
        return {**merged, **own}

    def _merge_sources(self, node: yaml.Node) -> list[YamlMap]:
        nodes = node.value if isinstance(node, yaml.SequenceNode) else [node]
        sources: list[YamlMap] = []
        for item in nodes:
            converted = self.convert(item)
            if not isinstance(converted, YamlMap):
                raise self._error("'<<' needs a mapping or a list of mappings to merge", item)
            sources.append(converted)
        return sources

    def _key(self, node: yaml.Node) -> str:
        if not isinstance(node, yaml.ScalarNode) or self._construct(node) in (None, ""):
            raise self._error("a key must be a non-empty name", node)
        return str(node.value)

    def _construct(self, node: yaml.Node) -> object:
        try:
            value: object = self._loader.construct_object(node, deep=True)
        except ValueError as exc:
            # Values that look typed but are not (2024-13-01 as a date) raise plain ValueError.
            raise self._error(f"invalid value {node.value!r}: {exc}", node) from None
        return value

    def _error(self, message: str, node: yaml.Node) -> InputError:
        return self._error_type(message, source=self._path, line=node.start_mark.line + 1)
