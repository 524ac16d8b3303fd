"""``bastion jobs``: durable jobs left on hosts (running, or finished but never collected)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.cli.options import (
    AcceptNewOption,
    AllOption,
    ConnectTimeoutOption,
    ExcludeOption,
    ForksOption,
    GroupOption,
    HostsOption,
    InventoryOption,
    SelectorOption,
    inventory_of,
    selection_from,
)
from bastion.errors import UsageError

if TYPE_CHECKING:
    from bastion.cli.fanout import Prologue


def jobs_command(
    inventory: InventoryOption = None,
    all_hosts: AllOption = False,
    group: GroupOption = None,
    hosts: HostsOption = None,
    selector: SelectorOption = None,
    exclude: ExcludeOption = None,
    clean: Annotated[
        bool,
        typer.Option(
            "--clean",
            help="Remove finished jobs whose output was shown (--show); running jobs and "
            "unseen output stay.",
        ),
    ] = False,
    unseen_too: Annotated[
        bool,
        typer.Option("--unseen-too", help="With --clean: also remove finished jobs never shown."),
    ] = False,
    show: Annotated[
        str | None,
        typer.Option(
            "--show",
            metavar="JOB",
            help="Print a job's output so far (host: line, as run prints it) and its exit "
            "status; the job is marked seen.",
            show_default=False,
        ),
    ] = None,
    forks: ForksOption = 64,
    connect_timeout: ConnectTimeoutOption = None,
    accept_new: AcceptNewOption = False,
) -> None:
    """List the durable jobs left on the selected hosts (`run --durable` collects its own).

    Exit status: 0 every host answered; 3 some host was unreachable; 2 bad usage or input;
    with --show, as for run: the job's own exit status decides (1 when it failed or runs).
    """
    # Imported here: a help page needs none of them.
    from bastion.cli.fanout import prologue
    from bastion.durable import script
    from bastion.durable.listing import parse_listing
    from bastion.executor import Task, run
    from bastion.models import Event, Status
    from bastion.outcome import exit_code
    from bastion.render.summary import render_summary
    from bastion.render.visible import visible

    start = prologue(
        inventory_of(inventory),
        selection_from(all_hosts, group, hosts, selector, exclude),
        forks=forks,
        connect_timeout=connect_timeout,
        accept_new=accept_new,
    )
    assert start is not None
    targets = start.targets
    if show is not None:
        raise typer.Exit(_show(start, show))
    if unseen_too and not clean:
        raise UsageError("--unseen-too goes with --clean", source="--unseen-too")
    command = script.clean_finished(unseen_too=unseen_too) if clean else script.list_jobs()

    def ignore(event: Event) -> None:
        pass

    options = start.run_options()
    started = time.monotonic()
    results = run([Task(host, command) for host in targets], options, ignore)
    width = max(len(host.name) for host in targets)
    for result in results:
        if result.status is not Status.OK:
            continue
        if clean:
            for line in result.stdout.split("\n"):
                what, _, job = line.partition(" ")
                if what in ("removed", "kept") and job:
                    note = (
                        "  (never shown: --show it, or --clean --unseen-too)"
                        if what == "kept"
                        else ""
                    )
                    typer.echo(visible(f"{result.host:<{width}}  {what}  {job}{note}"))
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


def _show(start: Prologue, job: str) -> int:
    """``--show JOB``: the job's output streamed as ``bastion run`` streams a command's."""
    from bastion.cli.driver import Fanout, drive
    from bastion.cli.options import OutputMode
    from bastion.durable import script
    from bastion.executor import command_work

    try:
        command = script.show(job)
    except ValueError as exc:
        raise UsageError(str(exc), source="--show") from None
    options = start.run_options()
    work = command_work(dict.fromkeys((host.name for host in start.targets), command), options)
    return drive(
        Fanout(
            targets=start.targets,
            work=work,
            options=options,
            output=OutputMode.TEXT,
            context=start.context(f"jobs --show {job}", {}),
            notes=start.notes,
        )
    )
