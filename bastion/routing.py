"""Which transport carries a host's work, decided in one place; the executor only fans out.

A host's configured transport is ``--transport`` when given, else its inventory ``transport:``.
From it, and from ``--durable`` and a running agent, `route` says what opens the connections
(asyncssh, paramiko, or the agent's socket) and whether the command runs as a durable job, and
through mosh how. `open_transport` makes the transport for a route's connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bastion.models import Host
from bastion.transport.base import ConnectOptions, Transport
from bastion.transport.names import MOSH_MODES, TransportName


@dataclass(frozen=True, slots=True)
class Route:
    """How one host is reached."""

    connection: TransportName
    """What opens connections: ASYNCSSH, PARAMIKO or AGENT."""
    durable: bool
    """The command runs as a durable job (`bastion.durable.jobs.DurableJob`)."""
    mosh: str | None = None
    """For a durable job: None (SSH only), "first" (through mosh), "auto" (mosh after drops)."""


def route(host: Host, *, override: str | None, durable: bool, agent: bool) -> Route:
    """The route of ``host``: ``override`` is ``--transport``; ``agent``, whether one serves.

    mosh and auto make the command a durable job collected over asyncssh (mosh carries no
    byte stream); a plain asyncssh run goes through the agent when one serves; durable jobs
    never do (their links are direct).
    """
    configured = TransportName(override or host.transport)
    mosh = MOSH_MODES.get(configured)
    durable = durable or mosh is not None
    if configured is TransportName.PARAMIKO:
        return Route(TransportName.PARAMIKO, durable, mosh)
    if agent and not durable:
        return Route(TransportName.AGENT, durable=False)
    return Route(TransportName.ASYNCSSH, durable, mosh)


def open_transport(
    name: TransportName, options: ConnectOptions, agent_socket: Path | None = None
) -> Transport:
    """A new transport for ``name`` (imported only when first needed: start-up stays lean)."""
    if name is TransportName.AGENT and agent_socket is not None:
        from bastion.agent.client import AgentTransport

        return AgentTransport(agent_socket, options)
    if name is TransportName.PARAMIKO:
        from bastion.transport.paramiko_transport import ParamikoTransport

        return ParamikoTransport(options)
    from bastion.transport.asyncssh_transport import AsyncsshTransport

    return AsyncsshTransport(options)
