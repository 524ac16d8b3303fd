"""The audit in the terminal: header with counts, the access matrix, findings by severity."""

from __future__ import annotations

import io
from collections import defaultdict

from bastion.audit.access import AccessRow, CredentialKind
from bastion.audit.findings import Severity
from bastion.audit.report import AuditReport

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
LEGEND = (
    "cell: account[privilege]; * undeclared, ~ restricted (from=/command/restrict), "
    "x refused by sshd, ! revoked or expired"
)


def identity_label(row: AccessRow, report: AuditReport) -> str:
    """How the matrix names a credential: declared identity, else comment, else fingerprint."""
    if row.kind is CredentialKind.PASSWORD:
        return "password"
    name = report.identities.get(row.fingerprint or "")
    short = (row.fingerprint or "")[7:19]
    kind = f"{row.algorithm}-{row.bits}" if row.algorithm == "rsa" else row.algorithm
    who = name or row.comment or "(no comment)"
    prefix = "CA " if row.kind is CredentialKind.CERT_AUTHORITY else ""
    return f"{prefix}{who}  {short}… {kind}"


def matrix(report: AuditReport) -> tuple[list[str], list[tuple[str, dict[str, list[str]]]]]:
    """(hosts, [(identity, {host: [cell entries]})]), identities in first-seen order."""
    hosts = [o.host for o in report.observations]
    cells: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for row in report.rows:
        state = report.drift.get((row.host, row.account, row.fingerprint or ""))
        mark = ""
        if state in ("UNDECLARED", "UNMANAGED"):
            mark += "*"
        if state in ("REVOKED", "EXPIRED"):
            mark += "!"
        if row.restricted:
            mark += "~"
        if not row.accepted:
            mark += "x"
        entry = f"{row.account}[{row.privilege}]{mark}"
        if entry not in cells[identity_label(row, report)][row.host]:
            cells[identity_label(row, report)][row.host].append(entry)
    return hosts, list(cells.items())


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

    hosts, rows = matrix(report)
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
