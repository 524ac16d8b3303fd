"""The audit as Markdown, for tickets and pull requests: summary, matrix, findings."""

from __future__ import annotations

from bastion.audit.findings import Severity
from bastion.audit.report import AuditReport
from bastion.audit.reports.matrix import LEGEND, access_matrix


def _cell(text: str) -> str:
    """A table cell: markup from the hosts neutralised, pipes escaped, line breaks as <br>."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\n", "<br>")


def render_markdown(report: AuditReport, *, fail_on: Severity) -> str:
    """The whole report as GitHub-flavoured Markdown."""
    counts = report.counts()
    audited = len(report.observations) - len(report.not_audited)
    lines = [
        "# bastion access audit",
        "",
        f"Run {report.started_at}; hosts audited {audited}/{len(report.observations)}; "
        f"exit {report.exit_code(fail_on)} (fail-on {fail_on.label})"
        + (f"; declared access list `{report.declared_source}`" if report.declared_source else ""),
        "",
        "| " + " | ".join(counts) + " |",
        "|" + "---|" * len(counts),
        "| " + " | ".join(str(v) for v in counts.values()) + " |",
        "",
    ]
    for seen in report.not_audited:
        lines.append(f"- **not audited**: {seen.host}: {_cell(seen.error or '')}")
    hosts, rows = access_matrix(report)
    lines += ["## Access matrix", "", f"_{LEGEND}_", ""]
    lines.append("| identity | " + " | ".join(hosts) + " |")
    lines.append("|---|" + "---|" * len(hosts))
    for identity, by_host in rows:
        cells = [_cell("\n".join(by_host.get(h, [])) or "-") for h in hosts]
        lines.append(f"| {_cell(identity)} | " + " | ".join(cells) + " |")
    lines += ["", "## Findings", ""]
    lines.append("| severity | id | host | account | what | where | remediation |")
    lines.append("|---|---|---|---|---|---|---|")
    for f in report.findings:
        what = f.message + (f" (waived: {f.waived})" if f.waived else "")
        lines.append(
            f"| {f.severity.label} | {f.id} | {f.host} | {_cell(f.account or '')} | {_cell(what)} "
            f"| {_cell(f.where)} | {_cell(f.rule.remediation)} |"
        )
    if report.diff is not None:
        diff = report.diff
        lines += ["", f"## Changes since `{diff.previous}`", ""]
        lines += [f"- new: {f.severity.label} {f.id} {f.host} {_cell(f.message)}" for f in diff.new]
        lines += [f"- regressed: {f.id} {f.host} {_cell(f.message)}" for f in diff.regressed]
        lines += [
            f"- resolved: {r.get('id')} {r.get('host')} {r.get('message')}" for r in diff.resolved
        ]
    return "\n".join(lines) + "\n"
