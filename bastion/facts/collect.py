"""Gathering facts: the read-only probe on every host through the executor, once per run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib.resources import files

from bastion.executor import RunOptions, Task, execute
from bastion.facts.parse import HostFacts, parse_facts
from bastion.models import Event, Host, HostResult, Status
from bastion.transport.names import MOSH_MODES

PROBE_COMMAND = "sh -s"
"""The probe arrives on stdin, so nothing of it shows in the node's process table."""
DEFAULT_TIMEOUT_S = 60.0
KEEP_OUTPUT_CHARS = 256 * 1024
"""Far more than any host's facts; a node that prints more cannot make the bastion keep it."""


@dataclass(frozen=True, slots=True)
class HostFactsResult:
    """One host's facts, or why there are none (the run's `HostResult` says how it ended)."""

    result: HostResult
    facts: HostFacts | None


@cache
def probe_script() -> bytes:
    """The probe's text, shipped with the package."""
    return files("bastion.facts").joinpath("probe.sh").read_bytes()


def probe_options(options: RunOptions) -> RunOptions:
    """The run's options for the probe: its stdin, timeout and output bound, a plain command
    (never durable; mosh hosts are probed over SSH), the run's transport and agent kept."""
    transport = "asyncssh" if options.transport in MOSH_MODES else options.transport
    return replace(
        options,
        timeout=options.timeout or DEFAULT_TIMEOUT_S,
        stdin=probe_script(),
        keep_output_chars=KEEP_OUTPUT_CHARS,
        durable=False,
        transport=transport,
    )


async def gather(
    hosts: Sequence[Host],
    options: RunOptions,
    emit: Callable[[Event], None] = lambda event: None,
) -> list[HostFactsResult]:
    """Facts of every host, in host order, inside a running event loop (playbooks)."""
    results = await execute(
        [Task(host, PROBE_COMMAND) for host in hosts], probe_options(options), emit
    )
    return [
        HostFactsResult(result, parse_facts(result.stdout) if result.status is Status.OK else None)
        for result in results
    ]


def gather_facts(
    hosts: Sequence[Host],
    options: RunOptions,
    emit: Callable[[Event], None] = lambda event: None,
) -> list[HostFactsResult]:
    """Facts of every host, in host order; a host that fails is a result, never raised."""
    return asyncio.run(gather(hosts, options, emit))
