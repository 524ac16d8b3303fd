"""Runs a playbook: steps in order, each step's hosts in parallel through the executor.

Before anything runs, every step is rendered for every host with registered results still
unknown (`Pending`), so an undefined variable is an exit-2 error naming its file and line, not
a surprise half way through. Then, per step: ``when``, the guards (one read-only command),
the action (retried per ``retries``/``until``), ``changed_when``, ``register``. A host that
fails a step (unless ``ignore_errors``) or cannot be reached takes no further steps.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from bastion.batches import BatchPlan, parse_amount, parse_batch, run_in_batches
from bastion.errors import SelectionError
from bastion.executor import RunOptions, execute_work
from bastion.hostset import fold
from bastion.inventory import Inventory
from bastion.models import Event, Host, HostOutput, HostResult, Status
from bastion.outcome import first_error_line
from bastion.playbook.actions import (
    Command,
    Download,
    Prepared,
    Upload,
    compare_upload,
    perform,
    prepare,
)
from bastion.playbook.context import host_view, layered_vars, resolve_vars
from bastion.playbook.errors import PlaybookError
from bastion.playbook.guards import Guards, guard_script, guard_verdict, skip_reason
from bastion.playbook.model import Play, Playbook, Step, Text
from bastion.playbook.results import (
    HostStepResult,
    HostTally,
    Notice,
    PlayEmit,
    PlayRecap,
    PlayStarted,
    StepFinished,
    StepOutput,
    StepStarted,
    StepStatus,
)
from bastion.playbook.template import Masker, Pending, evaluate, render
from bastion.select import Selection, select_hosts
from bastion.transport.base import CommandSpec, OutputSink, Transport

GUARD_TIMEOUT_S = 300.0
"""A guard command (``unless``, ``only_if``) that takes longer than this fails the step."""


@dataclass(frozen=True, slots=True)
class PlayOptions:
    """How to run a playbook: the run limits and connection options, and what to run."""

    run: RunOptions = field(default_factory=RunOptions)
    check: bool = False
    tags: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset()
    start_at: str | None = None
    limit: Selection | None = None


@dataclass(slots=True)
class _PlannedPlay:
    play: Play
    hosts: list[Host]
    steps: list[tuple[Step, set[str] | None]]
    """Each step to run, with the hosts its ``on`` allows (None: all of the play's)."""


async def run_playbook(
    playbook: Playbook, inventory: Inventory, options: PlayOptions, emit: PlayEmit
) -> PlayRecap:
    """Check the whole playbook, then run it; bad input raises `PlaybookError` before any step."""
    run = PlaybookRun(playbook, inventory, options, emit)
    run.prepare()
    await run.execute()
    return run.recap()


def run_playbook_sync(
    playbook: Playbook, inventory: Inventory, options: PlayOptions, emit: PlayEmit
) -> PlayRecap:
    """`run_playbook` on a fresh event loop."""
    return asyncio.run(run_playbook(playbook, inventory, options, emit))


class PlaybookRun:
    """One run of a playbook; `recap` is valid at any time (also after an interruption)."""

    def __init__(
        self, playbook: Playbook, inventory: Inventory, options: PlayOptions, emit: PlayEmit
    ) -> None:
        self.playbook = playbook
        self.inventory = inventory
        self.options = options
        self.emit = emit
        self.masker = Masker(playbook.secrets)
        self.registered: dict[str, dict[str, object]] = {name: {} for name in inventory.hosts}
        self.stopped: set[str] = set()
        self.planned: list[_PlannedPlay] = []
        self.tallies: dict[str, HostTally] = {}
        self.results: list[HostStepResult] = []
        self.started = time.monotonic()

    # -- before anything runs ----------------------------------------------------------------

    def prepare(self) -> None:
        """Select hosts, filter steps, and render everything once: bad input fails here."""
        start_found = self.options.start_at is None
        for play in self.playbook.plays:
            hosts = self._select(play.hosts.selection, play.path, play.hosts.line, "hosts")
            if self.options.limit is not None:
                allowed = {h.name for h in select_hosts(self.inventory, self.options.limit)}
                hosts = [h for h in hosts if h.name in allowed]
            steps: list[tuple[Step, set[str] | None]] = []
            for step in play.steps:
                if not start_found:
                    if step.name != self.options.start_at:
                        continue
                    start_found = True
                if not self._tagged(step):
                    continue
                on = None
                if step.on is not None:
                    chosen = self._select(step.on.selection, play.path, step.on.line, "on")
                    on = {h.name for h in chosen}
                steps.append((step, on))
            self.planned.append(_PlannedPlay(play, hosts, steps))
            for host in hosts:
                self.tallies.setdefault(host.name, HostTally(host.name, host.address))
        if not start_found:
            raise PlaybookError(
                f"no step named {self.options.start_at!r} in {self.playbook.path}",
                source="--start-at",
            )
        order = list(self.inventory.hosts)
        self.tallies = dict(sorted(self.tallies.items(), key=lambda kv: order.index(kv[0])))
        self._dry_render()

    def _select(self, selection: Selection, path: Path, line: int, key: str) -> list[Host]:
        try:
            return select_hosts(self.inventory, selection)
        except SelectionError as exc:
            raise PlaybookError(f"{key}: {exc}", source=path, line=line) from None

    def _tagged(self, step: Step) -> bool:
        tags = set(step.tags)
        if self.options.tags and not tags & self.options.tags:
            return False
        return not tags & self.options.skip_tags

    def _dry_render(self) -> None:
        """Render every step for every host with registered results `Pending`."""
        pending = {name: Pending() for name in self.playbook.registers}
        hosts_view = {name: dict(pending) for name in self.inventory.hosts}
        for planned in self.planned:
            play = planned.play
            if play.when is not None and not self._play_runs(play):
                continue
            for host in planned.hosts:
                fixed = self._fixed(planned, host, hosts_view)
                values = resolve_vars(layered_vars(play, host, self.playbook.extra_vars), fixed)
                context = {**values, **pending, **self._extra(values), **fixed}
                for step, _on in planned.steps:
                    self._render_step(step, play.path, context)

    def _render_step(self, step: Step, path: Path, context: Mapping[str, object]) -> None:
        if step.when is not None and not evaluate(step.when, context, path):
            return
        self._guards(step, context, path)
        prepare(step, context, path, check=self.options.check)
        with_result = {**context, "result": Pending()}
        for expression in (step.until, step.changed_when):
            if expression is not None:
                evaluate(expression, with_result, path)

    def _play_runs(self, play: Play) -> bool:
        assert play.when is not None
        layers = {k: (v, self.playbook.path) for k, v in play.composition_vars.items()}
        layers.update({k: (v, self.playbook.path) for k, v in self.playbook.extra_vars.items()})
        values = resolve_vars(layers, {})
        return bool(evaluate(play.when, values, self.playbook.path))

    def _fixed(
        self, planned: _PlannedPlay, host: Host, hosts_view: Mapping[str, object]
    ) -> dict[str, object]:
        return {
            "host": host_view(host),
            "hosts": hosts_view,
            "inventory_hosts": [h.name for h in planned.hosts],
            "playbook_dir": str(planned.play.path.parent.resolve()),
        }

    def _extra(self, values: Mapping[str, object]) -> dict[str, object]:
        return {k: values[k] for k in self.playbook.extra_vars if k in values}

    def _guards(self, step: Step, context: Mapping[str, object], path: Path) -> Guards:
        def plain(text: Text | None) -> str | None:
            return None if text is None else render(text, context, path, quoted=False)

        def shell(text: Text | None) -> str | None:
            return None if text is None else render(text, context, path, quoted=True)

        return Guards(
            plain(step.creates), plain(step.removes), shell(step.unless), shell(step.only_if)
        )

    # -- running -----------------------------------------------------------------------------

    async def execute(self) -> None:
        """Run every planned play in order."""
        for planned in self.planned:
            await self._run_play(planned)

    async def _run_play(self, planned: _PlannedPlay) -> None:
        play = planned.play
        names = tuple(h.name for h in planned.hosts)
        if play.when is not None and not self._play_runs(play):
            self.emit(PlayStarted(play.name, str(play.path), names, f"when: {play.when.value}"))
            return
        if not planned.hosts:
            self.emit(PlayStarted(play.name, str(play.path), names, "no hosts (--limit)"))
            return
        self.emit(PlayStarted(play.name, str(play.path), names))
        contexts: dict[str, dict[str, object]] = {}
        for host in planned.hosts:
            fixed = self._fixed(planned, host, self.registered)
            contexts[host.name] = resolve_vars(
                layered_vars(play, host, self.playbook.extra_vars), fixed
            )
        total = len(planned.steps)
        for number, (step, on) in enumerate(planned.steps, start=1):
            hosts = [
                h
                for h in planned.hosts
                if h.name not in self.stopped and (on is None or h.name in on)
            ]
            if step.once:
                hosts = hosts[:1]
            note = "--check: guards and read-only steps only" if self.options.check else None
            self.emit(
                StepStarted(play.name, number, total, step.name, tuple(h.name for h in hosts), note)
            )
            if not hosts:
                self.emit(StepFinished(step.name, ()))
                continue
            results = await self._run_step(planned, step, hosts, contexts)
            for result in results:
                self.results.append(result)
                self.tallies[result.host].add(result)
                if result.stops_host:
                    self.stopped.add(result.host)
            self.emit(StepFinished(step.name, tuple(results)))

    async def _run_step(
        self,
        planned: _PlannedPlay,
        step: Step,
        hosts: list[Host],
        contexts: Mapping[str, Mapping[str, object]],
    ) -> list[HostStepResult]:
        outcomes: dict[str, HostStepResult] = {}

        async def work(transport: Transport, host: Host, sink: OutputSink) -> HostResult:
            context = self._context(planned, host, contexts[host.name])
            started = time.monotonic()
            raw: dict[str, object] | None = None
            try:
                outcome, raw = await self._host_step(
                    planned.play, step, host, context, transport, sink
                )
            except PlaybookError as exc:
                outcome = self._result(step, host, StepStatus.FAILED, str(exc))
            outcome = replace(
                outcome, play=planned.play.name, duration_s=time.monotonic() - started
            )
            outcomes[host.name] = outcome
            self._register(step, host, outcome, raw)
            status = {
                StepStatus.UNREACHABLE: Status.UNREACHABLE,
                StepStatus.FAILED: Status.OK if outcome.ignored else Status.FAILED,
            }.get(outcome.status, Status.OK)
            return HostResult(host.name, host.address, status)

        options = replace(self.options.run, durable=step.durable, timeout=None, stdin=None)

        def run_batch(batch: Sequence[Host]) -> asyncio.Future[list[HostResult]]:
            return asyncio.ensure_future(execute_work(batch, options, self._forward, work))

        if step.batch is None:
            executed = await execute_work(hosts, options, self._forward, work)
        else:
            plan = BatchPlan(
                sizes=parse_batch(step.batch),
                max_fail=None
                if step.max_fail is None
                else parse_amount(step.max_fail, source="max_fail", allow_zero=True),
            )
            executed, _report = await run_in_batches(hosts, plan, run_batch, self._announce_batch)
        results: list[HostStepResult] = []
        for host, done in zip(hosts, _in_order(hosts, executed), strict=True):
            outcome = outcomes.get(host.name)
            if outcome is None:
                # Not started (a batch over max_fail), or a bug the executor caught.
                stops = done.status is Status.SKIPPED
                outcome = self._result(
                    step,
                    host,
                    StepStatus.FAILED if not stops else StepStatus.SKIPPED,
                    done.error or "not run",
                )
                if stops:
                    self.stopped.add(host.name)
            results.append(outcome)
        return results

    def _announce_batch(self, number: int, total: int, hosts: Sequence[Host]) -> None:
        self.emit(Notice(f"batch {number}/{total}: {fold(h.name for h in hosts)}"))

    def _forward(self, event: Event) -> None:
        if isinstance(event, HostOutput):
            self.emit(StepOutput(event.host, event.stream, self.masker.mask(event.data)))

    def _context(
        self, planned: _PlannedPlay, host: Host, values: Mapping[str, object]
    ) -> dict[str, object]:
        return {
            **values,
            **self.registered[host.name],
            **self._extra(values),
            **self._fixed(planned, host, self.registered),
        }

    async def _host_step(
        self,
        play: Play,
        step: Step,
        host: Host,
        context: Mapping[str, object],
        transport: Transport,
        sink: OutputSink,
    ) -> tuple[HostStepResult, dict[str, object] | None]:
        path = play.path
        if step.when is not None and not evaluate(step.when, context, path):
            skipped = self._result(step, host, StepStatus.SKIPPED, f"when: {step.when.value}")
            return skipped, None
        guards = self._guards(step, context, path)
        if guards:
            verdict, failure = await self._check_guards(guards, step, transport, host)
            if failure is not None:
                return failure, None
            if verdict != "run":
                reason = skip_reason(guards, verdict)
                return self._result(step, host, StepStatus.SKIPPED, reason), None
        prepared = prepare(step, context, path, check=self.options.check)
        if self.options.check and isinstance(prepared, Upload) and not step.readonly:
            return await self._check_upload(step, host, prepared, transport, sink), None
        if self.options.check and not step.readonly:
            plan = self._result(step, host, StepStatus.WOULD_RUN, _plan_line(prepared))
            return plan, None
        return await self._attempts(play, step, host, context, prepared, transport, sink)

    async def _check_upload(
        self, step: Step, host: Host, upload: Upload, transport: Transport, sink: OutputSink
    ) -> HostStepResult:
        """--check of copy/template: compare with the host (read-only) to tell ok from change."""
        done = await compare_upload(upload, step, transport, host, sink)
        if done.status is Status.UNREACHABLE:
            return self._result(step, host, StepStatus.UNREACHABLE, done.error, done)
        if done.status is not Status.OK or done.files is None:
            reason = first_error_line(done) or "cannot compare"
            return self._result(step, host, StepStatus.FAILED, reason, done)
        if done.files.changed:
            return self._result(step, host, StepStatus.WOULD_RUN, _plan_line(upload), done)
        return self._result(step, host, StepStatus.OK, None, done)

    async def _check_guards(
        self, guards: Guards, step: Step, transport: Transport, host: Host
    ) -> tuple[str, HostStepResult | None]:
        script = guard_script(guards)
        command = f"sudo -n sh -c {_quote(script)}" if step.sudo else f"sh -c {_quote(script)}"
        spec = CommandSpec(command, step.timeout or GUARD_TIMEOUT_S)
        done = await transport.run(host, spec, lambda stream, text: None)
        verdict = guard_verdict(done.stdout)
        if done.status is Status.UNREACHABLE:
            return "", self._result(step, host, StepStatus.UNREACHABLE, done.error)
        if verdict is None or done.status is not Status.OK:
            reason = first_error_line(done) or f"exit {done.exit_status}"
            return "", self._result(step, host, StepStatus.FAILED, f"guard check failed: {reason}")
        return verdict, None

    async def _attempts(
        self,
        play: Play,
        step: Step,
        host: Host,
        context: Mapping[str, object],
        prepared: Prepared,
        transport: Transport,
        sink: OutputSink,
    ) -> tuple[HostStepResult, dict[str, object]]:
        attempts = 0
        met = False
        held: list[tuple[str, str]] = []
        out: OutputSink = (
            (lambda stream, text: held.append((stream, text))) if step.secret else sink
        )
        while True:
            attempts += 1
            done = await perform(prepared, step, transport, host, out, self.options.run)
            if step.secret:
                self.masker.add([done.stdout, done.stderr])
                for stream, text in held:
                    sink(stream, text)  # type: ignore[arg-type]
                held.clear()
            value = _register_value(done)
            if done.status is Status.UNREACHABLE:
                break
            if step.until is not None:
                met = bool(evaluate(step.until, {**context, "result": value}, play.path))
            else:
                met = done.status is Status.OK
            if met or attempts > step.retries:
                break
            await asyncio.sleep(step.delay)
        return self._finish(play, step, host, context, done, attempts, met), value

    def _finish(
        self,
        play: Play,
        step: Step,
        host: Host,
        context: Mapping[str, object],
        done: HostResult,
        attempts: int,
        met: bool,
    ) -> HostStepResult:
        if done.status is Status.UNREACHABLE:
            return self._result(step, host, StepStatus.UNREACHABLE, done.error, done, attempts)
        if done.status is not Status.OK:
            reason = first_error_line(done) or f"exit {done.exit_status}"
            if attempts > 1:
                reason = f"{reason} (after {attempts} attempts)"
            return self._failed(step, host, reason, done, attempts)
        if not met and step.until is not None:
            reason = f"until {step.until.value!r} not met after {attempts} attempts"
            return self._failed(step, host, reason, done, attempts)
        if step.changed_when is not None:
            result = {**context, "result": _register_value(done)}
            changed = bool(evaluate(step.changed_when, result, play.path))
        elif step.readonly:
            changed = False
        elif done.files is not None:
            changed = bool(done.files.changed)
        else:
            changed = True
        status = StepStatus.CHANGED if changed else StepStatus.OK
        return self._result(step, host, status, None, done, attempts)

    def _failed(
        self, step: Step, host: Host, reason: str, done: HostResult, attempts: int
    ) -> HostStepResult:
        result = self._result(step, host, StepStatus.FAILED, reason, done, attempts)
        return replace(result, ignored=step.ignore_errors)

    def _result(
        self,
        step: Step,
        host: Host,
        status: StepStatus,
        detail: str | None = None,
        done: HostResult | None = None,
        attempts: int = 1,
    ) -> HostStepResult:
        """A host's step result with every text masked (the raw values stay in `registered`)."""
        mask = self.masker.mask
        return HostStepResult(
            host=host.name,
            step=step.name,
            status=status,
            detail=None if detail is None else mask(detail),
            rc=None if done is None else done.exit_status,
            stdout="" if done is None else mask(done.stdout),
            stderr="" if done is None else mask(done.stderr),
            attempts=attempts,
        )

    def _register(
        self, step: Step, host: Host, outcome: HostStepResult, raw: dict[str, object] | None
    ) -> None:
        if step.register is None:
            return
        value = (
            dict(raw)
            if raw is not None
            else {
                "stdout": "",
                "stderr": "",
                "rc": None,
                "json": None,
                "stdout_lines": [],
            }
        )
        value.update(
            {
                "status": str(outcome.status),
                "changed": outcome.status is StepStatus.CHANGED,
                "failed": outcome.status in (StepStatus.FAILED, StepStatus.UNREACHABLE),
                "skipped": outcome.status is StepStatus.SKIPPED,
                "attempts": outcome.attempts,
            }
        )
        self.registered[host.name][step.register] = value

    # -- the end -----------------------------------------------------------------------------

    def recap(self) -> PlayRecap:
        """Every host's tally so far and the results, in run order."""
        return PlayRecap(
            hosts=list(self.tallies.values()),
            results=list(self.results),
            elapsed_s=time.monotonic() - self.started,
            check=self.options.check,
        )


def _register_value(done: HostResult) -> dict[str, object]:
    stdout = done.stdout.removesuffix("\n")
    parsed: object = None
    if stdout.strip():
        try:
            parsed = json.loads(stdout)
        except ValueError:
            parsed = None
    return {
        "stdout": stdout,
        "stderr": done.stderr.removesuffix("\n"),
        "rc": done.exit_status,
        "json": parsed,
        "stdout_lines": stdout.splitlines(),
    }


def _plan_line(prepared: Prepared) -> str:
    """What a step would do, for the --check plan."""
    if isinstance(prepared, Command):
        lines = prepared.display.strip().splitlines() or [""]
        return lines[0] + (" ..." if len(lines) > 1 else "")
    if isinstance(prepared, Upload):
        what = "write" if prepared.src is None else f"copy {prepared.src.name} to"
        return f"{what} {prepared.dest}"
    assert isinstance(prepared, Download)
    return f"fetch {prepared.src} to {prepared.dest}"


def _in_order(hosts: Sequence[Host], results: Sequence[HostResult]) -> list[HostResult]:
    by_name = {r.host: r for r in results}
    return [
        by_name.get(h.name) or HostResult(h.name, h.address, Status.SKIPPED, error="not run")
        for h in hosts
    ]


def _quote(text: str) -> str:
    return shlex.quote(text)
