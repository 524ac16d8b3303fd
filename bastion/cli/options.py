"""Options shared by several commands; each global option also reads ``BASTION_<OPTION>``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # loaded when used, so `bastion --help` does not parse YAML's grammar
    from bastion.inventory import Inventory
    from bastion.select import Selection

InventoryOption = Annotated[
    str | None,
    typer.Option(
        "--inventory",
        "-i",
        envvar="BASTION_INVENTORY",
        help="Inventory file, or a name: 'lab', or NAME for inventories/NAME.yaml. "
        "Default: ./inventory.yaml.",
        show_default=False,
    ),
]
AllOption = Annotated[bool, typer.Option("--all", "-a", help="Select every host.")]
GroupOption = Annotated[
    list[str] | None,
    typer.Option("--group", "-g", help="Select a group (repeatable).", show_default=False),
]
HostsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--hosts",
        "-H",
        help="Select hosts: names, globs, ranges like node[1-3], commas (repeatable).",
        show_default=False,
    ),
]
SelectorOption = Annotated[
    str | None,
    typer.Option(
        "--selector",
        "-l",
        help="Filter by labels, kubectl grammar: k=v,k!=v,k,!k,'k in (a,b)'.",
        show_default=False,
    ),
]
ExcludeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude",
        "-x",
        help="Remove hosts (same patterns as -H; repeatable).",
        show_default=False,
    ),
]


def selection_from(
    all_hosts: bool,
    groups: list[str] | None,
    hosts: list[str] | None,
    selector: str | None,
    exclude: list[str] | None,
) -> Selection:
    """The selection the options describe."""
    from bastion.select import Selection

    return Selection(
        all=all_hosts,
        groups=tuple(groups or ()),
        hosts=tuple(hosts or ()),
        selector=selector,
        exclude=tuple(exclude or ()),
    )


def inventory_of(name_or_path: str | None) -> Inventory:
    """Load the inventory an ``-i`` option names."""
    from bastion.inventory import load_inventory, resolve_inventory_path

    return load_inventory(resolve_inventory_path(name_or_path))
