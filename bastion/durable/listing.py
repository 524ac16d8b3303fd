"""What `bastion jobs` reads back from a node: the wrapper's one-line-per-job listing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_NUMBER = re.compile(r"[0-9]{1,12}")


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
    """Parse ``wrapper.sh list`` output (tab-separated); lines that do not parse are skipped.

    The node writes this text, so it is data: split on ``\\n`` only, numbers read only when
    they are ASCII digits of a sane length, never an exception whatever the bytes.
    """
    entries = []
    for line in text.split("\n"):
        fields = line.split("\t", 4)
        if len(fields) != 5 or fields[1] not in ("running", "done"):
            continue
        job, state, rc, started, command = fields
        entries.append(
            JobEntry(
                job=job,
                running=state == "running",
                exit_status=int(rc) if _NUMBER.fullmatch(rc) and int(rc) < 256 else None,
                started_at=_iso(started),
                command=command,
            )
        )
    return entries


def _iso(epoch: str) -> str:
    if not _NUMBER.fullmatch(epoch) or int(epoch) == 0:
        return ""
    try:
        return datetime.fromtimestamp(int(epoch), UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):  # past what the platform's clock can show
        return ""
