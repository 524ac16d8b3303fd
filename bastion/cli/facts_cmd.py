"""``bastion facts``: what each selected host is, as a table or JSON Lines (ansible -m setup)."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from bastion.cli.options import (
    AcceptNewOption,
    AllOption,
    ConnectTimeoutOption,
    ExcludeOption,
    ForksOption,
    GroupOption,
    HostFileOption,
    HostsOption,
    InventoryOption,
    PickOption,
    SelectorOption,
    TextOrJson,
    TimeoutOption,
    inventory_of,
    selection_from,
)


def facts_command(
    inventory: InventoryOption = None,
    all_hosts: AllOption = False,
    group: GroupOption = None,
    hosts: HostsOption = None,
    host_files: HostFileOption = None,
    selector: SelectorOption = None,
    exclude: ExcludeOption = None,
    pick: PickOption = None,
    output: Annotated[
        TextOrJson,
        typer.Option("--output", "-o", help="text (a table) or json (one object per host)."),
    ] = TextOrJson.TEXT,
    forks: ForksOption = 64,
    timeout: TimeoutOption = None,
    connect_timeout: ConnectTimeoutOption = None,
    accept_new: AcceptNewOption = False,
) -> None:
    """Show each host's OS, kernel, CPUs, memory, disks, addresses, uptime, runtime, kubelet.

    Read-only, as the login user; one round trip per host. Exit status: 0 every host
    answered; 1 a probe failed; 3 some host was unreachable; 2 bad usage or input.
    """
    from bastion.cli.fanout import prologue
    from bastion.facts.collect import gather_facts
    from bastion.outcome import exit_code
    from bastion.render.facts_table import render_facts_table
    from bastion.render.summary import render_summary

    start = prologue(
        inventory_of(inventory),
        selection_from(all_hosts, group, hosts, selector, exclude, host_files, pick),
        forks=forks,
        connect_timeout=connect_timeout,
        accept_new=accept_new,
    )
    assert start is not None
    targets, options = start.targets, start.run_options(timeout=timeout)
    started = time.monotonic()
    gathered = gather_facts(targets, options)
    if output is TextOrJson.JSON:
        for entry in gathered:
            record = {
                "schema": 1,
                "host": entry.result.host,
                "address": entry.result.address,
                "status": entry.result.status.value,
                "error": entry.result.error,
                "facts": None if entry.facts is None else entry.facts.as_json(),
            }
            sys.stdout.write(json.dumps(record) + "\n")
    else:
        sys.stdout.write(render_facts_table(gathered))
    results = [entry.result for entry in gathered]
    sys.stderr.write(render_summary(results, time.monotonic() - started))
    raise typer.Exit(exit_code(results))
