"""Plain data shared by every layer: hosts, per-host results and the executor's events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

DEFAULT_TRANSPORT = "asyncssh"
DEFAULT_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Host:
    """One inventory host with its defaults already applied."""

    name: str
    address: str
    port: int = 22
    user: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    vars: Mapping[str, object] = field(default_factory=dict)
    jump: str | None = None
    """Another inventory host's name, or ``[user@]address[:port]``; reached as a ProxyJump."""
    transport: str = DEFAULT_TRANSPORT
    identity_file: str | None = None
    known_hosts: str | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    groups: tuple[str, ...] = ()
    """Names of the inventory groups this host belongs to, in inventory order."""


class Status(StrEnum):
    """How a host's run ended."""

    OK = "ok"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"
    """Not finished when Ctrl-C or SIGTERM stopped the run (its remote command was stopped)."""


class Reason(StrEnum):
    """Why a host did not succeed, as data (``HostResult.reason``; JSON Lines ``reason``).

    The human ``error`` says the same in words; code decides on this, never on the words.
    """

    AUTH = "auth"
    """The server refused every key offered."""
    HOST_KEY = "host_key"
    """The server's host key is unknown, changed, revoked or of a type not pinned."""
    REFUSED = "refused"
    """The address could not be reached: connection refused, unresolvable, no route."""
    CONNECT_TIMEOUT = "connect_timeout"
    """No SSH handshake within the connect timeout (a dead or blackholed host)."""
    DROPPED = "dropped"
    """The connection went away: during the handshake, or mid-command."""
    NO_SESSION = "no_session"
    """Connected, but the server would not open a session (the command never started)."""
    EXIT = "exit"
    """The command exited with a non-zero status."""
    SIGNAL = "signal"
    """The command was killed by a signal."""
    TIMEOUT = "timeout"
    """The command ran past ``--timeout`` and was stopped."""
    NOT_STARTED = "not_started"
    """The host was never tried (a rolling run stopped before its batch)."""
    INTERRUPTED = "interrupted"
    """The run was interrupted (Ctrl-C, SIGTERM) before the host finished."""
    INTERNAL = "internal"
    """A bug in bastion while handling this host (please report)."""


@dataclass(frozen=True, slots=True)
class FileFailure:
    """One path a copy or fetch could not handle on a host, and why."""

    path: str
    error: str


@dataclass(frozen=True, slots=True)
class FileReport:
    """What ``bastion copy`` or ``bastion fetch`` did on one host, path by path.

    For a copy, ``changed`` are the remote paths sent or whose mode or owner was set, and
    ``unchanged`` those already identical. For a fetch, ``changed`` are the local paths written.
    """

    kind: Literal["copy", "fetch"]
    changed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    failed: tuple[FileFailure, ...] = ()


@dataclass(frozen=True, slots=True)
class HostResult:
    """The outcome of running one command on one host; never an exception."""

    host: str
    address: str
    status: Status
    exit_status: int | None = None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    duration_s: float = 0.0
    files: FileReport | None = None
    """Set by ``copy`` and ``fetch`` only."""
    notes: tuple[str, ...] = ()
    """Remarks for the summary, such as reconnects or a switch of transport (not in JSON)."""
    reason: Reason | None = None
    """Why the host did not succeed, as data (None when it did); ``error`` says it in words."""

    @property
    def succeeded(self) -> bool:
        return self.status is Status.OK


Stream = Literal["stdout", "stderr"]


@dataclass(frozen=True, slots=True)
class HostStarted:
    """A host has been given a slot and its connection is being opened."""

    host: str


@dataclass(frozen=True, slots=True)
class HostOutput:
    """A chunk of output from one host; ``data`` holds whole lines except at the very end."""

    host: str
    stream: Stream
    data: str


@dataclass(frozen=True, slots=True)
class HostFinished:
    """A host is done; its result is final."""

    result: HostResult


Event = HostStarted | HostOutput | HostFinished
