"""ClusterShell ``groups.d`` YAML: group sources, each a mapping of group -> node set.

```yaml
local:                      # a group source (the first one is the default)
  compute: 'node[0001-0100]'
  gpu: 'node[0090-0100]'
  login: 'login[1-2],@gpu'  # node sets may name other groups of the same source
```

Node sets follow ClusterShell's syntax (``,`` union, ``!`` difference, ``&`` intersection,
``^`` symmetric difference, left to right; ``@group`` and ``@source:group``), ranges as
bastion's `hostset` reads them. Groups of the first source keep their names; groups of
other sources are named ``source:group``. Every node becomes a host whose address is its name.
"""

from __future__ import annotations

import re

from bastion.errors import InputError, SelectionError
from bastion.formats.tree import mapping, scalar
from bastion.hostset import expand
from bastion.located_yaml import Entry, Node, Scalar, Seq, YamlMap

_OPERATOR = re.compile(r"([,!&^])(?![^\[]*\])")
_MAX_REFERENCE_DEPTH = 32


def looks_like_clustershell(root: Node | None) -> bool:
    """A mapping of sources, each a non-empty mapping of group -> node set text (or list);
    never a file with one of bastion's top-level keys (its errors are bastion's)."""
    if not isinstance(root, YamlMap) or not root.entries:
        return False
    if any(key in root.entries for key in ("defaults", "hosts", "groups", "vars")):
        return False
    for source in root.entries.values():
        if not isinstance(source.value, YamlMap) or not source.value.entries:
            return False
        for group in source.value.entries.values():
            if not _is_nodeset_value(group.value):
                return False
    return True


def _is_nodeset_value(node: Node) -> bool:
    if isinstance(node, Scalar):
        return isinstance(node.value, str | int)
    return isinstance(node, Seq) and all(isinstance(item, Scalar) for item in node.items)


def read_clustershell(root: YamlMap, error: type[InputError], source: str) -> YamlMap:
    """The bastion inventory tree of a ClusterShell groups.d YAML file."""
    return _Reader(root, error, source).tree()


class _Reader:
    def __init__(self, root: YamlMap, error: type[InputError], source: str) -> None:
        self.root = root
        self.error = error
        self.source = source
        self.default = next(iter(root.entries))
        self.done: dict[tuple[str, str], list[str]] = {}

    def tree(self) -> YamlMap:
        hosts: dict[str, int] = {}
        groups: list[tuple[str, int, Node]] = []
        for source_name, source in self.root.entries.items():
            assert isinstance(source.value, YamlMap)
            for group, entry in source.value.entries.items():
                nodes = self.group(source_name, group, entry, 0)
                for node in nodes:
                    hosts.setdefault(node, entry.key_line)
                name = group if source_name == self.default else f"{source_name}:{group}"
                items = tuple(scalar(node, entry.key_line) for node in nodes)
                groups.append((name, entry.key_line, Seq(entry.key_line, items)))
        host_nodes = [(name, line, scalar(None, line)) for name, line in hosts.items()]
        if not host_nodes:
            raise self.error("no nodes in any group", source=self.source, line=1)
        return mapping(1, [("hosts", 1, mapping(1, host_nodes)), ("groups", 1, mapping(1, groups))])

    def group(self, source: str, group: str, entry: Entry, depth: int) -> list[str]:
        key = (source, group)
        if key in self.done:
            return self.done[key]
        if depth > _MAX_REFERENCE_DEPTH:
            raise self.error(
                f"group @{group} refers to itself", source=self.source, line=entry.key_line
            )
        value = entry.value
        texts = (
            [item.text for item in value.items if isinstance(item, Scalar)]
            if isinstance(value, Seq)
            else [value.text if isinstance(value, Scalar) else ""]
        )
        nodes: list[str] = []
        for text in texts:
            for node in self.nodeset(source, text, entry.key_line, depth):
                if node not in nodes:
                    nodes.append(node)
        self.done[key] = nodes
        return nodes

    def nodeset(self, source: str, text: str, line: int, depth: int) -> list[str]:
        parts = _OPERATOR.split(text.replace(" ", ""))
        result: list[str] = []
        operator = ","
        for index, part in enumerate(parts):
            if index % 2 == 1:
                operator = part
                continue
            if not part:
                continue
            names = self.element(source, part, line, depth)
            if operator == ",":
                result += [name for name in names if name not in result]
            elif operator == "!":
                result = [name for name in result if name not in set(names)]
            elif operator == "&":
                result = [name for name in result if name in set(names)]
            else:
                both = set(result) & set(names)
                result = [n for n in result if n not in both] + [n for n in names if n not in both]
        return result

    def element(self, source: str, part: str, line: int, depth: int) -> list[str]:
        if part.startswith("@"):
            reference = part[1:]
            target_source, _, target = reference.rpartition(":")
            target_source = target_source or source
            found = self.root.entries.get(target_source)
            groups = (
                found.value.entries
                if found is not None and isinstance(found.value, YamlMap)
                else {}
            )
            if target not in groups:
                raise self.error(f"unknown group @{reference}", source=self.source, line=line)
            return self.group(target_source, target, groups[target], depth + 1)
        try:
            return expand(part)
        except (SelectionError, ValueError) as exc:
            message = (
                exc.message if isinstance(exc, SelectionError) else f"bad node set {part[:60]!r}"
            )
            raise self.error(message, source=self.source, line=line) from None
