"""`bastion agent start|stop|status`: the warm connection agent (docs/agent.md).

Exit codes: 0 done (status: the agent runs); 1 (status) no agent running; failures raise
`BastionError`s, which the main CLI turns into a message and their exit code.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from bastion.agent import lifecycle
from bastion.cli.options import TextOrJson

EXIT_NOT_RUNNING = 1

agent_app = typer.Typer(
    help="A per-user background process that keeps SSH connections open between runs.",
    no_args_is_help=True,
)


@agent_app.command("start")
def start_command(
    persist: Annotated[
        str,
        typer.Option("--persist", help="Exit after this long unused (like 90s, 10m, 1h)."),
    ] = "10m",
    idle: Annotated[
        str | None,
        typer.Option(
            "--idle",
            help="Close a connection unused for this long (default: --persist).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the agent (if it is not running); runs then reuse its connections."""
    persist_s = lifecycle.parse_duration(persist, "--persist")
    idle_s = lifecycle.parse_duration(idle, "--idle") if idle is not None else None
    before = lifecycle.status()
    running = lifecycle.start(persist_s, idle_s)
    verb = "already running" if before is not None else "started"
    typer.echo(
        f"bastion agent {verb}: pid {running['pid']}, socket {running['socket']}, "
        f"exits after {_duration(float(running['persist_s']))} unused"
    )


@agent_app.command("stop")
def stop_command() -> None:
    """Stop the agent; its connections are closed."""
    pid = lifecycle.stop()
    typer.echo("no bastion agent running" if pid is None else f"bastion agent stopped (pid {pid})")


@agent_app.command("status")
def status_command(
    output: Annotated[
        TextOrJson, typer.Option("--output", "-o", metavar="FORMAT", help="text or json.")
    ] = TextOrJson.TEXT,
) -> None:
    """The agent's pid, uptime, when it exits, and its connections per host."""
    running = lifecycle.status()
    if output is TextOrJson.JSON:
        typer.echo(json.dumps({"running": running is not None, **(running or {})}, indent=2))
    elif running is None:
        typer.echo("no bastion agent running")
    else:
        _print_status(running)
    if running is None:
        raise typer.Exit(EXIT_NOT_RUNNING)


def _print_status(status: dict[str, Any]) -> None:
    connections = status["connections"]
    typer.echo(
        f"bastion agent: pid {status['pid']}, up {_duration(float(status['uptime_s']))}, "
        f"exits after {_duration(float(status['exits_in_s']))} more unused; "
        f"connections close after {_duration(float(status['idle_s']))} idle"
    )
    typer.echo(f"socket {status['socket']}, log {status['log']}")
    typer.echo(f"{len(connections)} connections, {status['requests']} commands run")
    if connections:
        typer.echo(f"  {'HOST':<16} {'ADDRESS':<22} {'AGE':>7} {'IDLE':>7} {'USES':>5}  POLICY")
    for c in connections:
        user = f"{c['user']}@" if c["user"] else ""
        policy = "accept-new" if c["accept_new"] else "strict"
        typer.echo(
            f"  {c['host']:<16} {user + c['address'] + ':' + str(c['port']):<22} "
            f"{_duration(c['age_s']):>7} {_duration(c['idle_s']):>7} {c['uses']:>5}  {policy}"
        )


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
