"""The run's exit code, as documented: 0 ok, 1 failed/timeout, 3 unreachable (wins over 1)."""

from __future__ import annotations

import pytest

from bastion.models import HostResult, Status
from bastion.outcome import exit_code, worst_remote_exit


def results(*statuses: Status) -> list[HostResult]:
    return [HostResult(f"h{i}", "127.0.0.1", s) for i, s in enumerate(statuses)]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ((Status.OK, Status.OK), 0),
        ((Status.OK, Status.FAILED), 1),
        ((Status.OK, Status.TIMEOUT), 1),
        ((Status.FAILED, Status.UNREACHABLE), 3),
        ((Status.UNREACHABLE,), 3),
        ((Status.OK, Status.SKIPPED), 0),
        ((Status.OK, Status.INTERRUPTED, Status.UNREACHABLE), 130),
    ],
)
def test_exit_code(statuses: tuple[Status, ...], expected: int) -> None:
    assert exit_code(results(*statuses)) == expected


@pytest.mark.parametrize(
    ("ended", "expected"),
    [
        ([], 0),
        ([(Status.OK, 0), (Status.OK, 0)], 0),
        ([(Status.OK, 0), (Status.FAILED, 7), (Status.FAILED, 3)], 7),
        ([(Status.FAILED, 1), (Status.UNREACHABLE, None)], 255),  # ssh's 255
        ([(Status.TIMEOUT, None), (Status.FAILED, 2)], 255),
        ([(Status.FAILED, None)], 255),  # killed by a signal
        ([(Status.FAILED, 4), (Status.SKIPPED, None)], 4),  # never ran: not counted
    ],
)
def test_worst_remote_exit_is_pdsh_and_clush_s(
    ended: list[tuple[Status, int | None]], expected: int
) -> None:
    hosts = [HostResult(f"h{i}", "127.0.0.1", s, exit_status=rc) for i, (s, rc) in enumerate(ended)]
    assert worst_remote_exit(hosts) == expected
