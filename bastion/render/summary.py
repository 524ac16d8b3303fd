"""The closing summary on stderr: counts, then each status with its folded hosts and reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from bastion.batches import BatchReport
from bastion.hostset import fold
from bastion.models import HostResult, Status
from bastion.outcome import first_error_line
from bastion.render.base import GREEN, RED, YELLOW, paint

STATUS_ORDER = (
    Status.OK,
    Status.FAILED,
    Status.TIMEOUT,
    Status.UNREACHABLE,
    Status.SKIPPED,
    Status.INTERRUPTED,
)
STATUS_COLOR = {
    Status.INTERRUPTED: YELLOW,
    Status.OK: GREEN,
    Status.FAILED: RED,
    Status.TIMEOUT: YELLOW,
    Status.UNREACHABLE: RED,
    Status.SKIPPED: YELLOW,
}


def render_summary(results: Sequence[HostResult], elapsed_s: float, *, color: bool = False) -> str:
    """Summarise a run; hosts with the same status and reason are folded onto one line."""
    counts = {status: 0 for status in STATUS_ORDER}
    for result in results:
        counts[result.status] += 1
    parts = [f"{counts[s]} {s}" for s in STATUS_ORDER if counts[s]]
    plural = "" if len(results) == 1 else "s"
    tally = ", ".join(parts) or "none finished"
    lines = [f"bastion: {len(results)} host{plural} in {elapsed_s:.2f}s: {tally}"]
    width = max(len(str(s)) for s in STATUS_ORDER if counts[s]) if results else 0
    for status in STATUS_ORDER:
        reasons: dict[str, list[str]] = {}
        for result in results:
            if result.status is status:
                reasons.setdefault(_reason(result), []).append(result.host)
        for reason, hosts in reasons.items():
            label = paint(str(status).ljust(width), STATUS_COLOR[status], color)
            line = f"  {label}  {fold(hosts)}"
            lines.append(f"{line}  {reason}" if reason else line)
    return "\n".join(lines) + "\n"


def render_batches(report: BatchReport, *, color: bool = False) -> str:
    """After the summary: each batch with its hosts and how they ended, and why it stopped."""
    total = len(report.batches)
    started = sum(1 for batch in report.batches if batch.started)
    head = f"bastion: {started} of {total} batch{'' if total == 1 else 'es'} run"
    if report.stopped:
        head += "; " + paint(f"stopped: {report.stopped}", RED, color)
    rows = []
    for number, batch in enumerate(report.batches, start=1):
        if batch.started:
            counts = Counter(batch.statuses)
            outcome = ", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if counts[s])
        else:
            outcome = "not started"
        rows.append((f"{number}/{total}", fold(batch.hosts), outcome))
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(2)]
    lines = [head] + [
        f"  {label.rjust(widths[0])}  {hosts.ljust(widths[1])}  {outcome}"
        for label, hosts, outcome in rows
    ]
    return "\n".join(lines) + "\n"


def _reason(result: HostResult) -> str:
    """Why the host ended as it did, with its notes (reconnects, a switch of transport)."""
    reason = first_error_line(result)
    if not result.notes:
        return reason
    notes = f"({'; '.join(result.notes)})"
    return f"{reason} {notes}" if reason else notes
