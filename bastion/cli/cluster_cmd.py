"""`bastion cluster bootstrap|status|backup|reset`: the shipped kubeadm playbooks, as commands.

bootstrap, backup and reset run playbooks/site.yaml, backup.yaml and reset.yaml through the
playbook engine (its Python API, not a `bastion play` subprocess); status runs one kubectl on
the control plane and draws its answer. The control plane is the first host of the
inventory's group ``masters``, else the first host labelled ``role=control-plane``.

Exit codes: as `bastion play` for bootstrap, backup and reset (0 ok, 1 a step failed, 3 a host
unreachable); status: 0 every node Ready, 1 some node not Ready or kubectl failed, 3 the
control plane unreachable; 2 bad input, and reset without --yes and without a terminal.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from bastion.cli.options import AcceptNewOption, ConnectTimeoutOption, InventoryOption
from bastion.errors import CommandFailed, UsageError

if TYPE_CHECKING:
    from bastion.inventory import Inventory
    from bastion.playbook.results import PlayEvent

EXIT_NOT_READY = 1
EXIT_UNREACHABLE = 3
PLAYBOOKS_ENV = "BASTION_PLAYBOOKS"

cluster_app = typer.Typer(
    help="A kubeadm cluster on the inventory: bootstrap, status, backup, reset.",
    no_args_is_help=True,
)

ExtraVarOption = Annotated[
    list[str] | None,
    typer.Option(
        "--extra-var",
        "-e",
        help="A playbook variable, k=v (repeatable), over the command's own.",
        show_default=False,
    ),
]


def playbooks_dir() -> Path:
    """The shipped playbooks: ``$BASTION_PLAYBOOKS``, else ``playbooks/`` beside the package."""
    override = os.environ.get(PLAYBOOKS_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent.parent / "playbooks"


@cluster_app.command("bootstrap")
def bootstrap_command(
    inventory: InventoryOption = None,
    cni: Annotated[
        str, typer.Option("--cni", help="The pod network: weave, calico or flannel.")
    ] = "weave",
    k8s_version: Annotated[
        str, typer.Option("--k8s-version", help="Kubernetes minor version (pkgs.k8s.io repo).")
    ] = "1.35",
    pod_cidr: Annotated[
        str, typer.Option("--pod-cidr", help="Pod network; must not overlap the nodes'.")
    ] = "10.244.0.0/16",
    fetch_dir: Annotated[
        Path,
        typer.Option(
            "--fetch-dir",
            help="Where the admin kubeconfig comes back: DIR/admin.conf (0600).",
            file_okay=False,
        ),
    ] = Path("out"),
    check: Annotated[
        bool, typer.Option("--check", help="Show what would run where; change nothing.")
    ] = False,
    extra_vars: ExtraVarOption = None,
    accept_new: AcceptNewOption = False,
    connect_timeout: ConnectTimeoutOption = None,
) -> None:
    """Bootstrap the cluster: playbooks/site.yaml (prerequisites, init, CNI, join, verify)."""
    from bastion.cli.options import inventory_of
    from bastion.cluster.topology import BootstrapSettings, bootstrap_vars

    inv = inventory_of(inventory)
    variables = bootstrap_vars(BootstrapSettings(cni, k8s_version, pod_cidr), inv)
    variables["fetch_dir"] = str(fetch_dir.resolve())
    _play(
        "site.yaml", inv, variables, extra_vars, check=check, accept_new=accept_new,
        connect_timeout=connect_timeout,
    )  # fmt: skip


class StatusOutput(StrEnum):
    TEXT = "text"
    JSON = "json"
    TABLE = "table"
    """The old name of ``text``, kept for one release."""


@cluster_app.command("status")
def status_command(
    inventory: InventoryOption = None,
    output: Annotated[
        StatusOutput,
        typer.Option("--output", "-o", metavar="FORMAT", help="text (a table) or json."),
    ] = StatusOutput.TEXT,
    accept_new: AcceptNewOption = False,
    connect_timeout: ConnectTimeoutOption = None,
) -> None:
    """Nodes, roles, Ready, versions and capacity, from `kubectl get nodes -o json`."""
    from bastion.cli.options import connect_options, inventory_of
    from bastion.cluster.nodes import (
        NODES_OUTPUT_CHARS,
        STATUS_COMMAND,
        NodesOutputError,
        parse_nodes,
    )
    from bastion.cluster.topology import control_plane
    from bastion.command import with_sudo
    from bastion.executor import RunOptions, Task, run
    from bastion.models import Status

    if output is StatusOutput.TABLE:
        from bastion.cli.options import warn_deprecated

        warn_deprecated("-o table", "-o text")
    inv = inventory_of(inventory)
    cp = control_plane(inv)
    options = RunOptions(
        connect=connect_options(inv, connect_timeout, accept_new=accept_new),
        keep_output_chars=NODES_OUTPUT_CHARS,
    )
    [result] = run([Task(cp, with_sudo(STATUS_COMMAND))], options, lambda event: None)
    if result.status is Status.UNREACHABLE:
        _fail(f"{cp.name}: unreachable: {result.error}", EXIT_UNREACHABLE)
    if result.status is not Status.OK or result.exit_status != 0:
        reason = result.stderr.strip().splitlines()[-1:] or [result.error or result.status.value]
        _fail(f"{cp.name}: kubectl get nodes failed: {reason[0]}", EXIT_NOT_READY)
    try:
        nodes = parse_nodes(result.stdout)
    except NodesOutputError as exc:
        _fail(f"{cp.name}: kubectl get nodes -o json: {exc}", EXIT_NOT_READY)
    if output is StatusOutput.JSON:
        from bastion.cluster.nodes import status_document

        typer.echo(json.dumps(status_document(nodes, cp.name), indent=2))
    else:
        from bastion.render.base import wants_color  # one NO_COLOR rule (no-color.org)
        from bastion.render.cluster_nodes import render_nodes

        typer.echo(render_nodes(nodes, cp.name, color=wants_color(sys.stdout)), nl=False)
    if not nodes or not all(node.ready for node in nodes):
        raise typer.Exit(EXIT_NOT_READY)


@cluster_app.command("backup")
def backup_command(
    inventory: InventoryOption = None,
    to: Annotated[
        Path,
        typer.Option(
            "--to",
            help="Local directory; each backup goes into its own DIR/<UTC time>/ (files 0600).",
            metavar="DIR",
            file_okay=False,
        ),
    ] = Path("backups"),
    old_output: Annotated[
        Path | None,
        typer.Option("--output", "-o", hidden=True, file_okay=False, help="Old --to."),
    ] = None,
    extra_vars: ExtraVarOption = None,
    accept_new: AcceptNewOption = False,
    connect_timeout: ConnectTimeoutOption = None,
) -> None:
    """Every resource kind as YAML plus an etcd snapshot, fetched here: backup.yaml.

    The files land in DIR/<UTC time>/resources.tar.gz and etcd-snapshot.db.
    """
    from bastion.cli.options import inventory_of, warn_deprecated
    from bastion.cluster.topology import control_plane_vars

    output = to
    if old_output is not None:
        warn_deprecated("cluster backup -o/--output DIR", "--to DIR")
        output = old_output

    inv = inventory_of(inventory)
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    variables = control_plane_vars(inv, {"backup_dir": str(output.resolve() / stamp)})
    _play(
        "backup.yaml", inv, variables, extra_vars, check=False, accept_new=accept_new,
        connect_timeout=connect_timeout,
    )  # fmt: skip


@cluster_app.command("reset")
def reset_command(
    inventory: InventoryOption = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask: reset every node of the cluster.")
    ] = False,
    extra_vars: ExtraVarOption = None,
    accept_new: AcceptNewOption = False,
    connect_timeout: ConnectTimeoutOption = None,
) -> None:
    """Tear the cluster down (kubeadm reset on every node): reset.yaml. Destructive."""
    from bastion.cli.options import inventory_of
    from bastion.cluster.topology import control_plane_vars

    inv = inventory_of(inventory)
    variables = control_plane_vars(inv)
    confirm_reset(inv, yes=yes, interactive=sys.stdin.isatty())
    _play(
        "reset.yaml", inv, variables, extra_vars, check=False, accept_new=accept_new,
        connect_timeout=connect_timeout,
    )  # fmt: skip


def confirm_reset(inventory: Inventory, *, yes: bool, interactive: bool) -> None:
    """Go on with --yes; ask on a terminal; refuse (exit 2) without either."""
    if yes:
        return
    names = ", ".join(inventory.hosts)
    if not interactive:
        raise UsageError(
            f"refusing to reset the cluster on {names} without --yes (stdin is not a terminal)",
            source="--yes",
        )
    if not typer.confirm(f"Reset the Kubernetes cluster on {names}? Its data is lost"):
        typer.echo("not reset", err=True)
        raise typer.Exit(1)


def _play(
    name: str,
    inventory: Inventory,
    variables: dict[str, str],
    extra_vars: list[str] | None,
    *,
    check: bool,
    accept_new: bool,
    connect_timeout: float | None,
) -> None:
    """Run the shipped playbook ``name`` as `bastion play` would, and exit with its code."""

    from bastion.cli.fanout import prologue
    from bastion.cli.play_cmd import execute_play, start_play_progress
    from bastion.playbook import PlaybookRun, PlayOptions, load_playbook, parse_extra_vars
    from bastion.render.base import wants_color
    from bastion.render.play import PlayTextRenderer

    extra: dict[str, object] = {**variables, **parse_extra_vars(extra_vars or [])}
    book = load_playbook(playbooks_dir() / name, extra)
    start = prologue(inventory, None, connect_timeout=connect_timeout, accept_new=accept_new)
    assert start is not None
    options = PlayOptions(run=start.run_options(), check=check)
    progress = start_play_progress(True)  # the live step board, before the renderer
    renderer = PlayTextRenderer(sys.stdout, verbose=False, color=wants_color(sys.stdout))

    def emit(event: PlayEvent) -> None:
        if progress is not None:
            progress.handle(event)
        renderer.handle(event)

    run = PlaybookRun(book, inventory, options, emit)
    try:
        run.prepare()  # bad input: exit 2 here, before any host is contacted
    except BaseException:  # the terminal is given back before the error is printed
        if progress is not None:
            progress.stop()
        raise
    # History keeps the variable names only, never their values.
    described = f"cluster {name.removesuffix('.yaml')}" + "".join(
        f" -e {key}=..." for key in sorted(extra)
    )
    context = start.context(described, {"check": check, "extra_vars": sorted(extra)})
    try:
        code = execute_play(run, renderer, None, None, context)
    finally:
        if progress is not None:
            progress.stop()
    raise typer.Exit(code)


def _fail(message: str, code: int) -> NoReturn:
    raise CommandFailed(message, code)  # cli/main.py prints every error, in one place
