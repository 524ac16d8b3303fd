"""Load and validate the YAML inventory: hosts, their settings and labels, groups, vars.

Every problem is reported as ``file:line: message`` pointing at the offending key or value.
The located values come from `located_yaml`, which keeps the line of every key and value.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from difflib import get_close_matches
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from bastion.document_file import read_document
from bastion.errors import InventoryError, SelectionError
from bastion.hostset import expand, fold, is_glob, match
from bastion.lab.paths import LAB_INVENTORY_NAME, lab_inventory_path
from bastion.located_yaml import Entry, Node, Scalar, Seq, YamlMap, plain
from bastion.models import DEFAULT_CONNECT_TIMEOUT, DEFAULT_TRANSPORT, Host
from bastion.selector import label_key_problem, label_value_problem, parse_selector
from bastion.yaml_core import shown

INVENTORY_ENV = "BASTION_INVENTORY"
DEFAULT_INVENTORY = "inventory.yaml"
INVENTORIES_DIR = "inventories"
TRANSPORTS = ("asyncssh", "paramiko", "mosh")
SSH_PORT = 22

TOP_KEYS = ("defaults", "hosts", "groups", "vars")
SETTING_KEYS = (
    "user",
    "port",
    "identity_file",
    "known_hosts",
    "jump",
    "connect_timeout",
    "transport",
)
HOST_KEYS = ("address", *SETTING_KEYS, "labels", "vars")
GROUP_KEYS = ("selector",)

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*")
_NAME_RULE = "use letters, digits, '.', '-', '_' or ':'"
_JUMP_SPEC = re.compile(
    r"(?:[^@\s:/]+@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>[0-9]+))?"
)

_T = TypeVar("_T")


@dataclass(frozen=True)
class Inventory:
    """A validated inventory: hosts with defaults applied, resolved groups, global vars."""

    path: Path
    hosts: Mapping[str, Host]
    """Every host by name, in file order (ranges in expansion order)."""
    groups: Mapping[str, tuple[str, ...]]
    """Each group's host names, in inventory order."""
    vars: Mapping[str, object]
    """The top-level ``vars:``; each host's own vars are in `Host.vars`."""
    digest: str
    """SHA-256 of the file's bytes, so a run record can name the exact inventory used."""
    missing: str | None = None
    """Why there is no inventory (none given, none found): only ad-hoc ``-H`` hosts work."""


def load_inventory(path: Path) -> Inventory:
    """Read, parse and validate an inventory file; raise `InventoryError` at the first problem.

    bastion's YAML, Ansible INI and YAML inventories, host lists and ClusterShell groups.d
    files are all read (found by content: docs/inventory.md).
    """
    return load_inventory_as(path)[1]


def load_inventory_as(path: Path) -> tuple[str, Inventory, Node | None]:
    """`load_inventory`, with the format found (see `bastion.formats.detect`) and the tree
    in bastion's format that was validated (what ``bastion inventory convert`` writes)."""
    from bastion.formats.detect import inventory_tree

    if path.is_dir():
        path = _inventory_in_directory(path)
    data = read_document(path, InventoryError, what="inventory")
    kind, root = inventory_tree(path, data, InventoryError)
    return kind, _Builder(path).build(root, hashlib.sha256(data).hexdigest()), root


def open_inventory(name_or_path: str | None, *, cwd: Path | None = None) -> Inventory:
    """The inventory ``-i`` names; with none given, in $BASTION_INVENTORY or in ./inventory.yaml,
    an empty one whose `Inventory.missing` says so, for ad-hoc hosts (``-H user@host``)."""
    base = cwd if cwd is not None else Path()
    if name_or_path is None and not os.environ.get(INVENTORY_ENV):
        default = base / DEFAULT_INVENTORY
        if not default.is_file():
            return Inventory(
                path=default,
                hosts=MappingProxyType({}),
                groups=MappingProxyType({}),
                vars=MappingProxyType({}),
                digest="",
                missing=(
                    f"no inventory (looked for {default}): give -i PATH or NAME, "
                    f"set ${INVENTORY_ENV}, or name hosts with -H [user@]host[:port]"
                ),
            )
    return load_inventory(resolve_inventory_path(name_or_path, cwd=cwd))


def resolve_inventory_path(name_or_path: str | None, *, cwd: Path | None = None) -> Path:
    """Find the inventory that ``-i`` names (or ``$BASTION_INVENTORY``, or ``./inventory.yaml``).

    ``lab`` is the lab's inventory; a bare NAME is ``inventories/NAME.yaml`` when that exists;
    anything else is a path. Relative paths are kept relative to ``cwd`` (default: the
    current directory) so messages show them as typed.
    """
    base = cwd if cwd is not None else Path()
    source = "-i"
    if name_or_path is None:
        name_or_path = os.environ.get(INVENTORY_ENV) or None
        source = f"${INVENTORY_ENV}"
    if name_or_path is None:
        default = base / DEFAULT_INVENTORY
        if default.is_file():
            return default
        raise InventoryError(
            f"inventory not found (looked for {default}); "
            f"give -i PATH or NAME, or set ${INVENTORY_ENV}"
        )
    if name_or_path == LAB_INVENTORY_NAME:
        lab = lab_inventory_path()
        if lab.is_file():
            return lab
        raise InventoryError(
            f"lab inventory not found (looked for {lab}); run `bastion lab up` first",
            source=source,
        )
    candidates = [base / Path(name_or_path).expanduser()]
    if _is_bare_name(name_or_path):
        candidates.insert(0, base / INVENTORIES_DIR / f"{name_or_path}.yaml")
    for candidate in candidates:
        if candidate.exists():
            return candidate
    looked = ", ".join(str(candidate) for candidate in candidates)
    raise InventoryError(f"inventory not found (looked for {looked})", source=source)


_IGNORED_IN_DIRECTORY = (
    ".pyc",
    ".pyo",
    ".swp",
    ".bak",
    "~",
    ".rpm",
    ".md",
    ".txt",
    ".rst",
    ".orig",
    ".cfg",
    ".retry",
)
"""Ansible's INVENTORY_IGNORE_EXTS: files of an inventory directory that are not inventories."""


def _inventory_in_directory(directory: Path) -> Path:
    """The one inventory file of an Ansible-style inventory directory (``-i inventory/prod``).

    Ansible reads every file there; bastion reads one, and says so when there are several.
    ``group_vars/`` and ``host_vars/`` are read with it (docs/inventory.md).
    """
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise InventoryError(
            f"cannot read inventory: {exc.strerror or exc}", source=directory
        ) from None
    files = [
        entry
        for entry in entries
        if entry.is_file()
        and not entry.name.startswith(".")
        and not entry.name.endswith(_IGNORED_IN_DIRECTORY)
    ]
    if len(files) == 1:
        return files[0]
    if not files:
        raise InventoryError(
            "cannot read inventory: a directory with no inventory file", source=directory
        )
    names = ", ".join(entry.name for entry in files[:5])
    raise InventoryError(
        f"cannot read inventory: a directory with several files ({names}); give one with -i",
        source=directory,
    )


def _is_bare_name(text: str) -> bool:
    return "/" not in text and os.sep not in text and not text.endswith((".yaml", ".yml"))


# --- validation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Settings:
    """Connection settings as written in ``defaults:`` or a host; None means not given."""

    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    known_hosts: str | None = None
    jump: str | None = None
    jump_line: int | None = None
    """Where ``jump`` was written: jumps are checked once every host is known."""
    connect_timeout: float | None = None
    transport: str | None = None

    def over(self, base: _Settings) -> _Settings:
        """These settings, falling back to ``base`` for those not given."""
        merged: dict[str, Any] = {}
        for item in fields(self):
            mine = getattr(self, item.name)
            merged[item.name] = mine if mine is not None else getattr(base, item.name)
        return _Settings(**merged)


@dataclass(frozen=True, slots=True)
class _Draft:
    """A host before groups are known, with where it was written for later errors."""

    host: Host
    key: str
    key_line: int
    jump_line: int | None


class _Builder:
    """Validates the located tree of one inventory file and builds the `Inventory`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.directory = path.absolute().parent

    def build(self, root: Node | None, digest: str) -> Inventory:
        if root is None:
            raise self._error("the inventory is empty: expected a mapping with a 'hosts:' key")
        if not isinstance(root, YamlMap):
            raise self._error(
                f"the inventory must be a mapping with a 'hosts:' key, got {_describe(root)}",
                root.line,
            )
        top = root.entries
        self._check_keys(top, TOP_KEYS, "at top level")
        defaults = self._defaults(top.get("defaults"))
        drafts = self._hosts(top.get("hosts"), defaults, root.line)
        self._check_jumps(drafts)
        groups = self._groups(top.get("groups"), drafts)
        hosts = {name: _with_groups(draft.host, groups) for name, draft in drafts.items()}
        return Inventory(
            path=self.path,
            hosts=MappingProxyType(hosts),
            groups=MappingProxyType(groups),
            vars=self._vars(top.get("vars")),
            digest=digest,
        )

    # sections

    def _defaults(self, entry: Entry | None) -> _Settings:
        entries = self._entries(entry, "defaults")
        self._check_keys(entries, SETTING_KEYS, "in defaults")
        return self._settings(entries)

    def _hosts(self, entry: Entry | None, defaults: _Settings, top_line: int) -> dict[str, _Draft]:
        if entry is None:
            raise self._error(
                "missing 'hosts:': the inventory must list at least one host", top_line
            )
        table = self._entries(entry, "hosts")
        if not table:
            raise self._error("'hosts:' is empty: list at least one host", entry.key_line)
        drafts: dict[str, _Draft] = {}
        for key, host_entry in table.items():
            for draft in self._host(key, host_entry, defaults):
                first = drafts.get(draft.host.name)
                if first is not None:
                    raise self._error(
                        f"duplicate host {draft.host.name!r} "
                        f"(already defined by {first.key!r} at line {first.key_line})",
                        host_entry.key_line,
                    )
                drafts[draft.host.name] = draft
        return drafts

    def _host(self, key: str, entry: Entry, defaults: _Settings) -> list[_Draft]:
        names = self._host_names(key, entry.key_line)
        entries = self._entries(entry, f"host {key!r}")
        self._check_keys(entries, HOST_KEYS, f"in host {key!r}")
        own = self._settings(entries)
        addresses = self._addresses(key, names, entries.get("address"))
        labels = self._labels(entries.get("labels"))
        host_vars = self._vars(entries.get("vars"))
        drafts = []
        for name, address in zip(names, addresses, strict=True):
            inherited = defaults
            if defaults.jump == name:
                # The host that the default jump names is reached directly, not through itself.
                inherited = replace(defaults, jump=None, jump_line=None)
            merged = own.over(inherited)
            host = Host(
                name=name,
                address=address,
                port=merged.port if merged.port is not None else SSH_PORT,
                user=merged.user,
                labels=labels,
                vars=host_vars,
                jump=merged.jump,
                transport=merged.transport or DEFAULT_TRANSPORT,
                identity_file=merged.identity_file,
                known_hosts=merged.known_hosts,
                connect_timeout=merged.connect_timeout or DEFAULT_CONNECT_TIMEOUT,
            )
            drafts.append(_Draft(host, key, entry.key_line, merged.jump_line))
        return drafts

    def _groups(
        self, entry: Entry | None, drafts: Mapping[str, _Draft]
    ) -> dict[str, tuple[str, ...]]:
        groups: dict[str, tuple[str, ...]] = {}
        for name, group_entry in self._entries(entry, "groups").items():
            if _NAME.fullmatch(name) is None:
                raise self._error(
                    f"group name {name!r} is invalid: {_NAME_RULE}", group_entry.key_line
                )
            groups[name] = self._group(name, group_entry.value, drafts)
        return groups

    def _group(self, name: str, node: Node, drafts: Mapping[str, _Draft]) -> tuple[str, ...]:
        if isinstance(node, Seq):
            return self._listed_group(name, node, list(drafts))
        if isinstance(node, YamlMap):
            return self._selector_group(name, node, drafts)
        raise self._error(
            f"group {name!r} must be a list of host names or patterns, "
            f'or {{selector: "k=v,..."}}, got {_describe(node)}',
            node.line,
        )

    def _selector_group(
        self, name: str, node: YamlMap, drafts: Mapping[str, _Draft]
    ) -> tuple[str, ...]:
        self._check_keys(node.entries, GROUP_KEYS, f"in group {name!r}")
        entry = node.entries.get("selector")
        if entry is None:
            raise self._error(f"group {name!r} needs 'selector: \"k=v,...\"'", node.line)
        text = self._string("selector", entry.value, spaces=True)
        try:
            selector = parse_selector(text)
        except SelectionError as exc:
            raise self._error(f"group {name!r}: {exc.message}", entry.value.line) from None
        return tuple(host for host, draft in drafts.items() if selector.matches(draft.host.labels))

    def _listed_group(self, name: str, node: Seq, hosts: list[str]) -> tuple[str, ...]:
        members: set[str] = set()
        for item in node.items:
            if not isinstance(item, Scalar) or item.value is None:
                raise self._error(
                    f"group {name!r}: each item must be a host name or pattern, "
                    f"got {_describe(item)}",
                    item.line,
                )
            try:
                found = match(item.text, hosts)
            except SelectionError as exc:
                raise self._error(f"group {name!r}: {exc.message}", item.line) from None
            except ValueError:
                # A range bound past Python's int() limit (5,000 digits): not a host pattern.
                raise self._error(
                    f"group {name!r}: bad host pattern {shown(item.text)}", item.line
                ) from None
            if found.unmatched:
                raise self._error(
                    f"group {name!r} {_unmatched_phrase(found.unmatched[0])} "
                    f"(inventory has {fold(hosts)})",
                    item.line,
                )
            members.update(found.names)
        return tuple(host for host in hosts if host in members)

    def _check_jumps(self, drafts: Mapping[str, _Draft]) -> None:
        for name, draft in drafts.items():
            jump = draft.host.jump
            if jump is None:
                continue
            if jump not in drafts and not _is_jump_spec(jump):
                raise self._error(
                    f"jump {shown(jump)} is neither an inventory host nor a [user@]address[:port] "
                    "(an outside host needs a dotted name, a user@ or a :port)",
                    draft.jump_line,
                )
            chain = [name]
            while jump is not None and jump in drafts:
                if jump in chain:
                    loop = " -> ".join([*chain, jump])
                    raise self._error(f"jump loop: {loop}", draft.jump_line)
                chain.append(jump)
                jump = drafts[jump].host.jump

    # fields

    def _settings(self, entries: Mapping[str, Entry]) -> _Settings:
        jump = entries.get("jump")
        return _Settings(
            user=self._setting(entries, "user", self._word),
            port=self._setting(entries, "port", self._port),
            identity_file=self._setting(entries, "identity_file", self._file),
            known_hosts=self._setting(entries, "known_hosts", self._file),
            jump=self._setting(entries, "jump", self._word),
            jump_line=jump.value.line if jump is not None else None,
            connect_timeout=self._setting(entries, "connect_timeout", self._timeout),
            transport=self._setting(entries, "transport", self._transport),
        )

    def _setting(
        self, entries: Mapping[str, Entry], key: str, parse: Callable[[str, Node], _T]
    ) -> _T | None:
        entry = entries.get(key)
        if entry is None:
            return None
        if isinstance(entry.value, Scalar) and entry.value.value is None:
            raise self._error(
                f"{key} has no value (remove it to use the default)", entry.value.line
            )
        return parse(key, entry.value)

    def _word(self, key: str, node: Node) -> str:
        return self._string(key, node, spaces=False)

    def _string(self, key: str, node: Node, *, spaces: bool) -> str:
        value = node.value if isinstance(node, Scalar) else None
        if not isinstance(value, str) or not value.strip() or (not spaces and _has_space(value)):
            rule = "a non-empty string" if spaces else "a non-empty string without spaces"
            raise self._error(f"{key} must be {rule}, got {_describe(node)}", node.line)
        return value

    def _port(self, key: str, node: Node) -> int:
        value = node.value if isinstance(node, Scalar) else None
        # bool is an int in Python, but `port: true` is a mistake, not port 1.
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise self._error(
                f"{key} must be an integer from 1 to 65535, got {_describe(node)}", node.line
            )
        return value

    def _timeout(self, key: str, node: Node) -> float:
        value = node.value if isinstance(node, Scalar) else None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise self._error(
                f"{key} must be a positive number of seconds, got {_describe(node)}", node.line
            )
        return float(value)

    def _transport(self, key: str, node: Node) -> str:
        value = node.value if isinstance(node, Scalar) else None
        if value not in TRANSPORTS:
            raise self._error(
                f"{key} must be one of {', '.join(TRANSPORTS)}, got {_describe(node)}", node.line
            )
        return str(value)

    def _file(self, key: str, node: Node) -> str:
        path = Path(self._string(key, node, spaces=True)).expanduser()
        return str(path if path.is_absolute() else self.directory / path)

    def _host_names(self, key: str, line: int) -> list[str]:
        try:
            names = expand(key)
        except SelectionError as exc:
            raise self._error(exc.message, line) from None
        except ValueError:
            raise self._error(f"bad host name or range {shown(key)}", line) from None
        for name in names:
            if _NAME.fullmatch(name) is None:
                raise self._error(f"host name {name!r} is invalid: {_NAME_RULE}", line)
        return names

    def _addresses(self, key: str, names: list[str], entry: Entry | None) -> list[str]:
        if entry is None:
            return names
        address = self._word("address", entry.value)
        line = entry.value.line
        if "[" in key and "[" in address:
            try:
                addresses = expand(address)
            except SelectionError as exc:
                raise self._error(exc.message, line) from None
            except ValueError:
                raise self._error(f"bad address range {shown(address)}", line) from None
            if len(addresses) != len(names):
                raise self._error(
                    f"address {address!r} gives {len(addresses)} addresses "
                    f"for the {len(names)} hosts of {key!r}",
                    line,
                )
            return addresses
        if len(names) > 1:
            raise self._error(
                f"{len(names)} hosts would share address {address!r}: give a range of "
                f"{len(names)} addresses (such as 'host[1-{len(names)}]') or none",
                line,
            )
        return [address]

    def _labels(self, entry: Entry | None) -> Mapping[str, str]:
        labels: dict[str, str] = {}
        for key, label in self._entries(entry, "labels").items():
            if problem := label_key_problem(key):
                raise self._error(
                    f"label key {key!r}: {problem} (as in Kubernetes)", label.key_line
                )
            value = label.value
            if not isinstance(value, Scalar):
                raise self._error(
                    f"label {key!r} must have a text or number value, got {_describe(value)}",
                    value.line,
                )
            # `key:` and `key: ""` are the empty value, as in Kubernetes' node-role labels.
            text = "" if value.value is None else value.text
            if problem := label_value_problem(text):
                raise self._error(
                    f"label {key!r} has value {text!r}, which {problem} (as in Kubernetes)",
                    value.line,
                )
            labels[key] = text
        return MappingProxyType(labels)

    def _vars(self, entry: Entry | None) -> Mapping[str, object]:
        entries = self._entries(entry, "vars")
        return MappingProxyType({key: plain(item.value) for key, item in entries.items()})

    # helpers

    def _entries(self, entry: Entry | None, what: str) -> Mapping[str, Entry]:
        """The entries of a mapping section; an absent or empty (null) section has none."""
        if entry is None:
            return {}
        node = entry.value
        if isinstance(node, Scalar) and node.value is None:
            return {}
        if not isinstance(node, YamlMap):
            raise self._error(f"{what} must be a mapping, got {_describe(node)}", node.line)
        return node.entries

    def _check_keys(
        self, entries: Mapping[str, Entry], allowed: tuple[str, ...], where: str
    ) -> None:
        for key, entry in entries.items():
            if key not in allowed:
                close = get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise self._error(
                    f"unknown key {key!r} {where}{hint} (allowed: {', '.join(allowed)})",
                    entry.key_line,
                )

    def _error(self, message: str, line: int | None = None) -> InventoryError:
        return InventoryError(message, source=self.path, line=line)


def _with_groups(host: Host, groups: Mapping[str, tuple[str, ...]]) -> Host:
    member_of = tuple(name for name, members in groups.items() if host.name in members)
    return replace(host, groups=member_of)


def _is_jump_spec(text: str) -> bool:
    found = _JUMP_SPEC.fullmatch(text)
    if found is None or not any(mark in text for mark in ".:@"):
        return False
    port = found.group("port")
    # Length first: int() of 5,000 digits is a ValueError, not a port number out of range.
    return port is None or (len(port) <= 5 and 1 <= int(port) <= 65535)


def _unmatched_phrase(term: str) -> str:
    return (
        f"has pattern {term!r} that matches no host"
        if is_glob(term)
        else f"names unknown host {term!r}"
    )


def _has_space(text: str) -> bool:
    return any(char.isspace() for char in text)


def _describe(node: Node) -> str:
    """A value as an error message shows it: ``'22'``, ``true``, ``null``, ``a list``."""
    if isinstance(node, YamlMap):
        return "a mapping"
    if isinstance(node, Seq):
        return "a list"
    value = node.value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return shown(value)
    return node.text if len(node.text) <= 40 else shown(node.text)
