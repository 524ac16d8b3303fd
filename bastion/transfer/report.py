"""A copy's or fetch's per-host text and `HostResult`, the same shape for both."""

from __future__ import annotations

from collections.abc import Sequence

from bastion.models import FileFailure, FileReport, Host, HostResult, Status
from bastion.transport.base import OutputSink

LISTED = 50
"""Paths listed per host and kind in text output (``-o json`` lists them all)."""


def listed(lines: Sequence[str], what: str) -> list[str]:
    """At most `LISTED` of ``lines``, then how many more ``what`` there are."""
    if len(lines) <= LISTED:
        return list(lines)
    return [*lines[:LISTED], f"... and {len(lines) - LISTED} more {what} (-o json lists them all)"]


def file_result(
    host: Host, report: FileReport, lines: Sequence[str], emit: OutputSink
) -> HostResult:
    """Show ``lines`` as the host's output and sum the report up: failed if any path failed."""
    text = "".join(f"{line}\n" for line in lines)
    emit("stdout", text)
    return HostResult(
        host=host.name,
        address=host.address,
        status=Status.FAILED if report.failed else Status.OK,
        stdout=text,
        error=_failure_summary(report.failed),
        files=report,
    )


def failure_lines(failed: Sequence[FileFailure]) -> list[str]:
    return listed([f"failed  {f.path}: {f.error}" for f in failed], "failed")


def _failure_summary(failed: Sequence[FileFailure]) -> str | None:
    if not failed:
        return None
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    return f"{failed[0].path}: {failed[0].error}{more}"
