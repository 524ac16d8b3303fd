"""The audit as one self-contained HTML page: no external assets (bastions are often offline).

Everything from the hosts is escaped; the only script sorts tables and filters by severity.
"""

from __future__ import annotations

from html import escape

from bastion.audit.findings import Severity
from bastion.audit.report import AuditReport
from bastion.audit.reports.matrix import LEGEND, access_matrix

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem;color:#1d2430}
h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin-top:1.6rem}
.meta{color:#555;margin-bottom:.8rem}
.counts span{display:inline-block;padding:.25rem .6rem;margin-right:.4rem;border-radius:4px;
  font-weight:600;color:#fff}
.critical{background:#8b0000}.high{background:#d9342b}.medium{background:#d98c00}
.low{background:#2b7bb9}.info{background:#777}
table{border-collapse:collapse;font-size:.85rem;margin-top:.4rem}
th,td{border:1px solid #d0d5dd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f5;cursor:pointer;user-select:none}
#findings td:nth-child(2),#findings td:nth-child(3){white-space:nowrap}
td.sev{color:#fff;font-weight:600;text-transform:uppercase;font-size:.75rem}
td.cell{white-space:pre;font-family:ui-monospace,Menlo,monospace}
.legend{color:#555;font-size:.8rem}.bad{color:#b00020;font-weight:600}
.waived{opacity:.55}
"""

_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.sort || a.cells[col].textContent;
      var y = b.cells[col].dataset.sort || b.cells[col].textContent;
      return x.localeCompare(y, undefined, {numeric: true}) * dir;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
var pick = document.getElementById('minsev');
pick.addEventListener('change', function () {
  var min = Number(pick.value);
  document.querySelectorAll('#findings tbody tr').forEach(function (r) {
    r.hidden = Number(r.dataset.rank) < min;
  });
});
"""


def render_html(report: AuditReport, *, fail_on: Severity) -> str:
    """The whole report as one HTML document."""
    counts = report.counts()
    audited = len(report.observations) - len(report.not_audited)
    meta = (
        f"Run {report.started_at} &middot; hosts audited {audited}/{len(report.observations)}"
        f" &middot; exit {report.exit_code(fail_on)} (fail-on {fail_on.label})"
    )
    if report.declared_source:
        meta += f" &middot; declared access list {escape(report.declared_source)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>bastion access audit</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>bastion access audit</h1>",
        f'<div class="meta">{meta}</div>',
        '<div class="counts">'
        + "".join(f'<span class="{k}">{k} {v}</span>' for k, v in counts.items())
        + "</div>",
    ]
    for seen in report.not_audited:
        parts.append(
            f'<p class="bad">not audited: {escape(seen.host)}: {escape(seen.error or "")}</p>'
        )
    parts += _matrix(report)
    parts += _findings(report)
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def _matrix(report: AuditReport) -> list[str]:
    hosts, rows = access_matrix(report)
    out = [
        "<h2>Access matrix</h2>",
        f'<p class="legend">{escape(LEGEND)}</p>',
        '<table class="sortable" id="matrix"><thead><tr><th>identity</th>',
    ]
    out += [f"<th>{escape(h)}</th>" for h in hosts]
    out.append("</tr></thead><tbody>")
    for identity, by_host in rows:
        cells = "".join(
            f'<td class="cell">{escape(chr(10).join(by_host.get(h, [])) or "-")}</td>'
            for h in hosts
        )
        out.append(f"<tr><td>{escape(identity)}</td>{cells}</tr>")
    out.append("</tbody></table>")
    return out


def _findings(report: AuditReport) -> list[str]:
    options = "".join(
        f'<option value="{int(s)}">{s.label} and above</option>' for s in sorted(Severity)
    )
    out = [
        f"<h2>Findings ({len(report.findings)})</h2>",
        f'<label>show <select id="minsev">{options}</select></label>',
        '<table class="sortable" id="findings"><thead><tr>',
        "<th>severity</th><th>id</th><th>host</th><th>account</th><th>what</th><th>where</th>"
        "<th>remediation</th></tr></thead><tbody>",
    ]
    for f in report.findings:
        klass = ' class="waived"' if f.waived else ""
        what = f.message + (f" (waived: {f.waived})" if f.waived else "")
        out.append(
            f'<tr data-rank="{int(f.severity)}"{klass}>'
            f'<td class="sev {f.severity.label}" data-sort="{9 - int(f.severity)}">'
            f"{f.severity.label}</td><td>{escape(f.id)}</td><td>{escape(f.host)}</td>"
            f"<td>{escape(f.account or '')}</td><td>{escape(what)}</td>"
            f"<td>{escape(f.where)}</td><td>{escape(f.rule.remediation)}</td></tr>"
        )
    out.append("</tbody></table>")
    if report.diff is not None:
        diff = report.diff
        out.append(f"<h2>Changes since {escape(diff.previous)}</h2><ul>")
        out += [
            f"<li>new: {escape(f.id)} {escape(f.host)} {escape(f.message)}</li>" for f in diff.new
        ]
        out += [
            f"<li>regressed: {escape(f.id)} {escape(f.host)} {escape(f.message)}</li>"
            for f in diff.regressed
        ]
        out += [
            f"<li>resolved: {escape(str(r.get('id')))} {escape(str(r.get('host')))} "
            f"{escape(str(r.get('message')))}</li>"
            for r in diff.resolved
        ]
        out.append("</ul>")
    return out
