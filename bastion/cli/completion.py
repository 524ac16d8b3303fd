"""Shell completion: ``bastion completion bash|zsh|fish`` prints the script to source.

Commands and options complete from the same declarations as ``--help``; ``-H``/``-x``
complete inventory host names (and ``@group``), ``-g`` group names, read from the inventory
that ``-i`` (or ``$BASTION_INVENTORY``, ``./inventory.yaml``) names, as ``kubectl`` completes
resource names. The protocol is click's (``_BASTION_COMPLETE=complete_bash`` and friends),
through typer's shell classes; completing never prints an error or raises.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

COMPLETE_VAR = "_BASTION_COMPLETE"


class Shell(StrEnum):
    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"


def completing() -> bool:
    """Whether this process was started by a shell asking for completions."""
    return COMPLETE_VAR in os.environ


def install_completion_classes() -> None:
    """Register typer's bash, zsh and fish completion classes with its click."""
    from typer._completion_classes import completion_init

    completion_init()


def _inventory(ctx: Any) -> Any:
    from bastion.inventory import open_inventory

    name = ctx.params.get("inventory") if ctx is not None else None
    return open_inventory(name if isinstance(name, str) else None)


def complete_hosts(ctx: typer.Context, args: list[str], incomplete: str) -> list[str]:
    """Host names and ``@group`` names of the inventory, for ``-H`` and ``-x``."""
    try:
        inventory = _inventory(ctx)
    except Exception:
        return []
    names = [*inventory.hosts, *(f"@{group}" for group in inventory.groups)]
    return [name for name in names if name.startswith(incomplete)]


def complete_groups(ctx: typer.Context, args: list[str], incomplete: str) -> list[str]:
    """Group names of the inventory, for ``-g``."""
    try:
        inventory = _inventory(ctx)
    except Exception:
        return []
    return [name for name in inventory.groups if name.startswith(incomplete)]


def completion_command(
    shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.")],
) -> None:
    """Print the completion script for SHELL.

    bash: source <(bastion completion bash)
    zsh:  bastion completion zsh > "${fpath[1]}/_bastion"
    fish: bastion completion fish > ~/.config/fish/completions/bastion.fish
    """
    from typer._click.shell_completion import get_completion_class
    from typer.main import get_command

    from bastion.cli.app import app, register_commands

    install_completion_classes()
    register_commands([])
    cls = get_completion_class(shell.value)
    if cls is None:  # pragma: no cover (the three are registered just above)
        raise typer.Exit(2)
    script = cls(get_command(app), {}, "bastion", COMPLETE_VAR).source()
    sys.stdout.write(script if script.endswith("\n") else script + "\n")
