"""`bastion lab up|down|status`: the CLI face of `bastion.lab.manager` (which does the work).

Exit codes: 0 done (status: every node up); 3 (status) some node down; 1 (status) no lab;
failures raise `BastionError`s, which the main CLI turns into a message and their exit code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from bastion.lab import DEFAULT_NODES, DEFAULT_SUBNET

if TYPE_CHECKING:
    from bastion.lab.manager import LabNodeStatus, LabReport

EXIT_SOME_DOWN = 3
EXIT_NO_LAB = 1

lab_app = typer.Typer(
    help="A local lab of real OpenSSH nodes (node1..nodeN on 127.0.1.N) to try bastion safely.",
    no_args_is_help=True,
)


@lab_app.command("up")
def up_command(
    nodes: Annotated[
        int, typer.Option("--nodes", "-n", help="How many nodes the lab has (1-254).")
    ] = DEFAULT_NODES,
    subnet: Annotated[
        str,
        typer.Option(
            envvar="BASTION_LAB_SUBNET",
            help="First three octets of the nodes' addresses (inside 127.0.0.0/8), as root.",
        ),
    ] = DEFAULT_SUBNET,
) -> None:
    """Start the lab's nodes; those already up are left alone, extra ones are stopped."""
    from bastion.lab import manager
    from bastion.lab.state import LabMode

    report = manager.up(nodes, subnet=subnet)
    for node in report.removed:
        typer.echo(f"{node.name:<8} removed     (not in --nodes {nodes}; was {node.action})")
    for node in report:
        typer.echo(f"{node.name:<8} {node.action or '':<11} {_where(node)}  pid {node.pid}")
    if report and report[0].mode is LabMode.USER:
        typer.echo(
            "user mode (not root): nodes are plain sshd processes on 127.0.0.1 sharing this "
            "host's hostname and files; see docs/lab.md"
        )
    typer.echo(f"lab up: {len(report)} nodes; try: bastion run -i lab --all hostname")


@lab_app.command("down")
def down_command() -> None:
    """Stop every node and session the lab started; keys and known_hosts are kept."""
    from bastion.lab import manager

    report = manager.down()
    if not report:
        typer.echo("no lab running")
        return
    for node in report:
        typer.echo(f"{node.name:<8} {node.action}")
    typer.echo(f"lab down; keys kept in {report.lab_dir}")


@lab_app.command("fault")
def fault_command(
    node: Annotated[str, typer.Argument(help="The lab node, e.g. node3.", show_default=False)],
    loss: Annotated[
        float | None,
        typer.Option("--loss", help="Drop this percentage of packets, each way.", min=0.001),
    ] = None,
    blackhole: Annotated[
        bool, typer.Option("--blackhole", help="Drop every packet: connections hang.")
    ] = False,
    reset: Annotated[
        bool, typer.Option("--reset", help="Answer TCP with resets: sessions die at once.")
    ] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the node's fault.")] = False,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Only this TCP port (e.g. 22: SSH, not mosh's UDP).", min=1),
    ] = None,
) -> None:
    """Inject a network fault on a node's address with iptables (root; replaces its fault)."""
    from bastion.errors import UsageError
    from bastion.lab import manager
    from bastion.lab.faults import Fault, FaultKind

    chosen = [
        name
        for name, on in (
            ("--loss", loss is not None),
            ("--blackhole", blackhole),
            ("--reset", reset),
            ("--clear", clear),
        )
        if on
    ]
    if len(chosen) != 1:
        raise UsageError("give exactly one of --loss PCT, --blackhole, --reset, --clear")
    if clear:
        if port is not None:
            raise UsageError("--clear removes the whole fault; drop --port")
        address = manager.inject_fault(node, None)
        typer.echo(f"{node:<8} cleared     {address}")
        return
    if loss is not None:
        fault = Fault(FaultKind.LOSS, loss_percent=loss, port=port)
    else:
        fault = Fault(FaultKind.BLACKHOLE if blackhole else FaultKind.RESET, port=port)
    address = manager.inject_fault(node, fault)
    typer.echo(f"{node:<8} {fault.kind:<11} {address}: {fault.describe()}")


@lab_app.command("status")
def status_command() -> None:
    """A table of the lab's nodes; exit 0 when all are up, 3 when some are down, 1 without a lab."""
    from bastion.lab import manager

    report = manager.status()
    if not report:
        typer.echo("no lab (run `bastion lab up`)", err=True)
        raise typer.Exit(EXIT_NO_LAB)
    _print_status_table(report)
    if not report.all_up:
        raise typer.Exit(EXIT_SOME_DOWN)


def _print_status_table(report: LabReport) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("NODE", "ADDRESS", "PID", "STATE"):
        table.add_column(column)
    for node in report:
        state = "[green]up[/]" if node.up else "[red]down[/]"
        table.add_row(node.name, _where(node), str(node.pid or "-"), state)
    console = Console()
    console.print(table)
    up_count = sum(node.up for node in report)
    console.print(f"{up_count}/{len(report)} up; inventory: {report.inventory or '-'}")


def _where(node: LabNodeStatus) -> str:
    return f"{node.address}:{node.port}"
