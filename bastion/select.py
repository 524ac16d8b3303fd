"""Which hosts a command runs on: ``--all``, ``-g``, ``-H``, ``-l`` and ``-x``.

The targets are the union of ``--all``, ``-g`` groups and ``-H`` patterns (every host when
only ``-l`` is given), then filtered by the ``-l`` selector, minus the ``-x`` patterns. An
unknown host or group, or a selection that ends up empty, is an error naming the option to
fix, never a silent no-op.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from bastion.errors import SelectionError
from bastion.hostset import fold, is_glob, match, split_patterns
from bastion.inventory import Inventory
from bastion.models import Host
from bastion.selector import Selector, parse_selector

__all__ = ["Selection", "Selector", "parse_selector", "select_hosts"]


@dataclass(frozen=True, slots=True)
class Selection:
    """The selection options as given on the command line."""

    all: bool = False
    groups: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    selector: str | None = None
    exclude: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """Whether no targets were chosen: no --all, -g, -H or -l (-x alone chooses none)."""
        return not (self.all or self.groups or self.hosts or self.selector is not None)

    def describe(self) -> str:
        """The selection as options to paste in a shell, e.g. ``--all -l role=worker -x node3``."""
        options = ["--all"] if self.all else []
        options += [f"-g {shlex.quote(group)}" for group in self.groups]
        options += [f"-H {shlex.quote(pattern)}" for pattern in self.hosts]
        if self.selector is not None:
            options.append(f"-l {shlex.quote(self.selector)}")
        options += [f"-x {shlex.quote(pattern)}" for pattern in self.exclude]
        return " ".join(options)


def select_hosts(inventory: Inventory, selection: Selection) -> list[Host]:
    """The selected hosts, in inventory order; raises `SelectionError` if none or unknown."""
    if selection.is_empty():
        raise SelectionError(
            "no hosts chosen: give --all, -g GROUP, -H PATTERN or -l SELECTOR "
            f"(inventory has {fold(inventory.hosts)})"
        )
    hosts = _targets(inventory, selection)
    if selection.selector is not None:
        hosts = _filter(hosts, selection.selector)
    if selection.exclude:
        hosts = _exclude(inventory, hosts, selection.exclude)
    return hosts


def _targets(inventory: Inventory, selection: Selection) -> list[Host]:
    """The union of --all, -g and -H, before -l and -x."""
    only_selector = not (selection.all or selection.groups or selection.hosts)
    if selection.all or only_selector:
        return list(inventory.hosts.values())
    chosen: set[str] = set()
    for text in selection.groups:
        names = split_patterns(text)
        if not names:
            raise SelectionError("empty group name", source="-g")
        for name in names:
            chosen.update(_group(inventory, name.removeprefix("@"), "-g"))
    for text in selection.hosts:
        chosen.update(_resolve(inventory, text, "-H"))
    if not chosen:
        # A -H name or glob that matches nothing has already failed: only empty groups get here.
        raise SelectionError(
            f"the chosen groups have no hosts ({selection.describe()})",
            source="-g" if selection.groups else "-H",
        )
    return [host for name, host in inventory.hosts.items() if name in chosen]


def _filter(hosts: list[Host], text: str) -> list[Host]:
    selector = parse_selector(text)
    kept = [host for host in hosts if selector.matches(host.labels)]
    if not kept:
        raise SelectionError(
            f"selector {text!r} matched none of {fold(host.name for host in hosts)}", source="-l"
        )
    return kept


def _exclude(inventory: Inventory, hosts: list[Host], patterns: tuple[str, ...]) -> list[Host]:
    excluded: set[str] = set()
    for text in patterns:
        excluded.update(_resolve(inventory, text, "-x"))
    kept = [host for host in hosts if host.name not in excluded]
    if not kept:
        raise SelectionError(
            f"excluding {', '.join(patterns)} removes every selected host "
            f"({fold(host.name for host in hosts)})",
            source="-x",
        )
    return kept


def _resolve(inventory: Inventory, text: str, option: str) -> list[str]:
    """Host names for a -H or -x pattern list: names, globs, ranges and ``@group``."""
    items = split_patterns(text)
    if not items:
        raise SelectionError("empty host pattern", source=option)
    names = list(inventory.hosts)
    found: list[str] = []
    for item in items:
        if item.startswith("@"):
            found += _group(inventory, item[1:], option)
            continue
        try:
            matched = match(item, names)
        except SelectionError as exc:
            raise SelectionError(exc.message, source=option) from None
        if matched.unmatched:
            raise SelectionError(_unknown_hosts(matched.unmatched, names), source=option)
        found += matched.names
    return found


def _group(inventory: Inventory, name: str, option: str) -> tuple[str, ...]:
    members = inventory.groups.get(name)
    if members is None:
        known = ", ".join(inventory.groups) or "none: the inventory defines no groups"
        raise SelectionError(f"unknown group {name!r} (known groups: {known})", source=option)
    return members


def _unknown_hosts(unmatched: list[str], names: list[str]) -> str:
    plain = [term for term in unmatched if not is_glob(term)]
    if len(plain) == 1:
        what = f"unknown host {plain[0]!r}"
    elif plain:
        what = f"unknown hosts {fold(plain)}"
    else:
        what = f"pattern {unmatched[0]!r} matches no host"
    return f"{what} (inventory has {fold(names)})"
