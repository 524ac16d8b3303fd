"""``bastion audit``: who can get into which host, how, and what is wrong."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
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
from bastion.errors import UsageError, cut

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
    TEXT = "text"
    """For people, on the terminal (its old name ``terminal`` still works for one release)."""
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
        str,
        typer.Option(
            "--output",
            "-o",
            envvar="BASTION_AUDIT_FORMAT",
            metavar="FORMAT",
            help="text, json (schema 1), md, html (one self-contained page) or sarif (2.1.0).",
        ),
    ] = "text",
    to: Annotated[
        Path | None,
        typer.Option(
            "--to", metavar="FILE", help="Write the report to this file (0600).", show_default=False
        ),
    ] = None,
    old_format: Annotated[
        str | None, typer.Option("--format", "-F", hidden=True, help="Old -o.")
    ] = None,
    old_to: Annotated[Path | None, typer.Option("-O", hidden=True, help="Old --to.")] = None,
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
    forks: ForksOption = 64,
    connect_timeout: ConnectTimeoutOption = None,
    accept_new: AcceptNewOption = False,
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
    from bastion.cli.fanout import prologue

    chosen, output = report_spellings(report_format, to, old_format, old_to)
    threshold = Severity.parse(fail_on)
    loaded = inventory_of(inventory)
    start = prologue(
        loaded,
        selection_from(all_hosts, group, hosts, selector, exclude),
        forks=forks,
        connect_timeout=connect_timeout,
        accept_new=accept_new,
        default_all=True,
    )
    check_output(output)
    assert start is not None
    targets, options = start.targets, start.run_options()
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
    # The report first: a full disk or an unusable state directory costs only the stored copy.
    _deliver(_render(report, chosen, threshold), output)
    _store_run(report, threshold)
    raise typer.Exit(report.exit_code(threshold))


def report_spellings(
    output: str, to: Path | None, old_format: str | None, old_to: Path | None
) -> tuple[ReportFormat, Path | None]:
    """The format and destination, from ``-o FORMAT --to FILE`` or the old spellings
    (``-F FORMAT``, ``-O FILE``, ``--output FILE``, ``terminal``): those still work for one
    release, each with a deprecation line (docs/output.md)."""
    from bastion.cli.options import warn_deprecated

    names = (*tuple(ReportFormat), "terminal")
    if output not in names and to is None and ("." in output or "/" in output):
        warn_deprecated("audit --output FILE", "--to FILE")  # `--output report.html`
        output, to = "text", Path(output)
    if old_format is not None:
        warn_deprecated("audit -F/--format", "-o/--output")
        output = old_format
    if old_to is not None:
        warn_deprecated("audit -O FILE", "--to FILE")
        to = old_to
    if output == "terminal":
        warn_deprecated("-o terminal", "-o text")
        output = ReportFormat.TEXT
    if output in tuple(ReportFormat):
        return ReportFormat(output), to
    formats = ", ".join(tuple(ReportFormat))
    raise UsageError(f"unknown format {cut(output, 40)!r} ({formats})", source="--output")


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
    """Keep every run's JSON (0600) under the state directory, for later ``--diff``.

    A copy that cannot be stored is one warning line: the report was already delivered, and
    the exit code stays that of the hosts.
    """
    from bastion.audit.reports.json_report import render_json
    from bastion.errors import BastionError
    from bastion.private_files import private_dir, write_private

    stamp = report.started_at.replace(":", "").replace("+0000", "Z")
    try:
        directory = private_dir(_runs_dir())
        write_private(directory / f"audit-{stamp}.json", render_json(report, fail_on=fail_on))
    except (OSError, BastionError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        sys.stderr.write(
            f"bastion: warning: the audit was not stored in {_runs_dir()}: {reason[:200]}\n"
        )


def check_output(output: Path | None) -> None:
    """Refuse an unusable ``-O`` before any host is contacted (exit 2)."""
    if output is None:
        return
    if output.is_dir():
        raise UsageError("is a directory", source=output)
    if not output.parent.is_dir():
        raise UsageError("its directory does not exist", source=output)


def _deliver(text: str, output: Path | None) -> None:
    """Print the report, or write it as a 0600 file."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from bastion.private_files import write_private

    if output.is_dir():
        raise UsageError("is a directory", source=output)
    try:
        write_private(output, text)
    except OSError as exc:
        raise UsageError(f"cannot write the report: {exc.strerror}", source=output) from None
    sys.stderr.write(f"bastion: audit report written to {output}\n")
