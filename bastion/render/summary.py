"""The closing summary on stderr: counts, then each status with its folded hosts and reason."""

from __future__ import annotations

from collections.abc import Sequence

from bastion.hostset import fold
from bastion.models import HostResult, Status
from bastion.outcome import first_error_line
from bastion.render.base import GREEN, RED, YELLOW, paint

STATUS_ORDER = (Status.OK, Status.FAILED, Status.TIMEOUT, Status.UNREACHABLE, Status.SKIPPED)
STATUS_COLOR = {
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
    lines = [f"bastion: {len(results)} host{plural} in {elapsed_s:.2f}s: {', '.join(parts)}"]
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


def _reason(result: HostResult) -> str:
    """Why the host ended as it did, with its notes (reconnects, a switch of transport)."""
    reason = first_error_line(result)
    if not result.notes:
        return reason
    notes = f"({'; '.join(result.notes)})"
    return f"{reason} {notes}" if reason else notes
