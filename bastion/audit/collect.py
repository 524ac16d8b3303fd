"""Collection: the probe on every selected host through the executor, one round trip each."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bastion.audit.observation import Coverage, HostObservation
from bastion.audit.probe import PROBE_COMMAND, new_nonce, probe_script
from bastion.audit.probe_output import parse_probe_output
from bastion.executor import RunOptions, Task, run
from bastion.models import Event, Host, HostResult, Status

# A probe that needs longer than this on one host is stuck (a hung NFS home, say).
DEFAULT_PROBE_TIMEOUT_S = 120.0
PROBE_OUTPUT_CHARS = 16 * 1024 * 1024
"""What one host's probe output may be; past it the rest is dropped and the host is not fully
audited (its end marker is lost), so a hostile node cannot fill the bastion's memory."""


def collect(
    hosts: Sequence[Host],
    options: RunOptions,
    emit: Callable[[Event], None] = lambda event: None,
    nonce: str | None = None,
) -> list[HostObservation]:
    """Probe every host; a host that fails is an observation with its coverage, never raised.

    ``nonce`` frames the probe's output (a fresh random one for each run when None).
    """
    nonce = nonce or new_nonce()
    options = RunOptions(
        forks=options.forks,
        timeout=options.timeout or DEFAULT_PROBE_TIMEOUT_S,
        stdin=probe_script(nonce),
        connect=options.connect,
        keep_output_chars=PROBE_OUTPUT_CHARS,
    )
    results = run([Task(host, PROBE_COMMAND) for host in hosts], options, emit)
    by_name = {host.name: host for host in hosts}
    return [observe(result, by_name[result.host], nonce) for result in results]


def observe(result: HostResult, host: Host, nonce: str) -> HostObservation:
    """One host's observation from its probe result."""
    if result.status is Status.UNREACHABLE:
        seen = HostObservation(
            host=result.host, address=result.address, coverage=Coverage.UNREACHABLE,
            error=result.error or "unreachable",
        )  # fmt: skip
    else:
        seen = parse_probe_output(result.host, result.address, result.stdout, nonce)
        if len(result.stdout) >= PROBE_OUTPUT_CHARS:
            seen.coverage = Coverage.FAILED
            seen.error = (
                f"probe output over {PROBE_OUTPUT_CHARS:,} characters: the rest was dropped"
            )
        elif result.status is not Status.OK:
            seen.coverage = Coverage.FAILED
            detail = result.stderr.strip().split("\n")[-1:] or [result.status.value]
            seen.error = result.error or detail[0][:300]
    seen.groups = host.groups
    return seen
