"""Ansible's INI inventory format, read as ansible-core's ini plugin reads it.

``[group]`` hosts (``host [key=value ...]``, shell-quoted, ``#`` comments), ``[group:vars]``
(``key=value``), ``[group:children]`` (group names), hosts before any section in
``ungrouped``; values typed by ``ast.literal_eval`` as Ansible does (``2222`` is a number,
``'a b'`` text, ``[1, 2]`` a list), here only for values short enough to be safe to evaluate.
Errors name the line. Source: lib/ansible/plugins/inventory/ini.py (ansible-core 2.19).
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from pathlib import Path

from bastion.errors import InputError
from bastion.formats.ansible_inventory import AnsibleInventory, Value
from bastion.formats.ansible_ranges import PatternError, expand, split_port
from bastion.located_yaml import YamlMap

SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")
_COMMENTS = ("#", ";")
_MAX_EVALUATED = 1000
"""Values longer than this stay text: literal_eval's parser is recursive and unbounded."""


def read_ansible_ini(text: str, error: type[InputError], source: Path) -> YamlMap:
    """The bastion inventory tree of an Ansible INI inventory (with its group_vars/ and
    host_vars/ directories)."""
    inventory = _IniReader(error, str(source)).read(text)
    inventory.read_vars_dirs(source.absolute().parent)
    return inventory.to_tree()


def looks_like_ini(text: str) -> bool:
    """True when some line is an Ansible section header (``[web]``, ``[web:vars]``) at its
    first column (an indented ``[Service]`` is inside a YAML block scalar, not a section)."""
    return any(SECTION.match(line.rstrip()) for line in text.split("\n") if line.startswith("["))


class _IniReader:
    def __init__(self, error: type[InputError], source: str) -> None:
        self.error = error
        self.source = source
        self.inventory = AnsibleInventory(error, source)
        self.pending: dict[str, tuple[str, int, list[str]]] = {}
        """Groups named before their section: name -> (state, line, parents)."""

    def fail(self, message: str, line: int) -> InputError:
        return self.error(message, source=self.source, line=line)

    def read(self, text: str) -> AnsibleInventory:
        group, state = "ungrouped", "hosts"
        for number, raw in enumerate(text.split("\n"), start=1):
            line = raw.strip()
            if not line or line.startswith(_COMMENTS):
                continue
            section = SECTION.match(line)
            if section is not None:
                group, state = section.group(1), section.group(2) or "hosts"
                self._section(group, state, number)
                continue
            if line.startswith("[") and line.endswith("]"):
                raise self.fail(
                    f"invalid section {line[:60]!r}: no spaces or other invalid characters "
                    "in a section name",
                    number,
                )
            if state == "hosts":
                self._host_line(line, group, number)
            elif state == "vars":
                key, sep, value = line.partition("=")
                if not sep or not key.strip():
                    raise self.fail(f"expected key=value, got {line[:60]!r}", number)
                self.inventory.group(group, number).vars[key.strip()] = Value(
                    _value(value.strip()), number
                )
            else:
                self._child(line, group, number)
        for name, (state, number, parents) in self.pending.items():
            if state == "vars":
                raise self.fail(f"section [{name}:vars] is for a group that is not defined", number)
            raise self.fail(
                f"section [{parents[-1]}:children] names undefined group {name!r}", number
            )
        return self.inventory

    def _section(self, group: str, state: str, number: int) -> None:
        if state not in ("hosts", "children", "vars"):
            raise self.fail(f"section [{group}:{state}] has unknown type {state!r}", number)
        if group not in self.inventory.groups:
            if state == "vars" and group not in self.pending:
                self.pending[group] = ("vars", number, [])
            self.inventory.group(group, number)
        waiting = self.pending.get(group)
        if waiting is not None and state != "vars":
            if waiting[0] == "children":
                self._adopt(group)
            else:
                del self.pending[group]

    def _adopt(self, group: str) -> None:
        _, number, parents = self.pending.pop(group)
        for parent in parents:
            self.inventory.add_child(parent, group, number)
            if parent in self.pending and self.pending[parent][0] == "children":
                self._adopt(parent)

    def _child(self, line: str, group: str, number: int) -> None:
        found = _GROUP_NAME.match(line)
        if found is None:
            raise self.fail(f"expected a group name, got {line[:60]!r}", number)
        child = found.group(1)
        if child in self.inventory.groups:
            self.inventory.add_child(group, child, number)
        elif child in self.pending:
            self.pending[child][2].append(group)
        else:
            self.pending[child] = ("children", number, [group])

    def _host_line(self, line: str, group: str, number: int) -> None:
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise self.fail(f"cannot parse host line: {exc}", number) from None
        if not tokens:
            return
        try:
            pattern, port = split_port(tokens[0])
            names = expand(pattern)
        except PatternError as exc:
            raise self.fail(str(exc), number) from None
        variables: dict[str, Value] = {}
        for token in tokens[1:]:
            key, sep, value = token.partition("=")
            if not sep:
                raise self.fail(f"expected key=value host variable, got {token[:60]!r}", number)
            variables[key] = Value(_value(value), number)
        for name in names:
            if name.strip() == "---":
                raise self.fail("'---' is not a host: is this a YAML file?", number)
            host = self.inventory.add_host(name, group, number, port)
            host.vars.update(variables)


def _value(text: str) -> object:
    """As ansible's ``_parse_value``: a Python literal when it is one, else the text."""
    if len(text) > _MAX_EVALUATED:
        return text
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    if value is Ellipsis or isinstance(value, complex | bytes):
        return text if value is Ellipsis else str(value)
    return value
