"""``bastion inventory list``: the hosts an inventory defines, or a selection of them."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from bastion.cli.options import (
    AllOption,
    ExcludeOption,
    GroupOption,
    HostFileOption,
    HostsOption,
    InventoryOption,
    SelectorOption,
    inventory_of,
    selection_from,
)

inventory_app = typer.Typer(help="Inspect the inventory.", no_args_is_help=True)


@inventory_app.callback()
def inventory_group(ctx: typer.Context, inventory: InventoryOption = None) -> None:
    """Inspect the inventory (``-i`` may come before or after the subcommand)."""
    ctx.obj = inventory


@inventory_app.command("list")
def list_hosts(
    ctx: typer.Context,
    inventory: InventoryOption = None,
    all_hosts: AllOption = False,
    group: GroupOption = None,
    hosts: HostsOption = None,
    host_files: HostFileOption = None,
    selector: SelectorOption = None,
    exclude: ExcludeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per host.")] = False,
) -> None:
    """List hosts with address, user, labels and groups (every host unless a selection is given)."""
    from bastion.select import select_hosts

    parent = ctx.parent.obj if ctx.parent is not None else None
    loaded = inventory_of(inventory or (parent if isinstance(parent, str) else None))
    selection = selection_from(all_hosts, group, hosts, selector, exclude, host_files)
    if loaded.missing is not None and selection.is_empty():
        from bastion.errors import InventoryError

        raise InventoryError(loaded.missing)
    chosen = (
        list(loaded.hosts.values()) if selection.is_empty() else select_hosts(loaded, selection)
    )
    if as_json:
        for host in chosen:
            record = {
                "host": host.name,
                "address": host.address,
                "port": host.port,
                "user": host.user,
                "labels": dict(host.labels),
                "groups": list(host.groups),
                "jump": host.jump,
                "transport": host.transport,
            }
            sys.stdout.write(json.dumps(record) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{loaded.path} ({len(chosen)} of {len(loaded.hosts)} hosts)")
    for column in ("host", "address", "user", "labels", "groups"):
        table.add_column(column)
    for host in chosen:
        address = host.address if host.port == 22 else f"{host.address}:{host.port}"
        if host.jump:
            address += f" via {host.jump}"
        labels = ",".join(f"{k}={v}" for k, v in host.labels.items())
        table.add_row(host.name, address, host.user or "", labels, ",".join(host.groups))
    Console().print(table)
