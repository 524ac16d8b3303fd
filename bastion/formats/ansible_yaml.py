"""Ansible's YAML inventory format, read as ansible-core's yaml plugin reads it.

Top-level keys are groups (usually just ``all``); each group has ``hosts`` (pattern ->
variables or nothing), ``children`` (group -> the same structure) and ``vars``. Unlike
Ansible, which warns and skips, an unexpected key is an error (a typo such as ``chilren:``
would drop hosts). Scalars are typed by bastion's YAML 1.2 loader, so ``yes`` stays text
where Ansible (YAML 1.1) reads ``true``. Source: lib/ansible/plugins/inventory/yaml.py.
"""

from __future__ import annotations

from pathlib import Path

from bastion.errors import InputError
from bastion.formats.ansible_inventory import AnsibleInventory, Value
from bastion.formats.ansible_ranges import PatternError, expand, split_port
from bastion.located_yaml import Entry, Node, Scalar, YamlMap, plain

GROUP_KEYS = ("hosts", "children", "vars")


def looks_like_ansible_yaml(root: Node | None) -> bool:
    """A mapping with ``all``, or of groups, each empty or a mapping of only hosts/children/vars,
    with at least one of those keys somewhere (bastion's own top level has ``hosts``)."""
    if not isinstance(root, YamlMap) or not root.entries or "hosts" in root.entries:
        return False
    if "all" in root.entries:
        return True  # never a bastion key: whatever follows is read (and checked) as Ansible's
    seen_section = False
    for entry in root.entries.values():
        value = entry.value
        if isinstance(value, Scalar) and value.value is None:
            continue
        if not isinstance(value, YamlMap) or not set(value.entries) <= set(GROUP_KEYS):
            return False
        seen_section = seen_section or bool(value.entries)
    return seen_section


def read_ansible_yaml(root: YamlMap, error: type[InputError], source: Path) -> YamlMap:
    """The bastion inventory tree of an Ansible YAML inventory (with its group_vars/ and
    host_vars/ directories)."""
    reader = _YamlReader(error, str(source))
    for name, entry in root.entries.items():
        reader.group(name, entry)
    reader.inventory.read_vars_dirs(source.absolute().parent)
    return reader.inventory.to_tree()


class _YamlReader:
    def __init__(self, error: type[InputError], source: str) -> None:
        self.error = error
        self.source = source
        self.inventory = AnsibleInventory(error, source)

    def fail(self, message: str, line: int) -> InputError:
        return self.error(message, source=self.source, line=line)

    def group(self, name: str, entry: Entry) -> None:
        self.inventory.group(name, entry.key_line)
        sections = self._mapping(entry, f"group {name!r}")
        for key, section in sections.items():
            if key not in GROUP_KEYS:
                raise self.fail(
                    f"unknown key {key!r} in group {name!r} (allowed: hosts, children, vars)",
                    section.key_line,
                )
        for key, item in self._mapping(sections.get("vars"), f"vars of {name!r}").items():
            self.inventory.groups[name].vars[key] = Value(plain(item.value), item.key_line)
        for child, item in self._mapping(sections.get("children"), f"children of {name!r}").items():
            self.group(child, item)
            self.inventory.add_child(name, child, item.key_line)
        for pattern, item in self._mapping(sections.get("hosts"), f"hosts of {name!r}").items():
            self._hosts(pattern, item, name)

    def _hosts(self, pattern: str, entry: Entry, group: str) -> None:
        try:
            base, port = split_port(pattern)
            names = expand(base)
        except PatternError as exc:
            raise self.fail(str(exc), entry.key_line) from None
        variables = self._mapping(entry, f"host {pattern!r}")
        for name in names:
            host = self.inventory.add_host(name, group, entry.key_line, port)
            for key, item in variables.items():
                host.vars[key] = Value(plain(item.value), item.key_line)

    def _mapping(self, entry: Entry | None, what: str) -> dict[str, Entry]:
        if entry is None:
            return {}
        value = entry.value
        if isinstance(value, Scalar) and value.value is None:
            return {}
        if (
            isinstance(value, Scalar)
            and isinstance(value.value, str)
            and what.startswith(("hosts", "children"))
        ):
            # Ansible: `hosts: node1` is `hosts: {node1: }`.
            return {value.value: Entry(value.line, Scalar(value.line, None, ""))}
        if not isinstance(value, YamlMap):
            raise self.fail(f"{what} must be a mapping", value.line)
        return dict(value.entries)
