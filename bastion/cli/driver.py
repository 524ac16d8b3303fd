"""What every fan-out command does around the executor, whatever it does on each host.

``run``, ``copy`` and ``fetch`` differ only in their per-host work. All of them: take the
targets from the fan-out prologue (cli/fanout.py), feed the live progress, the output mode
and the ``--out-dir`` record from the same event stream, roll through ``--batch``\\ es if
asked, then write the summary (hosts not finished after Ctrl-C or SIGTERM: ``interrupted``),
append to the history and return the exit code.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bastion.batches import BatchPlan, BatchReport, run_in_batches
from bastion.cli import stdout_guard
from bastion.cli.options import OutputMode
from bastion.cli.termination import Stop, records_first, run_stoppable
from bastion.errors import UsageError
from bastion.executor import HostWork, RunOptions, execute_work
from bastion.history import record_run
from bastion.hostset import fold
from bastion.models import Event, Host, HostFinished, HostResult, HostStarted, Status
from bastion.outcome import exit_code, worst_remote_exit
from bastion.process_clock import run_elapsed_s
from bastion.render.base import Display, Renderer, wants_color
from bastion.render.summary import render_batches, render_summary
from bastion.runrecord import OutDirRecorder, RunContext


def check_ref(output: OutputMode, ref: str | None, targets: list[Host]) -> str | None:
    """The reference host of ``-o diff`` (None: the majority's output); refused otherwise."""
    if output is not OutputMode.DIFF:
        if ref is not None:
            raise UsageError("--ref is only used with -o diff", source="--ref")
        return None
    names = [host.name for host in targets]
    if ref is None:
        return None
    if ref not in names:
        raise UsageError(
            f"reference host {ref!r} is not among the selected hosts ({fold(names)})",
            source="--ref",
        )
    return ref


@dataclass(frozen=True, slots=True)
class Fanout:
    """One fan-out: where, what on each host, and how to show and record it."""

    targets: list[Host]
    work: HostWork
    options: RunOptions
    output: OutputMode
    context: RunContext
    ref: str | None = None
    out_dir: Path | None = None
    batches: BatchPlan | None = None
    notes: tuple[str, ...] = ()
    """Lines for the end of the summary (e.g. fewer hosts at once than asked)."""
    worst_exit: bool = False
    """``-S``: exit with the largest remote exit status instead of bastion's own codes."""
    display: Display = field(default_factory=Display)
    """``--raw`` and ``-N``."""


def drive(fanout: Fanout) -> int:
    """Run, feeding every consumer of the event stream, then summarise and record."""
    stdout_guard.install()
    consumers = _Consumers(fanout)
    started = time.monotonic()
    try:
        report, stop = run_stoppable(_run_all(fanout, consumers))
    finally:
        consumers.stop_progress()
    with records_first():
        return _conclude(fanout, consumers, report, stop, run_elapsed_s(started))


def _conclude(
    fanout: Fanout, consumers: _Consumers, report: BatchReport | None, stop: Stop, elapsed: float
) -> int:
    """The end of a run: interrupted hosts, the output's end, summary, record, history."""
    finished = {r.host for r in consumers.finished}
    pending = [h for h in fanout.targets if h.name not in finished]
    if stop.interrupted:
        for host in pending:  # true records: the renderer, run.json and the history see them
            consumers.emit(HostFinished(interrupted_result(host, stop, consumers.started)))
    order = {host.name: index for index, host in enumerate(fanout.targets)}
    results = sorted(consumers.finished, key=lambda r: order[r.host])
    consumers.finish_output(results)
    if stop.interrupted:
        code = stop.exit_code
    else:
        code = worst_remote_exit(results) if fanout.worst_exit else exit_code(results)
    color = wants_color(sys.stderr)
    served = _served_by_agent(fanout)
    sys.stderr.write(render_summary(results, elapsed, color=color, via="agent" if served else None))
    if report is not None:
        sys.stderr.write(render_batches(report, color=color))
    for note in fanout.notes:
        sys.stderr.write(f"bastion: {note}\n")
    if consumers.output_closed:
        sys.stderr.write("bastion: stdout was closed early; the summary has every host\n")
    if stop.interrupted:
        not_finished = fold(h.name for h in pending) or "none"
        sys.stderr.write(f"bastion: {stop.describe()}; not finished: {not_finished}\n")
    if consumers.recorder is not None:
        consumers.recorder.finish(results, exit_code=code, elapsed_s=elapsed)
    record_run(fanout.context, results, exit_code=code, elapsed_s=elapsed)
    return code


def interrupted_result(host: Host, stop: Stop, started: set[str]) -> HostResult:
    """The result of a host that had not finished when the run was stopped."""
    when = "while running" if host.name in started else "before it started"
    return HostResult(
        host=host.name,
        address=host.address,
        status=Status.INTERRUPTED,
        error=f"{stop.describe()} {when}",
    )


def _served_by_agent(fanout: Fanout) -> bool:
    """Whether the agent ran some of this run's commands (the summary says so in one word)."""
    if fanout.options.agent is None:
        return False
    from bastion.agent.client import served_requests

    return served_requests() > 0


class _Consumers:
    """Everything that reads the event stream: live progress, the renderer, the record."""

    def __init__(self, fanout: Fanout) -> None:
        # First: an unusable --out-dir is exit 2 before anything starts or any host is contacted.
        self.recorder = (
            OutDirRecorder(fanout.out_dir, fanout.context) if fanout.out_dir is not None else None
        )
        self.progress = None
        if sys.stderr.isatty():  # the live progress (and rich) only on a terminal
            from bastion.render.progress import LiveProgress

            self.progress = LiveProgress(len(fanout.targets))
            self.progress.start()
        try:
            self.renderer = _renderer(fanout.output, fanout.targets, fanout.ref, fanout.display)
        except BaseException:  # give the terminal back before the error
            self.stop_progress()
            raise
        self.finished: list[HostResult] = []
        self.started: set[str] = set()

    @property
    def output_closed(self) -> bool:
        """The reader of stdout went away (``| head``); the run goes on without it.

        Like ``git log | head``, no error for the pipe; unlike a killed pdsh, no remote
        command is cut off, and the summary, the record and the history still get every host
        (cli/stdout_guard.py).
        """
        return stdout_guard.closed_early()

    def emit(self, event: Event) -> None:
        if self.progress is not None:
            self.progress.handle(event)
        if not self.output_closed:
            self.renderer.handle(event)
        if self.recorder is not None:
            self.recorder.handle(event)
        if isinstance(event, HostStarted):
            self.started.add(event.host)
        elif isinstance(event, HostFinished):
            self.finished.append(event.result)

    def stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def finish_output(self, results: list[HostResult]) -> None:
        """The renderer's end (grouped output, ...), unless nobody reads stdout any more."""
        if not self.output_closed:
            self.renderer.finish(results)
            sys.stdout.flush()


async def _run_all(fanout: Fanout, consumers: _Consumers) -> BatchReport | None:
    emit = consumers.emit
    if fanout.batches is None:
        await execute_work(fanout.targets, fanout.options, emit, fanout.work)
        return None
    progress = consumers.progress
    results, report = await run_in_batches(
        fanout.targets,
        fanout.batches,
        lambda batch: execute_work(batch, fanout.options, emit, fanout.work),
        _announce_batch,
        on_pause=progress.pausing if progress is not None else None,
    )
    ran = {r.host for r in consumers.finished}
    for result in results:
        if result.host not in ran:  # never started: skipped
            emit(HostFinished(result))
    return report


def _announce_batch(number: int, total: int, hosts: Sequence[Host]) -> None:
    sys.stderr.write(f"bastion: batch {number}/{total}: {fold(h.name for h in hosts)}\n")
    sys.stderr.flush()


def _renderer(
    output: OutputMode, targets: list[Host], ref: str | None, display: Display
) -> Renderer:
    out, err = sys.stdout, sys.stderr
    if output is OutputMode.JSON:
        from bastion.render.jsonl import JsonLinesRenderer

        return JsonLinesRenderer(out)
    if output in (OutputMode.GROUPED, OutputMode.LINES):
        from bastion.render.grouped import GroupedRenderer

        return GroupedRenderer(
            out,
            err,
            color=wants_color(out),
            lines=output is OutputMode.LINES,
            prefix=display.prefix,
            raw=display.raw,
        )
    if output is OutputMode.DIFF:
        from bastion.render.diff import DiffRenderer

        return DiffRenderer(out, err, ref, color=wants_color(out), raw=display.raw)
    if output is OutputMode.QUIET:
        from bastion.render.quiet import QuietRenderer

        return QuietRenderer()
    from bastion.render.inline import InlineRenderer  # OutputMode.TEXT

    terminal = out.isatty()  # into a pipe or a file: pdsh's `host: line`, unpadded
    return InlineRenderer(
        out,
        err,
        max(len(host.name) for host in targets) if terminal else 0,
        color=wants_color(out),
        hosts=[host.name for host in targets],
        align_streams=terminal and err.isatty(),
        prefix=display.prefix,
        raw=display.raw,
    )
