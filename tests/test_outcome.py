"""The run's exit code, as documented: 0 ok, 1 failed/timeout, 3 unreachable (wins over 1)."""

from __future__ import annotations

import pytest

from bastion.models import HostResult, Status
from bastion.outcome import exit_code


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
    ],
)
def test_exit_code(statuses: tuple[Status, ...], expected: int) -> None:
    assert exit_code(results(*statuses)) == expected
