"""What every fan-out command does around the executor, whatever it does on each host.

``run``, ``copy`` and ``fetch`` differ only in their per-host work. All of them: pick the
targets (``--retry-failed`` included), feed the live progress, the output mode and the
``--out-dir`` record from the same event stream, roll through ``--batch``\\ es if asked, then
write the summary, append to the history and return the exit code.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bastion.batches import BatchPlan, BatchReport, run_in_batches
from bastion.cli.options import OutputMode, retry_selection
from bastion.cli.termination import run_stoppable
from bastion.errors import UsageError
from bastion.executor import HostWork, RunOptions, execute_work
from bastion.history import record_run
from bastion.hostset import fold
from bastion.inventory import Inventory
from bastion.jumps import check_jump_chains
from bastion.models import Event, Host, HostFinished, HostResult
from bastion.outcome import exit_code
from bastion.process_clock import run_elapsed_s
from bastion.render.base import Display, Renderer, wants_color
from bastion.render.summary import render_batches, render_summary
from bastion.runrecord import OutDirRecorder, RunContext
from bastion.select import Selection, select_hosts


def resolve_targets(
    inventory: Inventory, selection: Selection, retry_failed: Path | None
) -> tuple[list[Host], Selection] | None:
    """The selected hosts (and the selection that chose them); None when nothing is to retry."""
    if retry_failed is not None:
        retry = retry_selection(selection, retry_failed)
        if retry is None:
            sys.stderr.write(f"bastion: nothing to retry: every host succeeded in {retry_failed}\n")
            return None
        selection = retry
    targets = select_hosts(inventory, selection)
    check_jump_chains(targets, inventory.hosts)
    return targets, selection


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


def run_context(
    command: str, selection: Selection, inventory: Inventory, options: dict[str, object]
) -> RunContext:
    """What was asked for, as the run record and the history keep it."""
    return RunContext(
        command=command,
        selection=selection.describe(),
        inventory_path=str(inventory.path),
        inventory_digest=inventory.digest,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        options=options,
    )


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
    display: Display = field(default_factory=Display)
    """``--raw`` and ``-N``."""


def drive(fanout: Fanout) -> int:
    """Run, feeding every consumer of the event stream, then summarise and record."""
    consumers = _Consumers(fanout)
    started = time.monotonic()
    try:
        report, stop = run_stoppable(_run_all(fanout, consumers))
    finally:
        consumers.stop_progress()
    elapsed = run_elapsed_s(started)
    order = {host.name: index for index, host in enumerate(fanout.targets)}
    results = sorted(consumers.finished, key=lambda r: order[r.host])
    consumers.finish_output(results)
    code = stop.exit_code if stop.interrupted else exit_code(results)
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
        done = {r.host for r in results}
        pending = [h.name for h in fanout.targets if h.name not in done]
        sys.stderr.write(f"bastion: {stop.describe()}; not finished: {fold(pending) or 'none'}\n")
    if consumers.recorder is not None:
        consumers.recorder.finish(results, exit_code=code, elapsed_s=elapsed)
    record_run(fanout.context, results, exit_code=code, elapsed_s=elapsed)
    return code


def _served_by_agent(fanout: Fanout) -> bool:
    """Whether the agent ran some of this run's commands (the summary says so in one word)."""
    if fanout.options.agent is None:
        return False
    from bastion.agent.client import served_requests

    return served_requests() > 0


class _Consumers:
    """Everything that reads the event stream: live progress, the renderer, the record."""

    def __init__(self, fanout: Fanout) -> None:
        self.progress = None
        if sys.stderr.isatty():  # the live progress (and rich) only on a terminal
            from bastion.render.progress import LiveProgress

            self.progress = LiveProgress(len(fanout.targets))
            self.progress.start()  # before the renderer, so it writes through rich's proxy
        try:
            self.renderer = _renderer(fanout.output, fanout.targets, fanout.ref, fanout.display)
            self.recorder = (
                OutDirRecorder(fanout.out_dir, fanout.context)
                if fanout.out_dir is not None
                else None
            )
        except BaseException:  # a refused --out-dir: give the terminal back before the error
            self.stop_progress()
            raise
        self.finished: list[HostResult] = []
        self.output_closed = False
        """Set when the reader of stdout went away (``| head``); the run goes on without it."""

    def emit(self, event: Event) -> None:
        if self.progress is not None:
            self.progress.handle(event)
        if not self.output_closed:
            try:
                self.renderer.handle(event)
            except BrokenPipeError:
                self._close_output()
        if self.recorder is not None:
            self.recorder.handle(event)
        if isinstance(event, HostFinished):
            self.finished.append(event.result)

    def stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()

    def finish_output(self, results: list[HostResult]) -> None:
        """The renderer's end (grouped output, ...), unless nobody reads stdout any more."""
        if self.output_closed:
            return
        try:
            self.renderer.finish(results)
            sys.stdout.flush()
        except BrokenPipeError:
            self._close_output()

    def _close_output(self) -> None:
        """Stop writing to a stdout whose reader is gone; the hosts' commands still finish.

        Like ``git log | head``, no error for the pipe; unlike a killed pdsh, no remote
        command is cut off, and the summary, the record and the history still get every host.
        Python's recipe: point stdout at /dev/null so later flushes cannot fail.
        """
        self.output_closed = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


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
    from bastion.render.inline import InlineRenderer

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
