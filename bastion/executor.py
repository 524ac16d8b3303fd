"""Fans a plan out to hosts under concurrency limits and streams events as hosts progress.

Per-host outcomes are `HostResult`s, never exceptions. Every consumer (live progress, the output
renderers, the run record, the history log) reads the same event stream.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.errors import UsageError
from bastion.models import (
    Event,
    Host,
    HostFinished,
    HostOutput,
    HostResult,
    HostStarted,
    Status,
    Stream,
)
from bastion.transport.base import CommandSpec, ConnectOptions, OutputSink, Transport

if TYPE_CHECKING:
    from bastion.durable.jobs import DurablePolicy

EventSink = Callable[[Event], None]

KNOWN_TRANSPORTS = ("asyncssh", "paramiko", "mosh")
RUN_TRANSPORTS = (*KNOWN_TRANSPORTS, "auto")
"""What ``--transport`` accepts: a transport, or auto (SSH, moving a host to mosh after drops)."""
MOSH_MODES = {"mosh": "first", "auto": "auto"}
"""Transports that run durable jobs through mosh, and how (see `DurableJob.mosh`)."""
PARTIAL_LINE_LIMIT = 64 * 1024
"""A line longer than this is passed on in pieces rather than held back."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Limits and policies for one run."""

    forks: int = 64
    timeout: float | None = None
    stdin: bytes | None = None
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    keep_output_chars: int | None = None
    """Characters of each stream a `HostResult` keeps; None keeps all (see `CommandSpec`)."""
    transport: str | None = None
    """Every host's transport (``--transport``); None: each host's own (the inventory's)."""
    durable: bool = False
    """Run each command as a durable job: started once, resumed after drops (`durable`)."""
    durable_policy: DurablePolicy | None = None
    """Reconnect and keepalive settings of durable jobs; None for the defaults."""
    agent: Path | None = None
    """The agent's socket: asyncssh hosts of a plain run go through it (docs/agent.md)."""
    make_transport: Callable[[str, ConnectOptions], Transport] | None = field(
        default=None, compare=False
    )
    """Builds each transport instead of the real ones (tests: `bastion.testing.FakeTransport`)."""

    def transport_of(self, host: Host) -> str:
        """The transport ``host`` is configured for: ``--transport``, else the inventory's."""
        return self.transport or host.transport


@dataclass(frozen=True, slots=True)
class Task:
    """One host and the exact command it will run."""

    host: Host
    command: str


def check_transports(hosts: Sequence[Host], override: str | None = None) -> None:
    """Refuse, before connecting anywhere, a host whose transport this build does not have."""
    if override is not None and override not in RUN_TRANSPORTS:
        raise UsageError(
            f"unknown transport {override!r} (available: {', '.join(RUN_TRANSPORTS)})",
            source="--transport",
        )
    for host in hosts:
        if override is None and host.transport not in KNOWN_TRANSPORTS:
            raise UsageError(
                f"host {host.name}: transport {host.transport!r} is not available "
                f"in this version (available: {', '.join(KNOWN_TRANSPORTS)})"
            )


def _new_transport(name: str, options: ConnectOptions, agent: Path | None = None) -> Transport:
    if name == "agent" and agent is not None:
        from bastion.transport.agent_transport import AgentTransport

        return AgentTransport(agent, options)
    if name == "asyncssh":
        from bastion.transport.asyncssh_transport import AsyncsshTransport

        return AsyncsshTransport(options)
    if name == "paramiko":
        from bastion.transport.paramiko_transport import ParamikoTransport

        return ParamikoTransport(options)
    raise UsageError(f"unknown transport {name!r}")


class _LineAssembler:
    """Turns a host's output chunks into events that hold whole lines."""

    def __init__(self, host: str, emit: EventSink) -> None:
        self._host = host
        self._emit = emit
        self._pending: dict[Stream, str] = {"stdout": "", "stderr": ""}

    def feed(self, stream: Stream, text: str) -> None:
        buffered = self._pending[stream] + text
        cut = buffered.rfind("\n") + 1
        if cut == 0 and len(buffered) < PARTIAL_LINE_LIMIT:
            self._pending[stream] = buffered
            return
        if cut == 0:
            cut = len(buffered)
        self._pending[stream] = buffered[cut:]
        self._emit(HostOutput(self._host, stream, buffered[:cut]))

    def flush(self) -> None:
        for stream, rest in self._pending.items():
            if rest:
                self._emit(HostOutput(self._host, stream, rest))
                self._pending[stream] = ""


HostWork = Callable[[Transport, Host, OutputSink], Awaitable[HostResult]]
"""What to do on one host with its transport: run a command, copy files, fetch files."""


def command_work(commands: Mapping[str, str], options: RunOptions) -> HostWork:
    """Run each host's command (by host name) with the run's timeout and stdin.

    With ``--durable``, or on a host whose transport is mosh or auto, the command runs as a
    durable job: started once on the node, resumed after dropped connections.
    """
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)

    async def run_command(transport: Transport, host: Host, sink: OutputSink) -> HostResult:
        spec = CommandSpec(
            commands[host.name], options.timeout, options.stdin, options.keep_output_chars
        )
        mosh = MOSH_MODES.get(options.transport_of(host))
        if not options.durable and mosh is None:
            return await transport.run(host, spec, sink)
        from bastion.durable.jobs import DurableJob, DurablePolicy

        policy = options.durable_policy or DurablePolicy()
        job = DurableJob(transport, host, spec, f"{run_id}-{host.name}", sink, policy, mosh=mosh)
        return await job.run()

    return run_command


async def execute(tasks: Sequence[Task], options: RunOptions, emit: EventSink) -> list[HostResult]:
    """Run every task, at most ``options.forks`` hosts at a time; results in task order."""
    commands = {task.host.name: task.command for task in tasks}
    work = command_work(commands, options)
    return await execute_work([task.host for task in tasks], options, emit, work)


async def execute_work(
    hosts: Sequence[Host], options: RunOptions, emit: EventSink, work: HostWork
) -> list[HostResult]:
    """Do ``work`` on every host, at most ``options.forks`` at a time; results in host order."""
    check_transports(hosts, options.transport)
    transports: dict[str, Transport] = {}
    slots = asyncio.Semaphore(max(1, options.forks))
    connect = options.connect
    if options.durable or any(options.transport_of(h) in MOSH_MODES for h in hosts):
        from bastion.durable.jobs import DurablePolicy

        policy = options.durable_policy or DurablePolicy()
        # Short keepalives: a durable job notices a silent link in seconds, then reconnects.
        connect = replace(
            connect,
            keepalive_interval=policy.keepalive_interval_s,
            keepalive_count_max=policy.keepalive_count_max,
        )

    async def run_one(host: Host) -> HostResult:
        async with slots:
            emit(HostStarted(host.name))
            name = options.transport_of(host)
            mosh = name in MOSH_MODES
            if mosh:
                # mosh carries no byte stream: its jobs are durable, collected over asyncssh.
                name = "asyncssh"
            if name == "asyncssh" and options.agent and not options.durable and not mosh:
                name = "agent"
            transport = transports.get(name)
            if transport is None:
                transport = transports[name] = (
                    options.make_transport(name, connect)
                    if options.make_transport is not None
                    else _new_transport(name, connect, options.agent)
                )
            lines = _LineAssembler(host.name, emit)
            try:
                result = await work(transport, host, lines.feed)
            except Exception as exc:  # a bug must not cost the other hosts their output
                if os.environ.get("BASTION_DEBUG"):
                    traceback.print_exc(file=sys.stderr)
                result = HostResult(
                    host=host.name,
                    address=host.address,
                    status=Status.FAILED,
                    error=f"internal error (please report): {type(exc).__name__}: {exc}",
                )
            lines.flush()
            emit(HostFinished(result))
            return result

    try:
        return list(await asyncio.gather(*(run_one(host) for host in hosts)))
    finally:
        await asyncio.gather(*(t.close() for t in transports.values()), return_exceptions=True)


def run(tasks: Sequence[Task], options: RunOptions, emit: EventSink) -> list[HostResult]:
    """Synchronous entry point: run the tasks on a fresh event loop."""
    return asyncio.run(execute(tasks, options, emit))
