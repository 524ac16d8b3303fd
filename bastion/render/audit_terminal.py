"""The audit in the terminal: header with counts, the access matrix, findings by severity.

Everything that comes from a host (key comments, account names, paths, messages quoting
them) is shown through `visible`: an authorized_keys comment cannot drive the terminal.
Findings are a table when it fits the width without breaking a path or a word; otherwise
each finding is a short block (its line, what, where), so paths are never cut mid-word.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bastion.audit.diff import FindingsDiff
from bastion.audit.findings import Finding, Severity
from bastion.audit.report import AuditReport
from bastion.audit.reports.matrix import LEGEND, access_matrix
from bastion.render.visible import visible

if TYPE_CHECKING:
    from rich.console import Console

MIN_WHAT = 30
"""Narrowest 'what' column of the findings table; below it, findings are shown as blocks."""

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
        console.print(Text(visible(f"not audited: {seen.host}: {seen.error}"), "bold red"))

    hosts, rows = access_matrix(report)
    table = Table(title="ACCESS MATRIX", title_justify="left", show_lines=False, box=None,
                  pad_edge=False)  # fmt: skip
    table.add_column("identity", overflow="fold")
    for host in hosts:
        table.add_column(host, overflow="fold")
    for identity, by_host in rows:
        cells = (Text("\n".join(visible(c) for c in by_host.get(h, [])) or "-") for h in hosts)
        table.add_row(Text(visible(identity)), *cells)
    console.print()
    console.print(table)
    console.print(Text(LEGEND, "dim"))

    shown = report.findings if limit is None else report.findings[:limit]
    console.print()
    _write_findings(console, f"FINDINGS ({len(shown)} of {len(report.findings)})", shown, width)
    if report.diff is not None:
        _write_diff(console, report.diff)
    return buffer.getvalue()


FindingRow = tuple[Severity, str, str, str, str, str]
"""severity, id, host, account, what, where: the texts already made visible."""


def _write_findings(console: Console, title: str, shown: Sequence[Finding], width: int) -> None:
    from rich.table import Table
    from rich.text import Text

    rows: list[FindingRow] = [
        (
            f.severity,
            f.id,
            f.host,
            visible(f.account or ""),
            visible(f.message + (f"  (waived: {f.waived})" if f.waived else "")),
            visible(f.where),
        )
        for f in shown
    ]
    if _table_fits(rows, width):
        findings = Table(title=title, title_justify="left", box=None, pad_edge=False)
        for name in ("sev", "id", "host", "account", "what", "where"):
            findings.add_column(name, overflow="fold", no_wrap=name == "where")
        for severity, ident, host, account, what, where in rows:
            sev = Text(SHORT[severity], SEVERITY_STYLE[severity])
            findings.add_row(sev, ident, host, Text(account), Text(what), Text(where))
        console.print(findings)
        return
    console.print(Text(title))
    for severity, ident, host, account, what, where in rows:
        head = Text(f"{SHORT[severity]:4}", SEVERITY_STYLE[severity])
        head.append(f"  {ident}  {host}" + (f"  {account}" if account else ""))
        console.print(head, soft_wrap=True)  # the terminal wraps; no newline is added
        console.print(Text(f"      {what}"), soft_wrap=True)
        if where:
            console.print(Text(f"      at {where}"), soft_wrap=True)


def _write_diff(console: Console, diff: FindingsDiff) -> None:
    from rich.text import Text

    console.print()
    console.print(
        Text(f"DIFF against {diff.previous}: {len(diff.new)} new, "
             f"{len(diff.regressed)} regressed, {len(diff.resolved)} resolved")
    )  # fmt: skip
    for label, items in (("new", diff.new), ("regressed", diff.regressed)):
        for f in items:
            line = (
                f"  {label:9} {SHORT[f.severity]:4} {f.id} {f.host} {f.account or ''} {f.message}"
            )
            console.print(Text(visible(line)))
    for old in diff.resolved:
        line = (
            f"  resolved  {old.get('id')} {old.get('host')} "
            f"{old.get('account') or ''} {old.get('message')}"
        )
        console.print(Text(visible(line)))


def _table_fits(rows: list[FindingRow], width: int) -> bool:
    """Whether the findings table fits ``width`` with no path or word broken."""
    from rich.cells import cell_len

    def widest(index: int, header: str) -> int:
        return max([cell_len(header), *(cell_len(str(row[index])) for row in rows)])

    fixed = 4 + widest(1, "id") + widest(2, "host") + widest(3, "account") + widest(5, "where")
    room = width - fixed - 2 * 5  # five gaps of two between six columns
    longest_word = max((cell_len(word) for row in rows for word in row[4].split()), default=0)
    return room >= max(MIN_WHAT, longest_word)
