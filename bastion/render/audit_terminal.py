"""The audit in the terminal: header with counts, the access matrix, findings by severity."""

from __future__ import annotations

import io

from bastion.audit.findings import Severity
from bastion.audit.report import AuditReport
from bastion.audit.reports.matrix import LEGEND, access_matrix

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
SHORT = {
    Severity.CRITICAL: "CRIT",
    Severity.HIGH: "HIGH",
    Severity.MEDIUM: "MED",
    Severity.LOW: "LOW",
    Severity.INFO: "INFO",
}


def render_audit(report: AuditReport, *, fail_on: Severity, width: int = 120,
                 color: bool = False, limit: int | None = None) -> str:  # fmt: skip
    """The whole terminal report as text (ANSI colours only when ``color``)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, color_system="standard" if color else None,
        force_terminal=color, highlight=False, soft_wrap=False,
    )  # fmt: skip
    counts = report.counts()
    audited = len(report.observations) - len(report.not_audited)
    header = Text(f"bastion audit  {report.started_at}  hosts {audited}/{len(report.observations)}")
    header.append(f"  exit {report.exit_code(fail_on)} (fail-on {fail_on.label})")
    if report.declared_source:
        header.append(f"  declared {report.declared_source}")
    console.print(header)
    summary = Text("findings: ")
    for severity in sorted(Severity, reverse=True):
        summary.append(f"{severity.label} {counts[severity.label]}  ", SEVERITY_STYLE[severity])
    console.print(summary)
    for seen in report.not_audited:
        console.print(Text(f"not audited: {seen.host}: {seen.error}", "bold red"))

    hosts, rows = access_matrix(report)
    table = Table(title="ACCESS MATRIX", title_justify="left", show_lines=False, box=None,
                  pad_edge=False)  # fmt: skip
    table.add_column("identity", overflow="fold")
    for host in hosts:
        table.add_column(host, overflow="fold")
    for identity, by_host in rows:
        cells = (Text("\n".join(by_host.get(h, [])) or "-") for h in hosts)
        table.add_row(Text(identity), *cells)
    console.print()
    console.print(table)
    console.print(Text(LEGEND, "dim"))

    shown = report.findings if limit is None else report.findings[:limit]
    console.print()
    title = f"FINDINGS ({len(shown)} of {len(report.findings)})"
    findings = Table(title=title, title_justify="left", box=None, pad_edge=False)
    for name in ("sev", "id", "host", "account", "what", "where"):
        findings.add_column(name, overflow="fold")
    for f in shown:
        sev = Text(SHORT[f.severity], SEVERITY_STYLE[f.severity])
        what = f.message + (f"  (waived: {f.waived})" if f.waived else "")
        findings.add_row(sev, f.id, f.host, Text(f.account or ""), Text(what), Text(f.where))
    console.print(findings)
    if report.diff is not None:
        diff = report.diff
        console.print()
        console.print(
            Text(f"DIFF against {diff.previous}: {len(diff.new)} new, "
                 f"{len(diff.regressed)} regressed, {len(diff.resolved)} resolved")
        )  # fmt: skip
        for label, items in (("new", diff.new), ("regressed", diff.regressed)):
            for f in items:
                console.print(Text(f"  {label:9} {SHORT[f.severity]:4} {f.id} {f.host} "
                                   f"{f.account or ''} {f.message}"))  # fmt: skip
        for old in diff.resolved:
            console.print(Text(f"  resolved  {old.get('id')} {old.get('host')} "
                               f"{old.get('account') or ''} {old.get('message')}"))  # fmt: skip
    return buffer.getvalue()
