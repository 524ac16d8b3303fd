"""The transports' names, in one place: what an inventory, ``--transport`` and the router say."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from bastion.errors import UsageError
from bastion.models import Host


class TransportName(StrEnum):
    """Every way bastion reaches a host."""

    ASYNCSSH = "asyncssh"
    """The default: one asyncio connection per host."""
    PARAMIKO = "paramiko"
    """paramiko, in worker threads."""
    MOSH = "mosh"
    """Commands as durable jobs read through a mosh session (collected over asyncssh)."""
    AUTO = "auto"
    """``--transport`` only: durable jobs over asyncssh, moved to mosh after drops."""
    AGENT = "agent"
    """Not chosen by users: asyncssh hosts of a plain run while ``bastion agent`` runs."""


HOST_TRANSPORTS: tuple[TransportName, ...] = (
    TransportName.ASYNCSSH,
    TransportName.PARAMIKO,
    TransportName.MOSH,
)
"""What an inventory's ``transport:`` may name."""
RUN_TRANSPORTS: tuple[TransportName, ...] = (*HOST_TRANSPORTS, TransportName.AUTO)
"""What ``--transport`` accepts."""
MOSH_MODES: Mapping[str, str] = {TransportName.MOSH: "first", TransportName.AUTO: "auto"}
"""Transports that run durable jobs through mosh, and how (see `DurableJob.mosh`)."""


def check_transports(hosts: Sequence[Host], override: str | None = None) -> None:
    """Refuse, before connecting anywhere, a host whose transport this build does not have."""
    if override is not None and override not in RUN_TRANSPORTS:
        raise UsageError(
            f"unknown transport {override!r} (available: {', '.join(RUN_TRANSPORTS)})",
            source="--transport",
        )
    for host in hosts:
        if override is None and host.transport not in HOST_TRANSPORTS:
            raise UsageError(
                f"host {host.name}: transport {host.transport!r} is not available "
                f"in this version (available: {', '.join(HOST_TRANSPORTS)})"
            )
