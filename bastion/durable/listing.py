"""What `bastion jobs` reads back from a node: the wrapper's one-line-per-job listing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class JobEntry:
    """A job directory left on a node: running, or finished but never collected."""

    job: str
    running: bool
    exit_status: int | None
    started_at: str
    """ISO 8601, UTC; empty when the node did not record it."""
    command: str
    """The command's first line."""


def parse_listing(text: str) -> list[JobEntry]:
    """Parse ``wrapper.sh list`` output (tab-separated); lines that do not parse are skipped."""
    entries = []
    for line in text.splitlines():
        fields = line.split("\t", 4)
        if len(fields) != 5 or fields[1] not in ("running", "done"):
            continue
        job, state, rc, started, command = fields
        entries.append(
            JobEntry(
                job=job,
                running=state == "running",
                exit_status=int(rc) if rc.isdigit() else None,
                started_at=_iso(started),
                command=command,
            )
        )
    return entries


def _iso(epoch: str) -> str:
    if not epoch.isdigit() or epoch == "0":
        return ""
    return datetime.fromtimestamp(int(epoch), UTC).isoformat(timespec="seconds")
