"""What a play came to: each host's result per step, the events the engine emits, the recap."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from bastion.outcome import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNREACHABLE


class StepStatus(StrEnum):
    """A host's outcome of one step."""

    OK = "ok"
    CHANGED = "changed"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    WOULD_RUN = "would run"
    """--check: the step would run (and could change something); it did not."""


@dataclass(frozen=True, slots=True)
class HostStepResult:
    """One host, one step. Text fields are already masked."""

    host: str
    step: str
    status: StepStatus
    play: str = ""
    detail: str | None = None
    """Why it was skipped or failed, or what it would do in --check mode."""
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    ignored: bool = False
    """A failure the step's ``ignore_errors`` let pass: the host goes on."""
    attempts: int = 1

    @property
    def stops_host(self) -> bool:
        """Whether this host takes no further steps in the run."""
        return self.status in (StepStatus.FAILED, StepStatus.UNREACHABLE) and not self.ignored


@dataclass(frozen=True, slots=True)
class PlayStarted:
    name: str
    path: str
    hosts: tuple[str, ...]
    skipped: str | None = None
    """Why the play does not run (its import ``when``, no hosts left), or None."""


@dataclass(frozen=True, slots=True)
class StepStarted:
    play: str
    number: int
    total: int
    name: str
    hosts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StepOutput:
    host: str
    stream: str
    text: str
    """Whole lines, masked."""


@dataclass(frozen=True, slots=True)
class StepFinished:
    name: str
    results: tuple[HostStepResult, ...]


@dataclass(frozen=True, slots=True)
class Notice:
    text: str


@dataclass(frozen=True, slots=True)
class StepHost:
    """A host's part of the running step began (``running``) or ended: for live progress."""

    host: str
    running: bool


PlayEvent = PlayStarted | StepStarted | StepOutput | StepFinished | Notice | StepHost
PlayEmit = Callable[[PlayEvent], None]

RECAP_COLUMNS = ("ok", "changed", "skipped", "failed", "unreachable", "ignored")


@dataclass(slots=True)
class HostTally:
    """One host's line of the recap: each step it took counted once."""

    host: str
    address: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RECAP_COLUMNS, 0))
    stopped_at: str | None = None
    """The step that stopped this host (failed or unreachable), if any."""
    reason: str | None = None
    interrupted: bool = False
    """Ctrl-C or SIGTERM stopped the play before this host was done with it."""

    def add(self, result: HostStepResult) -> None:
        if result.ignored:
            self.counts["ignored"] += 1
        elif result.status is StepStatus.WOULD_RUN:
            self.counts["changed"] += 1
        else:
            self.counts[str(result.status)] += 1
        if result.stops_host and self.stopped_at is None:
            self.stopped_at = result.step
            self.reason = result.detail

    def stop(self, step: str, reason: str | None) -> None:
        """This host was left out of the rest of the run (a batch over ``max_fail``)."""
        if self.stopped_at is None:
            self.stopped_at, self.reason = step, reason

    def interrupt(self) -> None:
        """The play was stopped (Ctrl-C, SIGTERM): a host not already failed is interrupted."""
        self.interrupted = self.status == "ok"

    @property
    def status(self) -> str:
        """``unreachable``, ``failed`` (also a host stopped before the end), ``interrupted``,
        or ``ok``."""
        if self.counts["unreachable"]:
            return "unreachable"
        if self.counts["failed"] or self.stopped_at is not None:
            return "failed"
        return "interrupted" if self.interrupted else "ok"


@dataclass(slots=True)
class PlayRecap:
    """Every host's tally, in inventory order, and the run's exit code."""

    hosts: list[HostTally]
    results: list[HostStepResult] = field(default_factory=list)
    elapsed_s: float = 0.0
    check: bool = False

    def total(self, column: str) -> int:
        return sum(tally.counts[column] for tally in self.hosts)

    @property
    def exit_code(self) -> int:
        """As ``run``'s: 130 if interrupted, 3 if a host was unreachable, else 1 if a step
        failed, else 0."""
        statuses = {tally.status for tally in self.hosts}
        if "interrupted" in statuses:
            return EXIT_INTERRUPTED
        if "unreachable" in statuses:
            return EXIT_UNREACHABLE
        if "failed" in statuses:
            return EXIT_FAILED
        return EXIT_OK

    def tally(self, host: str) -> HostTally:
        return next(t for t in self.hosts if t.host == host)

    def step_results(self, step: str) -> Sequence[HostStepResult]:
        return [r for r in self.results if r.step == step]
