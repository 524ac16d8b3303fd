"""Gathering facts: the read-only probe on every host through the executor, once per run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from bastion.executor import RunOptions, Task, run
from bastion.facts.parse import HostFacts, parse_facts
from bastion.models import Event, Host, HostResult, Status

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


def gather_facts(
    hosts: Sequence[Host],
    options: RunOptions,
    emit: Callable[[Event], None] = lambda event: None,
) -> list[HostFactsResult]:
    """Facts of every host, in host order; a host that fails is a result, never raised."""
    options = RunOptions(
        forks=options.forks,
        timeout=options.timeout or DEFAULT_TIMEOUT_S,
        stdin=probe_script(),
        connect=options.connect,
        keep_output_chars=KEEP_OUTPUT_CHARS,
    )
    results = run([Task(host, PROBE_COMMAND) for host in hosts], options, emit)
    return [
        HostFactsResult(result, parse_facts(result.stdout) if result.status is Status.OK else None)
        for result in results
    ]
