"""Connection attempts with jittered exponential backoff, shared by the SSH transports."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

BACKOFF_BASE_S = 0.25

_T = TypeVar("_T")


class ConnectFailure(Exception):
    """A connection attempt failed; ``transient`` failures are worth another attempt."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


async def connect_with_retries(connect: Callable[[], Awaitable[_T]], retries: int) -> _T:
    """Call ``connect`` until it succeeds, fails for good, or ``retries`` extra tries are spent.

    Only transient failures (refused, reset, timed out) are tried again, after a jittered,
    doubling pause so that many hosts failing at once do not retry in lockstep. The final
    `ConnectFailure` says how many attempts were made.
    """
    attempts = 1 + max(0, retries)
    failure = ConnectFailure("no attempt made", transient=False)
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(BACKOFF_BASE_S * 2**attempt * random.uniform(0.5, 1.5))
        try:
            return await connect()
        except ConnectFailure as exc:
            failure = exc
            if not exc.transient:
                break
    suffix = f" (after {attempts} attempts)" if failure.transient and attempts > 1 else ""
    raise ConnectFailure(failure.message + suffix, transient=failure.transient)
