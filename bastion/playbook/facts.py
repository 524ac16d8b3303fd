"""``facts: true``: each host's facts (`bastion.facts`) gathered once for the whole run.

The same read-only probe as `bastion facts` (on stdin, nothing in the process table), run
through the executor with the play's connection options inside the running event loop.
The facts are then a host's ``facts`` (``{{ facts.kernel }}``) and every other host's
``hosts.NAME.facts``, as a registered value would be.
"""

from __future__ import annotations

from collections.abc import Sequence

from bastion.executor import RunOptions
from bastion.facts.collect import gather as gather_facts
from bastion.facts.parse import HostFacts
from bastion.models import Host, HostResult

FACTS_STEP = "gather facts"
"""The name of the implicit first step of a play with ``facts: true``."""


async def gather(
    hosts: Sequence[Host], options: RunOptions
) -> list[tuple[HostResult, HostFacts | None]]:
    """Each host's probe result and facts (None when the probe failed), in host order."""
    return [(entry.result, entry.facts) for entry in await gather_facts(hosts, options)]
