"""``bastion jobs``: durable jobs left on hosts (running, or finished but never collected)."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from bastion.cli.options import (
    AllOption,
    ExcludeOption,
    GroupOption,
    HostsOption,
    InventoryOption,
    SelectorOption,
    connect_options,
    inventory_of,
    selection_from,
)


def jobs_command(
    inventory: InventoryOption = None,
    all_hosts: AllOption = False,
    group: GroupOption = None,
    hosts: HostsOption = None,
    selector: SelectorOption = None,
    exclude: ExcludeOption = None,
    clean: Annotated[
        bool,
        typer.Option("--clean", help="Remove finished jobs' directories; running jobs stay."),
    ] = False,
) -> None:
    """List the durable jobs left on the selected hosts (`run --durable` collects its own).

    Exit status: 0 every host answered; 3 some host was unreachable; 2 bad usage or input.
    """
    # Imported here: a help page needs none of them.
    from bastion.durable import script
    from bastion.durable.listing import parse_listing
    from bastion.executor import RunOptions, Task, run
    from bastion.models import Event, Status
    from bastion.outcome import exit_code
    from bastion.render.summary import render_summary
    from bastion.render.visible import visible
    from bastion.select import select_hosts

    loaded = inventory_of(inventory)
    targets = select_hosts(loaded, selection_from(all_hosts, group, hosts, selector, exclude))
    command = script.clean_finished() if clean else script.list_jobs()

    def ignore(event: Event) -> None:
        pass

    options = RunOptions(connect=connect_options(loaded))
    started = time.monotonic()
    results = run([Task(host, command) for host in targets], options, ignore)
    width = max(len(host.name) for host in targets)
    for result in results:
        if result.status is not Status.OK:
            continue
        if clean:
            for job in result.stdout.split():
                typer.echo(visible(f"{result.host:<{width}}  removed  {job}"))
            continue
        for entry in parse_listing(result.stdout):
            state = "running" if entry.running else f"done rc={entry.exit_status}"
            typer.echo(
                visible(  # the job files are the node's: shown, never interpreted
                    f"{result.host:<{width}}  {entry.job}  {state}  {entry.started_at or '-'}  "
                    f"{entry.command}"
                )
            )
    sys.stderr.write(render_summary(results, time.monotonic() - started))
    raise typer.Exit(exit_code(results))
