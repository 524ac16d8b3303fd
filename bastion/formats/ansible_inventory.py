"""An Ansible inventory as Ansible sees it, and the bastion inventory it becomes.

Groups, children and variables follow ansible-core's InventoryData: every group without a
parent is a child of ``all``; a host in no group but ``all`` is in ``ungrouped``; a host's
variables are its groups' (``all`` first, then by depth, then by name, as
``ansible.inventory.helpers.sort_groups``) overridden by its own. The bastion inventory has
each host's connection settings from ``ansible_host``, ``ansible_port``, ``ansible_user``,
``ansible_ssh_private_key_file`` and the jump host of ``ansible_ssh_common_args``; its other
variables as ``vars``; and each Ansible group (but ``all``, which is ``--all``) as a group
listing its hosts and its children's hosts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bastion.errors import InputError
from bastion.formats.ansible_vars_dirs import MAX_FILES, read_vars_file, vars_files
from bastion.formats.ssh_args import SshArgsProblem, jump_from_ssh_args
from bastion.formats.tree import from_python, mapping, scalar
from bastion.located_yaml import Node, Seq, YamlMap

_SETTINGS = (
    ("address", ("ansible_host", "ansible_ssh_host")),
    ("port", ("ansible_port", "ansible_ssh_port")),
    ("user", ("ansible_user", "ansible_ssh_user", "ansible_ssh_user_name")),
    ("identity_file", ("ansible_ssh_private_key_file", "ansible_private_key_file")),
)
_JUMP_VARS = ("ansible_ssh_common_args", "ansible_ssh_extra_args")
_CONNECTIONS = {"ssh": None, "smart": None, "paramiko": "paramiko", "paramiko_ssh": "paramiko"}
"""ansible_connection -> bastion transport (None: the default); others cannot be followed."""
CONSUMED = (
    frozenset(name for _, names in _SETTINGS for name in names)
    | set(_JUMP_VARS)
    | {"ansible_connection"}
)
"""Ansible variables that become bastion settings rather than vars."""


@dataclass
class Value:
    value: object
    line: int
    source: str | None = None
    """The vars file it comes from (``group_vars/all.yml``), None for the inventory itself."""


@dataclass
class Group:
    name: str
    line: int
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    vars: dict[str, Value] = field(default_factory=dict)
    depth: int = 0


@dataclass
class AnsibleHost:
    name: str
    line: int
    vars: dict[str, Value] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)


class AnsibleInventory:
    """Hosts and groups as the INI and YAML readers add them."""

    def __init__(self, error: type[InputError], source: str) -> None:
        self.error = error
        self.source = source
        self.groups: dict[str, Group] = {"all": Group("all", 1), "ungrouped": Group("ungrouped", 1)}
        self.hosts: dict[str, AnsibleHost] = {}
        self.dir_group_vars: dict[str, dict[str, Value]] = {}
        self.dir_host_vars: dict[str, dict[str, Value]] = {}
        """From group_vars/ and host_vars/ beside the inventory (`read_vars_dirs`)."""

    def group(self, name: str, line: int) -> Group:
        found = self.groups.get(name)
        if found is None:
            found = self.groups[name] = Group(name, line)
        return found

    def add_host(self, name: str, group: str, line: int, port: int | None = None) -> AnsibleHost:
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = AnsibleHost(name, line)
        target = self.group(group, line)
        if name not in target.hosts:
            target.hosts.append(name)
            host.groups.append(group)
        if port is not None:
            host.vars["ansible_port"] = Value(port, line)
        return host

    def add_child(self, parent: str, child: str, line: int) -> None:
        if parent == child:
            raise self.error(
                f"group {parent!r} cannot be its own child", source=self.source, line=line
            )
        upper, lower = self.group(parent, line), self.group(child, line)
        if child not in upper.children:
            upper.children.append(child)
            lower.parents.append(parent)
        if self._descends(child, parent):
            raise self.error(
                f"groups {parent!r} and {child!r} are each other's children",
                source=self.source,
                line=line,
            )

    def _descends(self, ancestor: str, name: str) -> bool:
        seen: set[str] = set()
        todo = [ancestor]
        while todo:
            current = todo.pop()
            for child in self.groups[current].children:
                if child == name:
                    return True
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return False

    # -- as bastion sees it --------------------------------------------------------------

    def read_vars_dirs(self, directory: Path) -> None:
        """Read ``group_vars/`` and ``host_vars/`` of ``directory``, as Ansible does."""
        read = 0
        for subdir, names, table in (
            ("group_vars", list(self.groups), self.dir_group_vars),
            ("host_vars", list(self.hosts), self.dir_host_vars),
        ):
            base = directory / subdir
            if not base.is_dir():
                continue
            for name in names:
                for path in vars_files(base, name):
                    read += 1
                    if read > MAX_FILES:
                        raise self.error(f"more than {MAX_FILES} vars files", source=base)
                    found = table.setdefault(name, {})
                    for key, value, line in read_vars_file(path, self.error):
                        found[key] = Value(value, line, str(path))

    def to_tree(self) -> YamlMap:
        """The bastion inventory tree (hosts, groups), lines pointing into the Ansible file."""
        self._reconcile()
        hosts = [(name, host.line, self._host_node(host)) for name, host in self.hosts.items()]
        groups = []
        for name, group in self.groups.items():
            if name == "all":
                continue
            members = self._members(name)
            items = tuple(scalar(host, group.line) for host in self.hosts if host in members)
            groups.append((name, group.line, Seq(group.line, items)))
        return mapping(1, [("hosts", 1, mapping(1, hosts)), ("groups", 1, mapping(1, groups))])

    def effective_vars(self, host: AnsibleHost) -> dict[str, Value]:
        """The host's variables as ``ansible-inventory --list`` shows them in ``hostvars``."""
        ancestors: set[str] = set()
        todo = list(host.groups)
        while todo:
            name = todo.pop()
            if name not in ancestors:
                ancestors.add(name)
                todo.extend(self.groups[name].parents)
        ordered = sorted((self.groups[name] for name in ancestors), key=lambda g: (g.depth, g.name))
        # Ansible's default VARIABLE_PRECEDENCE: the inventory's group vars (all, then by
        # depth and name), then group_vars/all, then group_vars/GROUP, then the inventory's
        # host vars, then host_vars/HOST.
        merged: dict[str, Value] = {}
        for group in ordered:
            merged.update(group.vars)
        for group in ordered:
            merged.update(self.dir_group_vars.get(group.name, {}))
        merged.update(host.vars)
        merged.update(self.dir_host_vars.get(host.name, {}))
        return merged

    def _reconcile(self) -> None:
        for name, group in self.groups.items():
            if name != "all" and not group.parents:
                group.parents.append("all")
                self.groups["all"].children.append(name)
        ungrouped = self.groups["ungrouped"]
        for host in self.hosts.values():
            others = [name for name in host.groups if name not in ("all", "ungrouped")]
            if others and "ungrouped" in host.groups:
                host.groups.remove("ungrouped")
                ungrouped.hosts.remove(host.name)
            elif not others and "ungrouped" not in host.groups:
                self.add_host(host.name, "ungrouped", host.line)
        # Depth as Ansible's Group.add_child_group: one more than the deepest parent.
        pending = ["all"]
        while pending:
            current = self.groups[pending.pop()]
            for child in current.children:
                lower = self.groups[child]
                if lower.depth < current.depth + 1:
                    lower.depth = current.depth + 1
                    pending.append(child)

    def _members(self, name: str) -> set[str]:
        found: set[str] = set()
        seen: set[str] = set()
        todo = [name]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            found.update(self.groups[current].hosts)
            todo.extend(self.groups[current].children)
        return found

    def _host_node(self, host: AnsibleHost) -> Node:
        merged = self.effective_vars(host)
        entries: list[tuple[str, int, Node]] = []
        for setting, names in _SETTINGS:
            given = next((merged[name] for name in names if name in merged), None)
            if given is not None:
                self._check_foreign(setting, given)
                value = given.value
                if (
                    setting == "port"
                    and isinstance(value, str)
                    and value.isdigit()
                    and len(value) <= 5
                ):
                    value = int(value)  # Ansible takes ansible_port: "2222" as the number
                line = self._line(given, host)
                entries.append((setting, line, from_python(value, line)))
        connection = merged.get("ansible_connection")
        if connection is not None:
            transport = self._transport(connection, host)
            if transport is not None:
                line = self._line(connection, host)
                entries.append(("transport", line, scalar(transport, line)))
        jump = self._jump(merged)
        if jump is not None:
            line = self._line(jump, host)
            entries.append(("jump", line, scalar(jump.value, line)))
        extra = [
            (key, self._line(item, host), from_python(item.value, self._line(item, host)))
            for key, item in merged.items()
            if key not in CONSUMED
        ]
        if extra:
            entries.append(("vars", host.line, mapping(host.line, extra)))
        return mapping(host.line, entries)

    def _transport(self, connection: Value, host: AnsibleHost) -> str | None:
        name = str(connection.value)
        if name in _CONNECTIONS:
            return _CONNECTIONS[name]
        raise self.error(
            f"host {host.name!r}: ansible_connection={name[:40]} cannot be followed: bastion "
            "reaches hosts over SSH (ssh, smart or paramiko)",
            source=connection.source or self.source,
            line=connection.line,
        )

    @staticmethod
    def _line(given: Value, host: AnsibleHost) -> int:
        """Where a later error about this value points in the inventory file: its own line,
        or the host's when it comes from a vars file (whose lines mean nothing there)."""
        return given.line if given.source is None else host.line

    def _check_foreign(self, setting: str, given: Value) -> None:
        """A setting from a vars file is checked here, where its own file can be named."""
        if given.source is None:
            return
        value = given.value
        if setting == "port":
            text = str(value)
            good = not isinstance(value, bool) and text.isdigit() and len(text) <= 5
            if not good or not 1 <= int(text) <= 65535:
                raise self.error(
                    f"ansible_port must be a port from 1 to 65535, got {text[:40]!r}",
                    source=given.source,
                    line=given.line,
                )
        elif not isinstance(value, str) or not value.strip():
            raise self.error(
                f"{setting} must be a non-empty string, got {str(value)[:40]!r}",
                source=given.source,
                line=given.line,
            )

    def _jump(self, merged: dict[str, Value]) -> Value | None:
        found: Value | None = None
        for name in _JUMP_VARS:
            given = merged.get(name)
            if given is None or given.value is None:
                continue
            try:
                jump = jump_from_ssh_args(str(given.value))
            except SshArgsProblem as exc:
                raise self.error(
                    f"{name}: {exc}", source=given.source or self.source, line=given.line
                ) from None
            if jump is not None:
                found = Value(jump, given.line, given.source)
        return found
