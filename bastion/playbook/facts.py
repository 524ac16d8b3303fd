"""``facts: true``: each host's facts (`bastion.facts`) gathered once for the whole run.

The same read-only probe as `bastion facts` (on stdin, nothing in the process table), run
through the executor with the play's connection options inside the running event loop.
The facts are then a host's ``facts`` (``{{ facts.kernel }}``) and every other host's
``hosts.NAME.facts``, as a registered value would be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bastion.executor import MOSH_MODES, RunOptions, execute
from bastion.executor import Task as CommandTask
from bastion.facts.collect import DEFAULT_TIMEOUT_S, KEEP_OUTPUT_CHARS, PROBE_COMMAND, probe_script
from bastion.facts.parse import HostFacts, parse_facts
from bastion.models import Host, HostResult, Status

FACTS_STEP = "gather facts"
"""The name of the implicit first step of a play with ``facts: true``."""


async def gather(
    hosts: Sequence[Host], options: RunOptions
) -> list[tuple[HostResult, HostFacts | None]]:
    """Each host's probe result and facts (None when the probe failed), in host order."""
    transport = "asyncssh" if options.transport in MOSH_MODES else options.transport
    probe = replace(
        options,
        timeout=options.timeout or DEFAULT_TIMEOUT_S,
        stdin=probe_script(),
        keep_output_chars=KEEP_OUTPUT_CHARS,
        durable=False,  # the probe reads only and is quick: a plain command
        transport=transport,
    )
    results = await execute([CommandTask(h, PROBE_COMMAND) for h in hosts], probe, _ignore)
    return [
        (result, parse_facts(result.stdout) if result.status is Status.OK else None)
        for result in results
    ]


def _ignore(event: object) -> None:
    """The probe's output is data for templates, not for the operator's terminal."""
