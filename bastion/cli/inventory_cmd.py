"""``bastion inventory list``: the hosts an inventory defines, or a selection of them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli.options import (
    AllOption,
    ExcludeOption,
    GroupOption,
    HostFileOption,
    HostsOption,
    InventoryOption,
    PickOption,
    SelectorOption,
    inventory_of,
    selection_from,
)

inventory_app = typer.Typer(help="Inspect the inventory.", no_args_is_help=True)


@inventory_app.callback()
def inventory_group(ctx: typer.Context, inventory: InventoryOption = None) -> None:
    """Inspect the inventory (``-i`` may come before or after the subcommand)."""
    ctx.obj = inventory


@inventory_app.command("convert")
def convert(
    ctx: typer.Context,
    inventory: InventoryOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-O", help="Write the YAML here (default: standard output)."),
    ] = None,
) -> None:
    """Write an inventory (Ansible INI/YAML, host list, ClusterShell) in bastion's YAML."""
    from bastion.errors import UsageError
    from bastion.formats.write_yaml import inventory_yaml
    from bastion.inventory import load_inventory_as, resolve_inventory_path
    from bastion.located_yaml import plain
    from bastion.private_files import write_private

    parent = ctx.parent.obj if ctx.parent is not None else None
    path = resolve_inventory_path(inventory or (parent if isinstance(parent, str) else None))
    kind, loaded, root = load_inventory_as(path)
    header = (
        f"bastion inventory, converted from {path} ({kind}, {len(loaded.hosts)} hosts)\n"
        "by `bastion inventory convert`; see docs/inventory.md"
    )
    text = inventory_yaml(plain(root), header)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        write_private(output, text)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}", source="-O") from None


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
    pick: PickOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per host.")] = False,
    names_only: Annotated[
        bool, typer.Option("--names", help="Only the host names, one per line.")
    ] = False,
) -> None:
    """List hosts with address, user, labels and groups (every host unless a selection is given)."""
    from bastion.select import select_hosts

    parent = ctx.parent.obj if ctx.parent is not None else None
    loaded = inventory_of(inventory or (parent if isinstance(parent, str) else None))
    selection = selection_from(all_hosts, group, hosts, selector, exclude, host_files, pick)
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
    if names_only:
        sys.stdout.write("".join(f"{host.name}\n" for host in chosen))
        return
    rows = [
        [
            host.name,
            (host.address if host.port == 22 else f"{host.address}:{host.port}")
            + (f" via {host.jump}" if host.jump else ""),
            host.user or "",
            ",".join(f"{k}={v}" for k, v in host.labels.items()),
            ",".join(host.groups),
        ]
        for host in chosen
    ]
    if not sys.stdout.isatty():
        # Into a pipe or a file: whole values, aligned columns, as kubectl get prints them.
        table = [["HOST", "ADDRESS", "USER", "LABELS", "GROUPS"], *rows]
        widths = [max(len(row[i]) for row in table) for i in range(5)]
        for row in table:
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            sys.stdout.write(line.rstrip() + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table_view = Table(title=f"{loaded.path} ({len(chosen)} of {len(loaded.hosts)} hosts)")
    for column in ("host", "address", "user", "labels", "groups"):
        table_view.add_column(column, overflow="fold")
    for row in rows:
        table_view.add_row(*row)
    Console().print(table_view)
