"""Connection attempts with jittered exponential backoff, shared by the SSH transports."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bastion.models import Reason

BACKOFF_BASE_S = 0.25

_T = TypeVar("_T")

NETWORK_REASONS = frozenset({Reason.REFUSED, Reason.CONNECT_TIMEOUT, Reason.DROPPED})
"""Failures of the network rather than of trust or configuration: a durable job keeps trying
these within its reconnect window; host-key and authentication failures end it at once."""


class ConnectFailure(Exception):
    """A connection attempt failed, and why (``reason``).

    ``transient`` is True for failures of the network (`NETWORK_REASONS`); which of those a
    run tries again is `connect_with_retries`'s decision."""

    def __init__(
        self, message: str, *, reason: Reason, final: bool = False, answered: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.final = final
        """Already the outcome of retries (a shared jump host's): never tried again."""
        self.answered = answered
        """For a connect timeout: the TCP connection was made, the SSH handshake stalled
        (a busy sshd, a lossy link), unlike a dead or blackholed host that never answers."""

    @property
    def transient(self) -> bool:
        return self.reason in NETWORK_REASONS


def worth_retrying(failure: ConnectFailure, *, retry_timeouts: bool) -> bool:
    """Whether a run tries ``failure`` again: a dropped handshake (a lossy link) always; a
    connect timeout when the host answered and its handshake stalled (a busy sshd), else
    only when asked (a dead or blackholed host would hold the run for several timeouts); a
    refusal never (nothing listens there now; as ssh and pdsh)."""
    if failure.final:
        return False
    if failure.reason is Reason.DROPPED:
        return True
    if failure.reason is Reason.CONNECT_TIMEOUT:
        return failure.answered or retry_timeouts
    return False


async def connect_with_retries(
    connect: Callable[[], Awaitable[_T]], retries: int, *, retry_timeouts: bool = False
) -> _T:
    """Call ``connect`` until it succeeds, fails for good, or ``retries`` extra tries are spent.

    Only failures `worth_retrying` are tried again, after a jittered, doubling pause so that
    many hosts failing at once do not retry in lockstep. The final `ConnectFailure` says how
    many attempts were made.
    """
    attempts = 1 + max(0, retries)
    failure = ConnectFailure("no attempt made", reason=Reason.INTERNAL)
    made = 0
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(BACKOFF_BASE_S * 2**attempt * random.uniform(0.5, 1.5))
        made += 1
        try:
            return await connect()
        except ConnectFailure as exc:
            failure = exc
            if not worth_retrying(exc, retry_timeouts=retry_timeouts):
                break
    suffix = f" (after {made} attempts)" if made > 1 else ""
    raise ConnectFailure(failure.message + suffix, reason=failure.reason)
