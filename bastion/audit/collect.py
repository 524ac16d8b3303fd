"""Collection: the probe on every selected host through the executor, one round trip each."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bastion.audit.observation import Coverage, HostObservation
from bastion.audit.probe import PROBE_COMMAND, probe_script
from bastion.audit.probe_output import parse_probe_output
from bastion.executor import RunOptions, Task, run
from bastion.models import Event, Host, HostResult, Status

# A probe that needs longer than this on one host is stuck (a hung NFS home, say).
DEFAULT_PROBE_TIMEOUT_S = 120.0


def collect(
    hosts: Sequence[Host],
    options: RunOptions,
    emit: Callable[[Event], None] = lambda event: None,
) -> list[HostObservation]:
    """Probe every host; a host that fails is an observation with its coverage, never raised."""
    if options.stdin is None:
        options = RunOptions(
            forks=options.forks,
            timeout=options.timeout or DEFAULT_PROBE_TIMEOUT_S,
            stdin=probe_script(),
            connect=options.connect,
        )
    results = run([Task(host, PROBE_COMMAND) for host in hosts], options, emit)
    by_name = {host.name: host for host in hosts}
    return [observe(result, by_name[result.host]) for result in results]


def observe(result: HostResult, host: Host) -> HostObservation:
    """One host's observation from its probe result."""
    if result.status is Status.UNREACHABLE:
        seen = HostObservation(
            host=result.host, address=result.address, coverage=Coverage.UNREACHABLE,
            error=result.error or "unreachable",
        )  # fmt: skip
    else:
        seen = parse_probe_output(result.host, result.address, result.stdout)
        if result.status is not Status.OK:
            seen.coverage = Coverage.FAILED
            detail = result.stderr.strip().splitlines()[-1:] or [result.status.value]
            seen.error = result.error or detail[0]
    seen.groups = host.groups
    return seen
