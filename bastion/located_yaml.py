"""The one safe document loader: YAML (and JSON) into small located values, within limits.

Every file a user hands bastion (inventories, playbooks and their imports, ``-e @file``, the
access list) is read here, so every one gets the same guarantees:

- a regular file of at most 16 MiB (`document_file`), UTF-8, no control characters;
- YAML 1.2 core scalars only (`yaml_core`): no dates, no ``yes``/``no`` booleans, no exotic
  or unknown tags, integers length-checked before conversion;
- at most `MAX_DEPTH` levels of nesting, `MAX_ALIASES` aliases, and `MAX_VALUES` values and
  `MAX_TEXT` characters of scalar text *with every alias expanded* (so a billion-laughs file is
  refused after a few thousand events, not after gigabytes);
- duplicate keys, blank keys and a second document are errors;
- every problem is one `InputError` naming the file and line.

PyYAML's parser turns the text into events; the tree is built from the events here, without
recursion (PyYAML's composer and constructor are recursive and YAML 1.1), into `Scalar`, `Seq`
and `YamlMap` values that keep their line numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bastion.document_file import MAX_DOCUMENT_BYTES, read_document
from bastion.errors import InputError
from bastion.yaml_core import (
    CORE_SCALAR_TAGS,
    TAG_PREFIX,
    ScalarProblem,
    construct_tagged,
    resolve_plain,
    short_tag,
    shown,
    unknown_tag,
)

MAX_DEPTH = 100
"""Mappings and lists nested deeper than this are refused."""
MAX_ALIASES = 100_000
"""Alias uses (``*name``) in one document."""
MAX_VALUES = 1_000_000
"""Keys, values and items in one document, counting what every alias stands for."""
MAX_TEXT = MAX_DOCUMENT_BYTES
"""Characters of scalar text in one document, counting what every alias stands for."""

_MERGE_KEY = "<<"
_MAP_TAG = TAG_PREFIX + "map"
_SEQ_TAG = TAG_PREFIX + "seq"
_CONTROL = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_PURE_REPARSE_LIMIT = 1024 * 1024
"""Files up to this size are parsed again by the pure-Python parser for its clearer messages."""


@dataclass(frozen=True, slots=True)
class Scalar:
    line: int
    value: object
    """As the YAML 1.2 core schema types it: str, int, float, bool or None."""
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


@dataclass(frozen=True, slots=True)
class Document:
    """A document as read: its bytes (for digests) and its located tree (None when empty)."""

    path: Path
    data: bytes
    root: Node | None


def load_document(
    path: Path, error: type[InputError], *, what: str, missing: str | None = None
) -> Document:
    """Read ``path`` within the limits and parse it; every problem is one ``error``."""
    data = read_document(path, error, what=what, missing=missing)
    return Document(path, data, compose(path, data, error))


def compose(path: Path, data: bytes, error: type[InputError]) -> Node | None:
    """Parse YAML bytes into located values; None for an empty document."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (bad byte at offset {exc.start})", source=path) from None
    _refuse_control_characters(path, text, error)
    try:
        return _Builder(path, error).build(_FAST_LOADER(text))
    except yaml.YAMLError as fast_error:
        if len(text) > _PURE_REPARSE_LIMIT:
            raise _yaml_error(path, fast_error, error) from None
    try:
        # libyaml words its errors differently; the pure-Python parser's messages are the
        # documented ones, and a (small) file with an error is worth parsing twice.
        return _Builder(path, error).build(yaml.SafeLoader(text))
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc, error) from None


def plain(node: Node | None) -> object:
    """Located values as plain Python data (dict, list, str, int, float, bool, None).

    Each alias becomes a copy: the loader's budgets (`MAX_VALUES`) bound what that costs, and
    recursion is bounded by `MAX_DEPTH`.
    """
    if isinstance(node, YamlMap):
        return {name: plain(entry.value) for name, entry in node.entries.items()}
    if isinstance(node, Seq):
        return [plain(item) for item in node.items]
    return None if node is None else node.value


def load_yaml_nodes(
    path: Path, error: type[InputError], *, what: str, missing: str | None = None
) -> yaml.Node | None:
    """`load_document`, as PyYAML nodes (``MappingNode``...), for readers written against them.

    Scalars carry their core-schema tag and their text; merge keys are already merged.
    """
    root = load_document(path, error, what=what, missing=missing).root
    return None if root is None else _as_yaml_node(path, root, {})


def _as_yaml_node(path: Path, node: Node, done: dict[int, yaml.Node]) -> yaml.Node:
    key = id(node)
    if key in done:
        return done[key]
    mark = yaml.Mark(str(path), 0, node.line - 1, 0, None, 0)
    result: yaml.Node
    if isinstance(node, YamlMap):
        pairs = []
        for name, entry in node.entries.items():
            key_mark = yaml.Mark(str(path), 0, entry.key_line - 1, 0, None, 0)
            key_node = yaml.ScalarNode(TAG_PREFIX + "str", name, key_mark, key_mark)
            pairs.append((key_node, _as_yaml_node(path, entry.value, done)))
        result = yaml.MappingNode(_MAP_TAG, pairs, mark, mark)
    elif isinstance(node, Seq):
        items = [_as_yaml_node(path, item, done) for item in node.items]
        result = yaml.SequenceNode(_SEQ_TAG, items, mark, mark)
    else:
        tag = TAG_PREFIX + _core_name(node.value)
        result = yaml.ScalarNode(tag, node.text, mark, mark, node.style)
    done[key] = result
    return result


def _core_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    return "float" if isinstance(value, float) else "str"


_FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when PyYAML has it: about 0.05 ms of CPU per inventory host, not 0.25."""


def _refuse_control_characters(path: Path, text: str, error: type[InputError]) -> None:
    found = _CONTROL.search(text)
    if found is None:
        return
    position = found.start()
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    code = ord(found.group())
    escape = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    raise error(
        f"invalid YAML: control character U+{code:04X} at column {column} is not allowed "
        f'(inside double quotes, write it as "{escape}")',
        source=path,
        line=line,
    )


def _yaml_error(path: Path, exc: yaml.YAMLError, error: type[InputError]) -> InputError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        # The context ("while parsing a flow mapping") explains problems such as "but found".
        what = ", ".join(part for part in (exc.context, exc.problem) if part)
        return error(f"invalid YAML: {what}", source=path, line=line)
    return error(f"invalid YAML: {str(exc).splitlines()[0]}", source=path)


@dataclass(slots=True)
class _Open:
    """A mapping or list being built: its items so far and, for a mapping, the pending key."""

    line: int
    anchor: str | None
    is_map: bool
    items: list[Node] = field(default_factory=list)
    own: dict[str, Entry] = field(default_factory=dict)
    merged: dict[str, Entry] = field(default_factory=dict)
    key: Scalar | None = None
    key_is_merge: bool = False


class _Builder:
    """Builds the located tree from parser events, iteratively and within the budgets."""

    def __init__(self, path: Path, error: type[InputError]) -> None:
        self._path = path
        self._error_type = error
        self._stack: list[_Open] = []
        self._anchors: dict[str, tuple[Node, int, int, int]] = {}
        """Anchor -> (node, values, text characters, line), the counts with aliases expanded."""
        self._counts: list[list[int]] = []
        """Per open collection: [values, text characters] so far, for its anchor."""
        self._open_anchors: set[str] = set()
        self._aliases = 0
        self._values = 0
        self._text = 0
        self._root: Node | None = None
        self._documents = 0

    def build(self, loader: yaml.SafeLoader) -> Node | None:
        try:
            while True:
                event: yaml.Event = loader.get_event()  # type: ignore[no-untyped-call]
                if isinstance(event, yaml.StreamEndEvent):
                    return self._root
                self._event(event)
        finally:
            loader.dispose()

    def _event(self, event: yaml.Event) -> None:
        line = event.start_mark.line + 1 if event.start_mark is not None else 1
        if isinstance(event, yaml.DocumentStartEvent):
            self._documents += 1
            if self._documents > 1:
                raise self._error(
                    "invalid YAML: expected a single document in the stream, "
                    "but found another document",
                    line,
                )
        elif isinstance(event, yaml.ScalarEvent):
            self._scalar(event, line)
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event, line)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self._start(event, line)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            self._end()

    def _scalar(self, event: yaml.ScalarEvent, line: int) -> None:
        text = str(event.value)
        if event.style == '"' and _SURROGATE.search(text):
            text = self._pair_surrogates(text, line)
        tag = event.tag
        try:
            if tag is None and event.implicit[0]:
                value = resolve_plain(text)
            elif tag is None or tag == "!":
                value = text
            else:
                value = construct_tagged(tag, text)
        except ScalarProblem as exc:
            raise self._error(str(exc), line) from None
        style = event.style if event.style in ("|", ">") else None
        node = Scalar(line, value, text, style)
        is_merge = tag is None and bool(event.implicit[0]) and text == _MERGE_KEY
        self._spend(1, len(text), line)
        self._register(event.anchor, node, 1, len(text), line)
        self._add(node, 1, len(text), is_merge=is_merge)

    def _pair_surrogates(self, text: str, line: int) -> str:
        """``"\\ud83d\\ude00"`` is one character in JSON, two halves in YAML: join them as JSON
        does, and refuse a lone half (no file, terminal or message could encode it)."""
        try:
            return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        except UnicodeDecodeError:
            raise self._error(
                "invalid escape: a lone UTF-16 surrogate (\\ud800-\\udfff)", line
            ) from None

    def _alias(self, event: yaml.AliasEvent, line: int) -> None:
        name = str(event.anchor)
        if name in self._open_anchors:
            raise self._error("a YAML alias refers to itself", line)
        found = self._anchors.get(name)
        if found is None:
            raise self._error(f"invalid YAML: found undefined alias {shown(name)}", line)
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise self._error(f"more than {MAX_ALIASES:,} aliases in one document", line)
        node, values, text, _ = found
        self._spend(values, text, line)
        self._add(node, values, text, is_merge=False)

    def _start(self, event: yaml.MappingStartEvent | yaml.SequenceStartEvent, line: int) -> None:
        is_map = isinstance(event, yaml.MappingStartEvent)
        tag = event.tag
        if tag not in (None, "!", _MAP_TAG if is_map else _SEQ_TAG):
            name = short_tag(str(tag))
            if str(tag).removeprefix(TAG_PREFIX) in CORE_SCALAR_TAGS:
                raise self._error(f"tag {name} cannot be given to a mapping or list", line)
            raise self._error(unknown_tag(str(tag)), line)
        if len(self._stack) >= MAX_DEPTH:
            raise self._error(f"nested more than {MAX_DEPTH} levels deep", line)
        self._spend(1, 0, line)
        anchor = str(event.anchor) if event.anchor is not None else None
        if anchor is not None:
            self._check_anchor(anchor, line)
            self._open_anchors.add(anchor)
        self._stack.append(_Open(line, anchor, is_map))
        self._counts.append([1, 0])

    def _end(self) -> None:
        frame = self._stack.pop()
        values, text = self._counts.pop()
        node: Node
        if frame.is_map:
            node = YamlMap(frame.line, {**frame.merged, **frame.own})
        else:
            node = Seq(frame.line, tuple(frame.items))
        if frame.anchor is not None:
            self._open_anchors.discard(frame.anchor)
            self._anchors[frame.anchor] = (node, values, text, frame.line)
        self._add(node, values, text, is_merge=False)

    def _add(self, node: Node, values: int, text: int, *, is_merge: bool) -> None:
        if not self._stack:
            self._root = node
            return
        self._counts[-1][0] += values
        self._counts[-1][1] += text
        frame = self._stack[-1]
        if not frame.is_map:
            frame.items.append(node)
        elif frame.key is None:
            frame.key = self._key(node)
            frame.key_is_merge = is_merge
        else:
            key, frame.key = frame.key, None
            if frame.key_is_merge:
                self._merge(frame, node)
                return
            name = key.text
            first = frame.own.get(name)
            if first is not None:
                raise self._error(
                    f"duplicate key {shown(name)} (first at line {first.key_line})", key.line
                )
            frame.own[name] = Entry(key.line, node)

    def _key(self, node: Node) -> Scalar:
        if not isinstance(node, Scalar) or node.value is None or not node.text.strip():
            raise self._error("a key must be a non-empty name", node.line)
        return node

    def _merge(self, frame: _Open, node: Node) -> None:
        sources = node.items if isinstance(node, Seq) else (node,)
        for source in sources:
            if not isinstance(source, YamlMap):
                raise self._error(
                    "'<<' needs a mapping or a list of mappings to merge", source.line
                )
            for name, entry in source.entries.items():
                # Earlier mappings in a merge list win, as in YAML's merge spec.
                frame.merged.setdefault(name, entry)

    def _register(self, anchor: str | None, node: Node, values: int, text: int, line: int) -> None:
        if anchor is None:
            return
        self._check_anchor(str(anchor), line)
        self._anchors[str(anchor)] = (node, values, text, line)

    def _check_anchor(self, anchor: str, line: int) -> None:
        first = self._anchors.get(anchor)
        if first is not None or anchor in self._open_anchors:
            where = f" (first at line {first[3]})" if first is not None else ""
            raise self._error(f"anchor &{anchor} is defined twice{where}", line)

    def _spend(self, values: int, text: int, line: int) -> None:
        """Count what a node (an alias: what it stands for) adds; refuse past the budgets."""
        self._values += values
        self._text += text
        if self._values > MAX_VALUES:
            raise self._error(
                f"more than {MAX_VALUES:,} values with aliases expanded "
                "(a YAML alias bomb, or a document too large)",
                line,
            )
        if self._text > MAX_TEXT:
            raise self._error(
                f"more than {MAX_TEXT // (1024 * 1024)} MiB of text with aliases expanded "
                "(a YAML alias bomb, or a document too large)",
                line,
            )

    def _error(self, message: str, line: int | None) -> InputError:
        return self._error_type(message, source=self._path, line=line)
