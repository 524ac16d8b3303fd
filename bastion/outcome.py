"""What a whole run came to: the exit code and the per-status host sets."""

from __future__ import annotations

from collections.abc import Iterable

from bastion.models import HostResult, Status

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130


def exit_code(results: Iterable[HostResult]) -> int:
    """0 all ok; 130 if a host was interrupted; 3 if any host was unreachable; else 1 if any
    failed or timed out. (A run stopped by SIGTERM says 143 itself: cli/termination.py.)"""
    statuses = {result.status for result in results}
    if Status.INTERRUPTED in statuses:
        return EXIT_INTERRUPTED
    if Status.UNREACHABLE in statuses:
        return EXIT_UNREACHABLE
    if statuses & {Status.FAILED, Status.TIMEOUT}:
        return EXIT_FAILED
    return EXIT_OK


EXIT_NO_STATUS = 255
"""``-S``: what a host counts for when its command ended without an exit status of its own
(unreachable, timed out, killed by a signal): ssh's own exit status for such an ending."""


def worst_remote_exit(results: Iterable[HostResult]) -> int:
    """pdsh's and clush's ``-S``: the largest exit status of the remote commands.

    A host that did not end with an exit status counts as 255, as ``ssh`` exits 255 when the
    connection fails; hosts skipped by a batch plan never ran and do not count. 0 for no host.
    """
    worst = 0
    for result in results:
        if result.status is Status.SKIPPED:
            continue
        if result.exit_status is None:
            code = EXIT_OK if result.status is Status.OK else EXIT_NO_STATUS
        else:
            code = result.exit_status
        worst = max(worst, code)
    return worst


def first_error_line(result: HostResult) -> str:
    """The line that best explains why a host did not succeed."""
    if result.status in (Status.FAILED, Status.TIMEOUT):
        for line in result.stderr.splitlines():
            if line.strip():
                reason = result.error or "failed"
                return f"{reason}: {line.strip()}"
    return result.error or ""
