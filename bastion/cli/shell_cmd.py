"""``bastion shell HOST [--mosh]``: an interactive session to one inventory host."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import typer

from bastion.cli.options import InventoryOption, inventory_of
from bastion.errors import SelectionError
from bastion.hostset import fold

MOSH_STARTUP_FAILED = "could not start mosh"


def shell_command(
    host: Annotated[str, typer.Argument(help="The inventory host.", show_default=False)],
    inventory: InventoryOption = None,
    mosh: Annotated[
        bool,
        typer.Option(
            "--mosh",
            help="Through mosh (survives a flaky link); falls back to ssh when mosh cannot run.",
        ),
    ] = False,
) -> None:
    """Open an interactive shell on HOST with the inventory's user, port, key, jump and known_hosts.

    Exit status: the session's (ssh's, or mosh's); 2 for an unknown host.
    """
    # Imported here: a help page needs none of them.
    from bastion.shell import ssh_argv
    from bastion.transport.mosh_transport import mosh_argv, mosh_missing

    loaded = inventory_of(inventory)
    target = loaded.hosts.get(host)
    if target is None:
        raise SelectionError(
            f"unknown host {host!r} (inventory has {fold(list(loaded.hosts))})", source="HOST"
        )
    if mosh or target.transport == "mosh":
        why_not = mosh_missing()
        if why_not is None and target.jump:
            why_not = f"{host} is behind jump host {target.jump}, which mosh cannot pass"
        if why_not is None:
            code = subprocess.call(mosh_argv(target, []))
            if code == 0:
                raise typer.Exit(0)
            why_not = f"mosh exited with status {code}"
        sys.stderr.write(f"bastion: {MOSH_STARTUP_FAILED} ({why_not}); using ssh\n")
    raise typer.Exit(subprocess.call(ssh_argv(target, loaded.hosts)))
