"""The fan-out prologue: what every command that acts on many hosts does before the first one.

run, copy, fetch, play, cluster, audit, access apply and jobs all: load the inventory, choose
the targets (``--retry-failed`` included, jump chains checked), fit ``--forks`` to the
open-files limit (saying so when it had to be lowered), and build the connection options from
the shared flags. Doing it in one place keeps the commands from drifting apart: before, only
run and play fitted their forks, and audit declared its own ``--forks``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bastion.cli.options import connect_options, retry_selection

if TYPE_CHECKING:
    from bastion.executor import RunOptions
    from bastion.inventory import Inventory
    from bastion.models import Host
    from bastion.runrecord import RunContext
    from bastion.select import Selection
    from bastion.transport.base import ConnectOptions


@dataclass(frozen=True, slots=True)
class Prologue:
    """Where a fan-out goes and how it connects, decided before any host is contacted."""

    inventory: Inventory
    targets: list[Host]
    selection: Selection | None
    """What chose the targets; None when a playbook chooses (play, cluster)."""
    forks: int
    """``--forks`` fitted to the open-files limit."""
    connect: ConnectOptions
    notes: tuple[str, ...] = ()
    """Lines for the end of the summary (fewer hosts at once than asked)."""

    def run_options(self, **fields: Any) -> RunOptions:
        """The executor's options: the fitted forks and the connection options, plus ``fields``."""
        from bastion.executor import RunOptions

        return RunOptions(forks=self.forks, connect=self.connect, **fields)

    def context(
        self, command: str, options: dict[str, object], selection: str | None = None
    ) -> RunContext:
        """What was asked for, as the run record and the history keep it (``selection``: how
        to describe the hosts when a playbook chose them)."""
        from datetime import UTC, datetime

        from bastion.runrecord import RunContext

        if selection is None:
            selection = self.selection.describe() if self.selection else "(the playbook's hosts)"
        return RunContext(
            command=command,
            selection=selection,
            inventory_path=str(self.inventory.path),
            inventory_digest=self.inventory.digest,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            options=options,
        )


def prologue(
    inventory: Inventory,
    selection: Selection | None,
    *,
    forks: int = 64,
    per_host: int = 1,
    connect_timeout: float | None = None,
    retries: int | None = None,
    accept_new: bool = False,
    retry_failed: Path | None = None,
    default_all: bool = False,
) -> Prologue | None:
    """Targets, fitted forks and connection options; None when ``--retry-failed`` has nothing.

    ``selection`` None: a playbook chooses its hosts later, so the fit is for every inventory
    host. ``default_all``: no selection means every host (audit, access apply). ``per_host``:
    descriptors each running host holds (3 with ``--out-dir``).
    """
    from bastion.jumps import check_jump_chains
    from bastion.limits import fit_forks_to_file_limit
    from bastion.select import select_hosts

    if selection is None:
        targets = list(inventory.hosts.values())
    else:
        if retry_failed is not None:
            retry = retry_selection(selection, retry_failed)
            if retry is None:
                sys.stderr.write(
                    f"bastion: nothing to retry: every host succeeded in {retry_failed}\n"
                )
                return None
            selection = retry
        elif default_all and selection.is_empty():
            from dataclasses import replace

            selection = replace(selection, all=True)
        targets = select_hosts(inventory, selection)
        check_jump_chains(targets, inventory.hosts)
    fit = fit_forks_to_file_limit(forks, len(targets), per_host=per_host)
    shortfall = fit.shortfall_message()
    if shortfall:
        sys.stderr.write(f"bastion: warning: {shortfall}\n")
    return Prologue(
        inventory=inventory,
        targets=targets,
        selection=selection,
        forks=fit.forks,
        connect=connect_options(inventory, connect_timeout, retries, accept_new),
        notes=(fit.summary_note(),) if shortfall else (),
    )
