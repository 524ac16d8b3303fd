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

from bastion.models import (
    Event,
    Host,
    HostFinished,
    HostOutput,
    HostResult,
    HostStarted,
    Reason,
    Status,
    Stream,
)
from bastion.routing import Route, open_transport, route
from bastion.transport.base import CommandSpec, ConnectOptions, OutputSink, Transport
from bastion.transport.identity import check_identity_files
from bastion.transport.names import TransportName, check_transports

if TYPE_CHECKING:
    from bastion.durable.jobs import DurablePolicy

EventSink = Callable[[Event], None]

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
    """Characters of each stream a `HostResult` keeps; None: the default limit (see
    `CommandSpec`)."""
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

    def route_of(self, host: Host) -> Route:
        """How ``host`` is reached in this run (`routing.route`)."""
        return route(
            host, override=self.transport, durable=self.durable, agent=self.agent is not None
        )


@dataclass(frozen=True, slots=True)
class Task:
    """One host and the exact command it will run."""

    host: Host
    command: str


def _with_jump_hosts(hosts: Sequence[Host], inventory: Mapping[str, Host]) -> list[Host]:
    """``hosts`` and the inventory hosts on their jump chains (their keys are used too)."""
    found = list(hosts)
    for host in hosts:
        jump = inventory.get(host.jump) if host.jump else None
        while jump is not None and jump not in found:
            found.append(jump)
            jump = inventory.get(jump.jump) if jump.jump else None
    return found


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
        way = options.route_of(host)
        if not way.durable:
            return await transport.run(host, spec, sink)
        from bastion.durable.jobs import DurableJob, DurablePolicy

        policy = options.durable_policy or DurablePolicy()
        job_id = f"{run_id}-{host.name}"
        job = DurableJob(transport, host, spec, job_id, sink, policy, mosh=way.mosh)
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
    check_identity_files(_with_jump_hosts(hosts, options.connect.jump_hosts))
    transports: dict[TransportName, Transport] = {}
    slots = asyncio.Semaphore(max(1, options.forks))
    connect = options.connect
    if any(options.route_of(h).durable for h in hosts):
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
            name = options.route_of(host).connection
            transport = transports.get(name)
            if transport is None:
                transport = transports[name] = (
                    options.make_transport(name, connect)
                    if options.make_transport is not None
                    else open_transport(name, connect, options.agent)
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
                    reason=Reason.INTERNAL,
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
