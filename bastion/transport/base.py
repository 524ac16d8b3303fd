"""The interface every transport implements, and the options they share."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from bastion.hostkeys import HostKeyPolicy
from bastion.models import Host, HostResult, Reason, Stream

OutputSink = Callable[[Stream, str], None]
"""Receives decoded output chunks as they arrive (not necessarily whole lines)."""


class OutputFlow(Protocol):
    """Back-pressure from where a command's output goes (the agent's client socket)."""

    def throttle(self, resume: Callable[[], None]) -> bool:
        """Asked after each chunk is handed to the sink: True when the transport must stop
        reading this command's output now; it then calls ``resume`` exactly once, when the
        consumer has drained, and the transport reads again."""
        ...


DEFAULT_RETRIES = 2


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """How connections are opened: shared by every host of a run."""

    connect_timeout: float | None = None
    """Overrides each host's inventory ``connect_timeout`` when set."""
    retries: int = DEFAULT_RETRIES
    """Extra attempts after a handshake that dropped (a lossy link); see `retry_timeouts`.
    A refused connection is never tried again (as ssh and pdsh)."""
    retry_timeouts: bool = False
    """Also try a connect timeout again: off by default, so a dead or blackholed host costs
    one connect timeout, not ``retries + 1`` of them."""
    keepalive_interval: float = 15.0
    keepalive_count_max: int = 3
    max_handshakes_per_server: int = 8
    """In-flight handshakes per sshd, kept under OpenSSH's default ``MaxStartups 10``."""
    max_handshakes: int = 64
    """In-flight handshakes in all, so a burst does not starve the CPU."""
    host_keys: HostKeyPolicy = field(default_factory=HostKeyPolicy)
    jump_hosts: Mapping[str, Host] = field(default_factory=dict)
    """Inventory hosts by name, so a host's ``jump`` can name one of them."""


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """What to run on a host."""

    command: str
    timeout: float | None = None
    stdin: bytes | None = None
    keep_output_chars: int | None = None
    """Characters of each stream the result keeps (its start); None: the default limit,
    `session.DEFAULT_KEEP_CHARS` (64 Ki): every path is bounded. Every byte is streamed to
    the output sink either way, so consumers that write as output arrives (inline, json and
    grouped spools, --out-dir) see it all while a host printing 300 MB costs no memory."""
    flow: OutputFlow | None = field(default=None, compare=False)
    """When set, the transport pauses reading the command's output while ``flow`` says so
    (the SSH window then stops the remote command), instead of buffering it."""


class Transport(Protocol):
    """Runs commands on hosts; every outcome, including failure to connect, is a result."""

    name: str

    async def run(self, host: Host, spec: CommandSpec, on_output: OutputSink) -> HostResult:
        """Run ``spec`` on ``host``, streaming output to ``on_output``."""
        ...

    async def close(self) -> None:
        """Close every connection this transport still holds."""
        ...

    async def open_link(self, host: Host, *, retry: bool) -> Link:
        """A plain connection to ``host`` (see `LinkOpener`); durable jobs drive it."""
        ...


DataSink = Callable[[Stream, bytes], None]
"""Receives raw output bytes as they arrive; durable jobs count them to resume at an offset."""


class LinkLost(Exception):
    """The connection went away before the command's exit status arrived."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LinkFailure(Exception):
    """A connection could not be opened, and why; ``transient`` failures (the network's, not
    trust's: see `retry.NETWORK_REASONS`) are worth another attempt."""

    def __init__(self, message: str, *, reason: Reason, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.transient = transient


class Link(Protocol):
    """An open connection to one host that runs commands one after another."""

    async def exec(self, command: str, on_data: DataSink) -> int:
        """Run ``command`` (stdin empty), stream its raw output; its exit status.

        Raises `LinkLost` when the connection drops first; a command killed by a signal
        reports 128 + the signal's number, as a shell does.
        """
        ...

    def close(self) -> None:
        """Close the connection (without waiting)."""
        ...


class LinkOpener(Protocol):
    """A transport that can hand out plain connections, which durable jobs drive themselves."""

    async def open_link(self, host: Host, *, retry: bool) -> Link:
        """Connect to ``host``; with ``retry``, transient failures get the run's retries.

        Raises `LinkFailure`.
        """
        ...
