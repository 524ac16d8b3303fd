"""``bastion play`` output: a header per step, one line per distinct result, a PLAY RECAP.

Hosts with the same status and reason share one line under their folded names
(``changed  node[1-3]``). A failed host's output follows its line; ``-v`` streams every
host's output as it arrives. Every text reaching here is already masked by the engine; every
text from a host is shown through `visible` (the JSON objects keep the exact text).
"""

from __future__ import annotations

import json
from typing import TextIO

from bastion.hostset import fold
from bastion.playbook.results import (
    RECAP_COLUMNS,
    HostStepResult,
    Notice,
    PlayEvent,
    PlayRecap,
    PlayStarted,
    StepFinished,
    StepOutput,
    StepStarted,
    StepStatus,
)
from bastion.render.base import BOLD, CYAN, DIM, GREEN, RED, YELLOW, paint
from bastion.render.visible import visible

STATUS_ORDER = (
    StepStatus.OK,
    StepStatus.CHANGED,
    StepStatus.WOULD_RUN,
    StepStatus.SKIPPED,
    StepStatus.FAILED,
    StepStatus.UNREACHABLE,
)
STATUS_COLOR = {
    StepStatus.OK: GREEN,
    StepStatus.CHANGED: YELLOW,
    StepStatus.WOULD_RUN: YELLOW,
    StepStatus.SKIPPED: CYAN,
    StepStatus.FAILED: RED,
    StepStatus.UNREACHABLE: RED,
}
FAILED_OUTPUT_LINES = 40
"""Lines of a failed host's output shown under its line (the --out-dir record keeps all)."""


class PlayTextRenderer:
    """Writes the play as it goes: steps, folded results, failed output, then the recap."""

    def __init__(self, out: TextIO, *, verbose: bool = False, color: bool = False) -> None:
        self._out = out
        self._verbose = verbose
        self._color = color

    def handle(self, event: PlayEvent) -> None:
        if isinstance(event, PlayStarted):
            where = fold(event.hosts) or "no hosts"
            line = f"PLAY {event.name} ({event.path}) on {where}"
            if event.skipped:
                line += f": skipped ({event.skipped})"
            self._write(paint(line, BOLD, self._color))
        elif isinstance(event, StepStarted):
            hosts = fold(event.hosts) or "no hosts"
            title = f"STEP {event.number}/{event.total} {event.name}"
            self._write(f"{paint(title, BOLD, self._color)}  [{hosts}]")
        elif isinstance(event, StepOutput):
            if self._verbose:
                for line in _lines(event.text):
                    self._write(paint(f"    {event.host} | ", DIM, self._color) + line)
        elif isinstance(event, StepFinished):
            self._write_results(event.results)
        elif isinstance(event, Notice):
            self._write(paint(f"  {visible(event.text)}", DIM, self._color))
        self._out.flush()

    def _write_results(self, results: tuple[HostStepResult, ...]) -> None:
        width = max((len(_label(r)) for r in results), default=0)
        for status in STATUS_ORDER:
            groups: dict[tuple[str | None, bool], list[str]] = {}
            for result in results:
                if result.status is status:
                    groups.setdefault((result.detail, result.ignored), []).append(result.host)
            for (detail, ignored), hosts in groups.items():
                label = _label_of(status, ignored).ljust(width)
                line = f"  {paint(label, STATUS_COLOR[status], self._color)}  {fold(hosts)}"
                if detail:
                    line += f": {visible(detail)}"
                self._write(line)
        if self._verbose:
            return
        for result in results:
            if result.status is StepStatus.FAILED:
                self._write_output(result)

    def _write_output(self, result: HostStepResult) -> None:
        lines = [(line, "") for line in _lines(result.stdout)]
        lines += [(line, "err") for line in _lines(result.stderr)]
        shown = lines[-FAILED_OUTPUT_LINES:]
        if len(lines) > len(shown):
            self._write(f"    {result.host} | ... {len(lines) - len(shown)} earlier lines")
        for line, stream in shown:
            prefix = f"    {result.host} |{'!' if stream else ''} "
            self._write(paint(prefix, DIM, self._color) + line)

    def finish(self, recap: PlayRecap) -> None:
        """The PLAY RECAP table and the one-line total."""
        self._out.write(render_recap(recap, color=self._color))
        self._out.flush()

    def _write(self, line: str) -> None:
        self._out.write(line + "\n")


def _lines(text: str) -> list[str]:
    """A host's text as visible lines: split at line feeds only (``\\r`` is shown, not a break)."""
    shown = visible(text)
    return shown[:-1].split("\n") if shown.endswith("\n") else shown.split("\n") if shown else []


def _label(result: HostStepResult) -> str:
    return _label_of(result.status, result.ignored)


def _label_of(status: StepStatus, ignored: bool) -> str:
    return f"{status} (ignored)" if ignored else str(status)


def render_recap(recap: PlayRecap, *, color: bool = False) -> str:
    """``PLAY RECAP``: one row per host, each step counted once, then the totals."""
    title = "PLAY RECAP (--check: changed = would change)" if recap.check else "PLAY RECAP"
    lines = [paint(title, BOLD, color)]
    width = max((len(t.host) for t in recap.hosts), default=4)
    for tally in recap.hosts:
        cells = "  ".join(f"{name}={tally.counts[name]}" for name in RECAP_COLUMNS)
        row = f"  {tally.host.ljust(width)}  {cells}"
        if tally.stopped_at is not None:
            row += f"  (stopped at {tally.stopped_at!r})"
        code = RED if tally.status != "ok" else (YELLOW if tally.counts["changed"] else GREEN)
        lines.append(paint(row, code, color))
    totals = ", ".join(f"{recap.total(name)} {name}" for name in RECAP_COLUMNS)
    plural = "" if len(recap.hosts) == 1 else "s"
    lines.append(
        f"bastion: play: {len(recap.hosts)} host{plural} in {recap.elapsed_s:.2f}s: {totals}"
    )
    return "".join(f"{line}\n" for line in lines)


class PlayJsonRenderer:
    """``-o json``: one JSON object per host and step, then one for the recap."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._play = ""

    def handle(self, event: PlayEvent) -> None:
        if isinstance(event, PlayStarted):
            self._play = event.name
        if not isinstance(event, StepFinished):
            return
        for result in event.results:
            record = {
                "schema": 1,
                "type": "step",
                "play": self._play,
                "step": result.step,
                "host": result.host,
                "status": str(result.status),
                "ignored": result.ignored,
                "detail": result.detail,
                "rc": result.rc,
                "attempts": result.attempts,
                "stdout": result.stdout,
                "stderr": result.stderr,
                "duration_s": round(result.duration_s, 3),
            }
            self._out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._out.flush()

    def finish(self, recap: PlayRecap) -> None:
        record = {
            "schema": 1,
            "type": "recap",
            "check": recap.check,
            "exit_code": recap.exit_code,
            "duration_s": round(recap.elapsed_s, 3),
            "hosts": {t.host: {**t.counts, "stopped_at": t.stopped_at} for t in recap.hosts},
        }
        self._out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._out.flush()
