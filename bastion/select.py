"""Which hosts a command runs on: ``--all``, ``-g``, ``-H``, ``-l`` and ``-x``.

The targets are the union of ``--all``, ``-g`` groups and ``-H`` patterns (every host when
only ``-l`` is given), then filtered by the ``-l`` selector, minus the ``-x`` patterns. An
unknown host or group, or a selection that ends up empty, is an error naming the option to
fix, never a silent no-op.
"""

from __future__ import annotations

import random
import shlex
from dataclasses import dataclass

from bastion.adhoc import ad_hoc_hosts, looks_ad_hoc
from bastion.errors import SelectionError
from bastion.hostset import combine, fold, is_glob, match, split_operations
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
    pick: int | None = None
    """Keep this many hosts, chosen at random (clush --pick), after -l and -x."""

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
        if self.pick is not None:
            options.append(f"--pick {self.pick}")
        return " ".join(options)


def select_hosts(inventory: Inventory, selection: Selection) -> list[Host]:
    """The selected hosts, in inventory order, then ad-hoc hosts in the order given.

    Raises `SelectionError` if none is selected or a name is unknown.
    """
    if selection.is_empty():
        raise SelectionError(
            "no hosts chosen: give --all, -g GROUP, -H PATTERN or -l SELECTOR "
            f"(inventory has {fold(inventory.hosts)})"
            if inventory.missing is None
            else inventory.missing
        )
    hosts = _targets(inventory, selection)
    if selection.selector is not None:
        hosts = _filter(hosts, selection.selector)
    if selection.exclude:
        hosts = _exclude(inventory, hosts, selection.exclude)
    if selection.pick is not None and selection.pick < len(hosts):
        kept = set(random.sample(range(len(hosts)), selection.pick))
        hosts = [host for index, host in enumerate(hosts) if index in kept]
    return hosts


def _targets(inventory: Inventory, selection: Selection) -> list[Host]:
    """The union of --all, -g and -H, before -l and -x."""
    only_selector = not (selection.all or selection.groups or selection.hosts)
    if (selection.all or only_selector or selection.groups) and inventory.missing is not None:
        option = "--all" if selection.all else "-g" if selection.groups else "-l"
        raise SelectionError(inventory.missing, source=option)
    if selection.all or only_selector:
        return list(inventory.hosts.values())
    chosen: dict[str, None] = {}
    for text in selection.groups:
        chosen.update(_group_set(inventory, text))
    outside: dict[str, Host] = {}
    for text in selection.hosts:
        names, extra = _resolve(inventory, text, "-H")
        chosen.update(dict.fromkeys(names))
        for host in extra:
            outside.setdefault(host.name, host)
    if not chosen and not outside:
        # A -H name or glob that matches nothing has already failed: only empty groups get here.
        raise SelectionError(
            f"the chosen groups have no hosts ({selection.describe()})",
            source="-g" if selection.groups else "-H",
        )
    known = [host for name, host in inventory.hosts.items() if name in chosen]
    return known + [host for name, host in outside.items() if name not in inventory.hosts]


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
        names, extra = _resolve(inventory, text, "-x")
        excluded.update(names)
        excluded.update(host.name for host in extra)
    kept = [host for host in hosts if host.name not in excluded]
    if not kept:
        raise SelectionError(
            f"excluding {', '.join(patterns)} removes every selected host "
            f"({fold(host.name for host in hosts)})",
            source="-x",
        )
    return kept


def _resolve(inventory: Inventory, text: str, option: str) -> tuple[list[str], list[Host]]:
    """Inventory names and ad-hoc hosts for a -H or -x host set.

    Items are names, globs, ranges and ``@group``, combined left to right with ClusterShell's
    operators (``,`` union, ``&`` intersection, ``!`` difference, ``^`` symmetric
    difference). An item that matches no inventory host and reads as an outside host
    (``user@host``, ``host:port``, a dotted name or an address; any item when there is no
    inventory) is an ad-hoc host, as pdsh and clush take ``-w``.
    """
    terms = _terms(text, option)
    names = list(inventory.hosts)
    result: dict[str, None] = {}
    outside: dict[str, Host] = {}
    for operator, item in terms:
        if item.startswith("@"):
            current = _group_set(inventory, item[1:], option)
        else:
            current = _item(inventory, names, item, option, outside)
        result = combine(result, operator, current)
    return (
        [name for name in result if name in inventory.hosts],
        [outside[name] for name in result if name in outside and name not in inventory.hosts],
    )


def _item(
    inventory: Inventory, names: list[str], item: str, option: str, outside: dict[str, Host]
) -> dict[str, None]:
    """The names one item stands for; ad-hoc hosts it creates are added to ``outside``."""
    try:
        matched = match(item, names)
    except SelectionError as exc:
        raise SelectionError(exc.message, source=option) from None
    if matched.unmatched and not matched.names and _is_outside(inventory, item):
        hosts = ad_hoc_hosts([item], source=option)
        for host in hosts:
            outside.setdefault(host.name, host)
        return dict.fromkeys(host.name for host in hosts)
    if matched.unmatched:
        raise SelectionError(
            _unknown_hosts(matched.unmatched, names, hint=option == "-H"), source=option
        )
    return dict.fromkeys(matched.names)


def _group_set(inventory: Inventory, text: str, option: str = "-g") -> dict[str, None]:
    """The hosts of a group expression: ``masters,workers``, ``workers&gpu``, ``all!spot``."""
    result: dict[str, None] = {}
    for operator, name in _terms(text, option, what="group name"):
        result = combine(
            result, operator, dict.fromkeys(_group(inventory, name.removeprefix("@"), option))
        )
    return result


def _terms(text: str, option: str, what: str = "host pattern") -> list[tuple[str, str]]:
    try:
        terms = split_operations(text)
    except SelectionError as exc:
        raise SelectionError(exc.message, source=option) from None
    if not terms:
        raise SelectionError(f"empty {what}", source=option)
    return terms


def _is_outside(inventory: Inventory, item: str) -> bool:
    return not is_glob(item) and (inventory.missing is not None or looks_ad_hoc(item))


def _group(inventory: Inventory, name: str, option: str) -> tuple[str, ...]:
    members = inventory.groups.get(name)
    if members is None:
        known = ", ".join(inventory.groups) or "none: the inventory defines no groups"
        raise SelectionError(f"unknown group {name!r} (known groups: {known})", source=option)
    return members


def _unknown_hosts(unmatched: list[str], names: list[str], *, hint: bool = False) -> str:
    plain = [term for term in unmatched if not is_glob(term)]
    if len(plain) == 1:
        what = f"unknown host {plain[0]!r}"
    elif plain:
        what = f"unknown hosts {fold(plain)}"
    else:
        what = f"pattern {unmatched[0]!r} matches no host"
    outside = (
        "; a host outside it is written user@host, host:port or host.domain"
        if hint and plain
        else ""
    )
    return f"{what} (inventory has {fold(names)}{outside})"
