"""Open-file limits: raise the soft limit when a run needs more descriptors than it allows.

Each host in progress holds a socket, and with ``--out-dir`` two open files besides. Most
systems start processes with a soft ``RLIMIT_NOFILE`` of 1024 and a hard limit far above it;
a run of 1,000 hosts at once would fail its last connections with "Too many open files".
Like OpenSSH's own servers, bastion raises its soft limit up to the hard one when it needs
to, and when even the hard limit is too low it runs fewer hosts at once instead of failing.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

RESERVED_DESCRIPTORS = 32
"""Descriptors a run holds besides its hosts': stdio, the event loop, logs, the record."""


@dataclass(frozen=True, slots=True)
class FileLimitFit:
    """How many hosts may run at once within the open-files limit, and what was done for it."""

    forks: int
    """The concurrency to use: the one asked for, or less when the hard limit is too low."""
    wanted: int
    """Hosts that would be in progress at once without a limit: ``min(forks, hosts)``."""
    soft_before: int
    soft_after: int
    hard: int

    @property
    def raised(self) -> bool:
        return self.soft_after > self.soft_before

    def shortfall_message(self) -> str | None:
        """What to tell the user when fewer hosts run at once than asked, else None."""
        if self.forks >= self.wanted:
            return None
        return (
            f"the open-files limit (ulimit -Hn) is {self.hard}, too low for {self.wanted} hosts at "
            f"once; running {self.forks} at a time (raise the hard limit to go faster)"
        )

    def summary_note(self) -> str:
        """The line the run's summary ends with when forks were lowered."""
        return (
            f"ran at most {self.forks} of {self.wanted} hosts at once: the open-files "
            f"limit (ulimit -Hn) is {self.hard}"
        )


def descriptors_needed(forks: int, hosts: int, per_host: int) -> int:
    """Descriptors for ``min(forks, hosts)`` hosts in progress, plus the run's own."""
    return max(0, min(forks, hosts)) * per_host + RESERVED_DESCRIPTORS


def _limit_value(value: int) -> int:
    """RLIM_INFINITY as a large number, so limits compare as integers."""
    return 2**31 - 1 if value == resource.RLIM_INFINITY else value


def fit_forks_to_file_limit(forks: int, hosts: int, per_host: int) -> FileLimitFit:
    """Raise the soft limit as far as the run needs (at most to the hard limit); fit forks.

    The soft limit is only ever raised, never lowered, and only when the run needs it.
    """
    soft_raw, hard_raw = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft, hard = _limit_value(soft_raw), _limit_value(hard_raw)
    needed = descriptors_needed(forks, hosts, per_host)
    if needed > soft:
        target = min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard_raw))
        except (ValueError, OSError):
            target = soft  # some sandboxes refuse any change: live with what there is
        new_soft = target
    else:
        new_soft = soft
    usable = (new_soft - RESERVED_DESCRIPTORS) // max(1, per_host)
    fitted = forks if needed <= new_soft else max(1, min(forks, usable))
    return FileLimitFit(
        forks=fitted,
        wanted=max(1, min(forks, hosts)),
        soft_before=soft,
        soft_after=new_soft,
        hard=hard,
    )


def raise_soft_limit_to_hard() -> tuple[int, int]:
    """Raise the soft open-files limit to the hard one; (soft before, soft after).

    For a long-lived process whose descriptor needs are not known up front: the agent holds
    one connection per host across runs, so 1,000 hosts would pass a soft limit of 1024.
    """
    soft_raw, hard_raw = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft = _limit_value(soft_raw)
    if soft_raw == hard_raw:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard_raw, hard_raw))
    except (ValueError, OSError):
        return soft, soft  # some sandboxes refuse any change: live with what there is
    return soft, _limit_value(hard_raw)
