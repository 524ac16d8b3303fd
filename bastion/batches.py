"""Rolling batches with a failure budget: ``--batch``, ``--max-fail``, ``--pause``, ``--canary``.

The selected hosts are split into successive batches (``--batch 1,5,25%``: one host, then five,
then a quarter of the hosts at a time, the last size repeating, like Ansible's ``serial``). Each
batch runs to its end before the next starts. Once more hosts have not succeeded than
``--max-fail`` allows (a count, or a percentage of the selected hosts), or the ``--canary`` (a
first batch of one host) did not succeed, no further batch starts: the hosts left are reported
``skipped``, with the reason.

`run_in_batches` only orders and stops the batches; what a batch does is the caller's callback,
so ``run``, ``copy`` and playbook steps share it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bastion.errors import UsageError
from bastion.models import Host, HostResult, Status

RunBatch = Callable[[Sequence[Host]], Awaitable[list[HostResult]]]
BatchStarts = Callable[[int, int, Sequence[Host]], None]
"""Told (batch number from 1, number of batches, hosts) as each batch starts."""


@dataclass(frozen=True, slots=True)
class Amount:
    """A number of hosts, or a percentage of the selected hosts."""

    value: float
    percent: bool = False

    def of(self, total: int) -> float:
        return self.value * total / 100 if self.percent else self.value

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else f"{self.value:g}"


def parse_amount(text: str, *, source: str, allow_zero: bool) -> Amount:
    """``N`` or ``N%``; a bad one is a `UsageError` naming ``source``."""
    raw = text.strip()
    percent = raw.endswith("%")
    try:
        value = float(raw[:-1]) if percent else int(raw)
    except ValueError:
        raise UsageError(f"bad value {text!r}: expected N or N%", source=source) from None
    in_range = 0 <= value <= 100 if percent else value >= 0
    if not in_range or (value == 0 and not allow_zero):
        low = "0" if allow_zero else "more than 0"
        raise UsageError(
            f"bad value {text!r}: expected a count or a percentage (up to 100%), {low}",
            source=source,
        )
    return Amount(value, percent)


def parse_batch(spec: str) -> tuple[Amount, ...]:
    """``--batch 1,5,25%``: successive batch sizes, the last repeating."""
    parts = spec.split(",")
    if not all(part.strip() for part in parts):
        raise UsageError(
            f"bad batch sizes {spec!r}: expected N, N% or a list such as 1,5,25%", source="--batch"
        )
    return tuple(parse_amount(part, source="--batch", allow_zero=False) for part in parts)


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """How to roll through the selected hosts."""

    sizes: tuple[Amount, ...] = (Amount(100, percent=True),)
    max_fail: Amount | None = None
    """Hosts allowed not to succeed before no further batch starts; None: no limit."""
    pause_s: float = 0.0
    canary: bool = False

    def split(self, hosts: Sequence[Host]) -> list[list[Host]]:
        """The batches, in order; a percentage is of all selected hosts, at least one host."""
        total = len(hosts)
        rest = list(hosts)
        batches: list[list[Host]] = []
        if self.canary and rest:
            batches.append(rest[:1])
            rest = rest[1:]
        step = 0
        while rest:
            amount = self.sizes[min(step, len(self.sizes) - 1)]
            size = max(1, math.floor(amount.of(total)))
            batches.append(rest[:size])
            rest = rest[size:]
            step += 1
        return batches

    def over_budget(self, not_ok: int, total: int) -> bool:
        return self.max_fail is not None and not_ok > self.max_fail.of(total)


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """One batch as it ran (or not)."""

    hosts: tuple[str, ...]
    statuses: tuple[Status, ...] = ()
    """Empty when the batch never started."""

    @property
    def started(self) -> bool:
        return bool(self.statuses)


@dataclass(frozen=True, slots=True)
class BatchReport:
    """Every batch, and why the run stopped early (None when every batch ran)."""

    batches: tuple[BatchOutcome, ...] = field(default_factory=tuple)
    stopped: str | None = None


async def run_in_batches(
    hosts: Sequence[Host],
    plan: BatchPlan,
    run_batch: RunBatch,
    on_start: BatchStarts | None = None,
    on_pause: Callable[[float], None] | None = None,
) -> tuple[list[HostResult], BatchReport]:
    """Run ``run_batch`` on each batch in turn; hosts never started come back ``skipped``."""
    batches = plan.split(hosts)
    results: list[HostResult] = []
    outcomes: list[BatchOutcome] = []
    not_ok = 0
    stopped: str | None = None
    for number, batch in enumerate(batches, start=1):
        if stopped is not None:
            outcomes.append(BatchOutcome(tuple(h.name for h in batch)))
            results += [_skipped(host, stopped) for host in batch]
            continue
        if number > 1 and plan.pause_s > 0:
            if on_pause is not None:  # the live progress counts the pause down
                on_pause(plan.pause_s)
            await asyncio.sleep(plan.pause_s)
        if on_start is not None:
            on_start(number, len(batches), batch)
        done = await run_batch(batch)
        results += done
        outcomes.append(BatchOutcome(tuple(r.host for r in done), tuple(r.status for r in done)))
        failed = [r.host for r in done if not r.succeeded]
        not_ok += len(failed)
        if number == len(batches):
            break
        if plan.canary and number == 1 and failed:
            stopped = f"the canary {failed[0]} did not succeed"
        elif plan.over_budget(not_ok, len(hosts)):
            plural = "host" if not_ok == 1 else "hosts"
            stopped = (
                f"{not_ok} {plural} not ok after batch {number}, over --max-fail {plan.max_fail}"
            )
    return results, BatchReport(tuple(outcomes), stopped)


def _skipped(host: Host, reason: str) -> HostResult:
    return HostResult(
        host=host.name, address=host.address, status=Status.SKIPPED, error=f"not started: {reason}"
    )
