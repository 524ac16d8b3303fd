"""The closing summary on stderr: counts, then each status with its folded hosts and reason.

Hosts fold onto one line when their reasons differ only by the host's own address or host-key
fingerprint (``connection refused by <address>:22`` for a whole rack). Reasons are shown
through `visible`: a host's stderr line cannot repaint the summary.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from bastion.batches import BatchReport
from bastion.hostset import fold
from bastion.models import HostResult, Status
from bastion.outcome import first_error_line
from bastion.render.base import GREEN, RED, YELLOW, paint
from bastion.render.visible import visible

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


def render_summary(
    results: Sequence[HostResult], elapsed_s: float, *, color: bool = False, via: str | None = None
) -> str:
    """Summarise a run; hosts with the same status and reason are folded onto one line.

    ``via`` is one word for what served the run when it was not a direct connection
    (``agent``), shown after the time.
    """
    counts = {status: 0 for status in STATUS_ORDER}
    for result in results:
        counts[result.status] += 1
    parts = [f"{counts[s]} {s}" for s in STATUS_ORDER if counts[s]]
    plural = "" if len(results) == 1 else "s"
    tally = ", ".join(parts) or "none finished"
    served = f" ({via})" if via else ""
    lines = [f"bastion: {len(results)} host{plural} in {elapsed_s:.2f}s{served}: {tally}"]
    width = max(len(str(s)) for s in STATUS_ORDER if counts[s]) if results else 0
    for status in STATUS_ORDER:
        groups = _fold_reasons([r for r in results if r.status is status])
        for hosts, reason in groups:
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


def _fold_reasons(results: Sequence[HostResult]) -> list[tuple[list[str], str]]:
    """Hosts with the same reason, or the same but for their address: (hosts, reason shown)."""
    groups: list[tuple[list[str], set[str], str]] = []  # hosts, their reasons, the general one
    by_reason: dict[str, int] = {}
    by_general: dict[str, int] = {}
    for result in results:
        reason = _reason(result)
        general = _general(reason, result.address)
        index = by_reason.get(reason, by_general.get(general))
        if index is None:
            index = len(groups)
            groups.append(([], set(), general))
            by_general.setdefault(general, index)
        by_reason.setdefault(reason, index)
        groups[index][0].append(result.host)
        groups[index][1].add(reason)
    return [
        (hosts, visible(next(iter(reasons)) if len(reasons) == 1 else general))
        for hosts, reasons, general in groups
    ]


_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}=?")


def _general(reason: str, address: str) -> str:
    """``reason`` without what differs from host to host: its address and key fingerprint."""
    if address:
        pattern = rf"(?<![\w.:-]){re.escape(address)}(?![\w-]|\.\w)"
        reason = re.sub(pattern, "<address>", reason)
    return _FINGERPRINT.sub("<fingerprint>", reason)
