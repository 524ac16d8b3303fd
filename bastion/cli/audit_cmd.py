"""``bastion audit``: who can get into which host, how, and what is wrong."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
from bastion.errors import UsageError

if TYPE_CHECKING:  # the audit modules load only when the command runs (fast --help)
    from bastion.audit.declared import AccessList
    from bastion.audit.findings import Severity
    from bastion.audit.report import AuditReport
    from bastion.executor import RunOptions
    from bastion.models import Host

AccessOption = Annotated[
    Path | None,
    typer.Option(
        "--access",
        envvar="BASTION_ACCESS",
        help="The declared access list (default: access.yaml beside the inventory, if any).",
        show_default=False,
    ),
]


class ReportFormat(StrEnum):
    TERMINAL = "terminal"
    JSON = "json"
    MARKDOWN = "md"
    HTML = "html"
    SARIF = "sarif"


def _severity(text: str) -> str:
    from bastion.audit.findings import Severity

    try:
        Severity.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return text


def audit_command(
    inventory: InventoryOption = None,
    all_hosts: AllOption = False,
    group: GroupOption = None,
    hosts: HostsOption = None,
    selector: SelectorOption = None,
    exclude: ExcludeOption = None,
    report_format: Annotated[
        ReportFormat,
        typer.Option(
            "--format",
            "-F",
            envvar="BASTION_AUDIT_FORMAT",
            help="terminal, json (schema 1), md, html (one self-contained page) or sarif (2.1.0).",
        ),
    ] = ReportFormat.TERMINAL,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-O", help="Write the report to this file (0600).", show_default=False
        ),
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option(
            "--fail-on",
            envvar="BASTION_AUDIT_FAIL_ON",
            callback=_severity,
            help="Exit 1 when an open finding is at least this severe "
            "(critical, high, medium, low, info).",
        ),
    ] = "high",
    unused_days: Annotated[
        int,
        typer.Option("--unused-days", min=1, help="A key unused this long is USE-01."),
    ] = 90,
    forks: Annotated[
        int, typer.Option("--forks", "-f", envvar="BASTION_FORKS", min=1, help="Hosts at once.")
    ] = 64,
    connect_timeout: Annotated[
        float | None,
        typer.Option(
            "--connect-timeout",
            envvar="BASTION_CONNECT_TIMEOUT",
            min=0.001,
            help="Seconds to connect and authenticate.",
            show_default=False,
        ),
    ] = None,
    accept_new: Annotated[
        bool,
        typer.Option(
            "--accept-new",
            envvar="BASTION_ACCEPT_NEW",
            help="Trust unknown host keys on first use.",
        ),
    ] = False,
    access: AccessOption = None,
    bootstrap: Annotated[
        bool,
        typer.Option(
            "--bootstrap",
            help="Print a draft access list (YAML) of what the hosts hold, instead of a report.",
        ),
    ] = False,
    kube: Annotated[
        bool,
        typer.Option(
            "--kube",
            help="Audit cluster access on every selected node (RBAC, kubeconfig certificates, "
            "tokens, API server/etcd/kubelet settings); without it, only control planes that "
            "hold an admin kubeconfig.",
        ),
    ] = False,
    diff: Annotated[
        Path | None,
        typer.Option(
            "--diff",
            help="Compare with a previous JSON report (or 'last', the latest stored run): "
            "new, regressed and resolved findings.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Audit SSH access on the selected hosts (all hosts when none is selected).

    Exit status: 0 clean; 1 an open finding at or above --fail-on; 2 bad usage or input;
    3 some host could not be audited.
    """
    # Imported here: a help page needs none of them.
    from dataclasses import replace

    from bastion.audit.collect import collect
    from bastion.audit.diff import diff_findings, load_previous
    from bastion.audit.findings import Severity
    from bastion.audit.report import audit_against
    from bastion.executor import RunOptions
    from bastion.jumps import check_jump_chains
    from bastion.select import select_hosts

    threshold = Severity.parse(fail_on)
    loaded = inventory_of(inventory)
    selection = selection_from(all_hosts, group, hosts, selector, exclude)
    if not (selection.all or selection.groups or selection.hosts or selection.selector):
        selection = selection_from(True, None, None, None, exclude)
    targets = select_hosts(loaded, selection)
    check_jump_chains(targets, loaded.hosts)
    options = RunOptions(
        forks=forks,
        connect=connect_options(loaded, connect_timeout, accept_new=accept_new),
    )
    declared = None if bootstrap else load_declared(access, loaded.path)
    if diff is not None and str(diff) == "last":
        diff = last_stored_run()
    previous = load_previous(diff) if diff is not None else None
    started = datetime.now(UTC).isoformat(timespec="seconds")
    observations = collect(targets, options)
    report = audit_against(
        observations,
        started_at=started,
        unused_days=unused_days,
        access=declared,
        inventory=loaded,
    )
    report = _with_cluster_audit(report, targets, options, kube, access, loaded.path)
    if bootstrap:
        from bastion.audit.bootstrap import bootstrap_access_list

        _deliver(bootstrap_access_list(report, loaded), output)
        raise typer.Exit(3 if report.not_audited else 0)
    if previous is not None and diff is not None:
        report = replace(report, diff=diff_findings(previous, report.findings, str(diff)))
    _store_run(report, threshold)
    _deliver(_render(report, report_format, threshold), output)
    raise typer.Exit(report.exit_code(threshold))


def _with_cluster_audit(
    report: AuditReport,
    targets: list[Host],
    options: RunOptions,
    everything: bool,
    access: Path | None,
    inventory_path: Path,
) -> AuditReport:
    """The cluster access audit (bastion/audit/kube_report.py) added to ``report``."""
    from bastion.audit.declared import DEFAULT_ACCESS_FILE
    from bastion.audit.kube_collect import collect_kube
    from bastion.audit.kube_report import default_cluster, kube_targets, with_kube

    nodes = kube_targets(targets, report, everything)
    if not nodes:
        return report
    seen = collect_kube(nodes, options, default_cluster(targets))
    beside = inventory_path.parent / DEFAULT_ACCESS_FILE
    access_file = access if access is not None else (beside if beside.is_file() else None)
    return with_kube(report, seen, datetime.now(UTC), access_file)


def _render(report: AuditReport, report_format: ReportFormat, fail_on: Severity) -> str:
    if report_format is ReportFormat.JSON:
        from bastion.audit.reports.json_report import render_json

        return render_json(report, fail_on=fail_on)
    if report_format is ReportFormat.MARKDOWN:
        from bastion.audit.reports.markdown_report import render_markdown

        return render_markdown(report, fail_on=fail_on)
    if report_format is ReportFormat.HTML:
        from bastion.audit.reports.html_report import render_html

        return render_html(report, fail_on=fail_on)
    if report_format is ReportFormat.SARIF:
        from bastion.audit.reports.sarif_report import render_sarif

        return render_sarif(report)
    import shutil

    from bastion.render.audit_terminal import render_audit
    from bastion.render.base import wants_color

    width = shutil.get_terminal_size((120, 40)).columns
    return render_audit(report, fail_on=fail_on, width=width, color=wants_color(sys.stdout))


def load_declared(access: Path | None, inventory_path: Path) -> AccessList | None:
    """The access list: ``--access``, else ``access.yaml`` beside the inventory if present."""
    from bastion.audit.declared import DEFAULT_ACCESS_FILE, load_access_list

    if access is not None:
        return load_access_list(access)
    beside = inventory_path.parent / DEFAULT_ACCESS_FILE
    return load_access_list(beside) if beside.is_file() else None


def _runs_dir() -> Path:
    from bastion.lab.paths import state_home

    return state_home() / "audits"


def last_stored_run() -> Path:
    """The newest stored audit run (what ``--diff last`` compares with)."""
    runs = sorted(_runs_dir().glob("audit-*.json")) if _runs_dir().is_dir() else []
    if not runs:
        raise UsageError(f"no stored audit run in {_runs_dir()} yet", source="--diff last")
    return runs[-1]


def _store_run(report: AuditReport, fail_on: Severity) -> None:
    """Keep every run's JSON (0600) under the state directory, for later ``--diff``."""
    from bastion.audit.reports.json_report import render_json
    from bastion.private_files import private_dir, write_private

    directory = private_dir(_runs_dir())
    stamp = report.started_at.replace(":", "").replace("+0000", "Z")
    write_private(directory / f"audit-{stamp}.json", render_json(report, fail_on=fail_on))


def _deliver(text: str, output: Path | None) -> None:
    """Print the report, or write it as a 0600 file."""
    if output is None:
        sys.stdout.write(text)
        return
    from bastion.private_files import write_private

    if output.is_dir():
        raise UsageError("is a directory", source=output)
    try:
        write_private(output, text)
    except OSError as exc:
        raise UsageError(f"cannot write the report: {exc.strerror}", source=output) from None
    sys.stderr.write(f"bastion: audit report written to {output}\n")
