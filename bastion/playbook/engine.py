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
from dataclasses import replace

from bastion.batches import BatchPlan, parse_amount, parse_batch, run_in_batches
from bastion.executor import execute_work
from bastion.facts.collect import PROBE_COMMAND
from bastion.hostset import fold
from bastion.inventory import Inventory
from bastion.models import Event, Host, HostFinished, HostOutput, HostResult, HostStarted, Status
from bastion.outcome import first_error_line
from bastion.playbook.actions import (
    Command,
    Prepared,
    Upload,
    compare_upload,
    perform,
    plan_line,
    prepare,
)
from bastion.playbook.actions.run import RunAction
from bastion.playbook.actions.wait_for import WaitForAction
from bastion.playbook.context import layered_vars, resolve_vars
from bastion.playbook.errors import PlaybookError
from bastion.playbook.facts import FACTS_STEP, gather
from bastion.playbook.guards import (
    Guards,
    VerdictSplitter,
    guard_command,
    guard_command_on_stdin,
    guard_script,
    guard_verdict,
    guarded_command,
    skip_reason,
    without_verdict,
)
from bastion.playbook.model import Play, Playbook, Step, Text
from bastion.playbook.plan import (
    PlannedPlay,
    PlayOptions,
    dry_render,
    extra_values,
    fixed_context,
    plan_plays,
    play_runs,
    render_guards,
    retry_limits,
)
from bastion.playbook.results import (
    HostStepResult,
    HostTally,
    Notice,
    PlayEmit,
    PlayRecap,
    PlayStarted,
    StepFinished,
    StepHost,
    StepOutput,
    StepStarted,
    StepStatus,
)
from bastion.playbook.template import Masker, Pending, collect_uses, current_uses, evaluate
from bastion.transport.base import CommandSpec, OutputSink, Transport

_FACTS = Step(FACTS_STEP, 0, RunAction(Text(PROBE_COMMAND, 0)), "run", readonly=True)
"""The implicit step a play with ``facts: true`` starts with (for results and the recap)."""
GUARD_TIMEOUT_S = 300.0
"""A guard command (``unless``, ``only_if``) that takes longer than this fails the step."""


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
        self.off_argv = Masker(playbook.secrets)
        """Values kept off command lines (on stdin instead): secrets, and ``-e`` values,
        which the history records by name only (they are not masked in output)."""
        self.off_argv.add(_strings(playbook.extra_vars))
        self.registered: dict[str, dict[str, object]] = {name: {} for name in inventory.hosts}
        self.stopped: set[str] = set()
        self.planned: list[PlannedPlay] = []
        self.facts: dict[str, dict[str, object]] = {}
        """Each host's facts (``facts: true``), gathered once for the run."""
        self.failed_facts: dict[str, HostResult] = {}
        self.tallies: dict[str, HostTally] = {}
        self.results: list[HostStepResult] = []
        self.started = time.monotonic()

    # -- before anything runs ----------------------------------------------------------------

    def prepare(self) -> None:
        """Select hosts, filter steps, and render everything once: bad input fails here."""
        self.planned = plan_plays(self.playbook, self.inventory, self.options)
        order = list(self.inventory.hosts)
        for plan in self.planned:
            for host in plan.hosts:
                self.tallies.setdefault(host.name, HostTally(host.name, host.address))
        self.tallies = dict(sorted(self.tallies.items(), key=lambda kv: order.index(kv[0])))
        try:
            dry_render(self.playbook, self.inventory, self.planned, check=self.options.check)
        except PlaybookError as exc:
            # A template error may quote a value (a dict key, say): never a secret's.
            masked = self.masker.mask(exc.message)
            raise PlaybookError(masked, source=exc.source, line=exc.line) from None

    # -- running -----------------------------------------------------------------------------

    async def execute(self) -> None:
        """Run every planned play in order."""
        for planned in self.planned:
            await self._run_play(planned)

    async def _run_play(self, planned: PlannedPlay) -> None:
        play = planned.play
        names = tuple(h.name for h in planned.hosts)
        if play.when is not None and not play_runs(self.playbook, play):
            self.emit(PlayStarted(play.name, str(play.path), names, f"when: {play.when.value}"))
            return
        if not planned.hosts:
            self.emit(PlayStarted(play.name, str(play.path), names, "no hosts (--limit)"))
            return
        self.emit(PlayStarted(play.name, str(play.path), names))
        contexts: dict[str, dict[str, object]] = {}
        for host in planned.hosts:
            fixed = fixed_context(planned, host, self.registered)
            contexts[host.name] = resolve_vars(
                layered_vars(play, host, self.playbook.extra_vars), fixed
            )
        first = 1
        total = len(planned.steps)
        if play.facts:
            total += 1
            first = 2
            hosts = [h for h in planned.hosts if h.name not in self.stopped]
            self.emit(StepStarted(play.name, 1, total, FACTS_STEP, tuple(h.name for h in hosts)))
            self._record(FACTS_STEP, await self._gather_facts(play, hosts))
        for number, (step, on) in enumerate(planned.steps, start=first):
            hosts = [
                h
                for h in planned.hosts
                if h.name not in self.stopped and (on is None or h.name in on)
            ]
            if step.once:
                hosts = hosts[:1]
            names = tuple(h.name for h in hosts)
            self.emit(StepStarted(play.name, number, total, step.name, names))
            if not hosts:
                self.emit(StepFinished(step.name, ()))
                continue
            self._record(step.name, await self._run_step(planned, step, hosts, contexts))

    def _record(self, step: str, results: Sequence[HostStepResult]) -> None:
        """Count a step's results, stop the hosts that failed it, and say it finished."""
        for result in results:
            self.results.append(result)
            self.tallies[result.host].add(result)
            if result.stops_host:
                self.stopped.add(result.host)
            elif result.host in self.stopped:  # not started: a batch went over max_fail
                self.tallies[result.host].stop(step, result.detail)
        self.emit(StepFinished(step, tuple(results)))

    async def _gather_facts(self, play: Play, hosts: Sequence[Host]) -> list[HostStepResult]:
        """``facts: true``: each host's facts, asked once per run (later plays reuse them)."""
        asked = [h for h in hosts if h.name not in self.facts]
        started = time.monotonic()
        for result, facts in await gather(asked, self.options.run) if asked else []:
            if facts is not None and facts.complete:
                self.facts[result.host] = facts.as_json()
                self.registered[result.host]["facts"] = self.facts[result.host]
            else:
                self.failed_facts[result.host] = result
        results: list[HostStepResult] = []
        for host in hosts:
            done = self.failed_facts.get(host.name)
            if done is None:
                status, detail = StepStatus.OK, None
            elif done.status is Status.UNREACHABLE:
                status, detail = StepStatus.UNREACHABLE, done.error
            else:
                reason = first_error_line(done) or "the probe did not finish"
                status, detail = StepStatus.FAILED, f"facts: {reason}"
            outcome = self._result(_FACTS, host, status, detail)
            results.append(replace(outcome, play=play.name, duration_s=time.monotonic() - started))
        return results

    async def _run_step(
        self,
        planned: PlannedPlay,
        step: Step,
        hosts: list[Host],
        contexts: Mapping[str, Mapping[str, object]],
    ) -> list[HostStepResult]:
        outcomes: dict[str, HostStepResult] = {}

        async def work(transport: Transport, host: Host, sink: OutputSink) -> HostResult:
            collect_uses()  # this host's task's own collector
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
                budget_name="max_fail",
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
        elif isinstance(event, HostStarted | HostFinished):  # the live progress's per-host time
            host = event.host if isinstance(event, HostStarted) else event.result.host
            self.emit(StepHost(host, running=isinstance(event, HostStarted)))

    def _context(
        self, planned: PlannedPlay, host: Host, values: Mapping[str, object]
    ) -> dict[str, object]:
        return {
            **values,
            **self.registered[host.name],
            **extra_values(self.playbook, values),
            **fixed_context(planned, host, self.registered),
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
        decided = self._decide(play, step, host, context)
        if isinstance(decided, HostStepResult):
            return decided, None
        guards = decided
        if guards and self._one_connection(step, host, guards):
            try:
                combined = prepare(step, context, play.path, masker=self.off_argv)
            except PlaybookError:
                combined = None  # maybe a guard skips it: check them alone, then render again
            if isinstance(combined, Command):
                return await self._attempts(
                    play, step, host, context, combined, transport, sink, guards
                )
        if guards:
            verdict, failure = await self._check_guards(guards, step, transport, host)
            if failure is not None:
                return failure, None
            if verdict != "run":
                return self._skip(step, host, guards, verdict), None
        self.touched.clear()
        prepared = prepare(step, context, play.path, check=self.options.check, masker=self.off_argv)
        if not self.options.check:
            return await self._attempts(play, step, host, context, prepared, transport, sink)
        return await self._check(play, step, host, context, prepared, transport, sink)

    async def _check(
        self,
        play: Play,
        step: Step,
        host: Host,
        context: Mapping[str, object],
        prepared: Prepared,
        transport: Transport,
        sink: OutputSink,
    ) -> tuple[HostStepResult, dict[str, object] | None]:
        """--check: a read-only step runs, any other says what it would do."""
        unknown = self._depends()
        if unknown:
            # Rendered from values a not-run step would register: the text is not the real one.
            detail = f"{plan_line(step.action, prepared)} ({unknown})"
            return self._result(step, host, StepStatus.WOULD_RUN, detail), None
        if not step.readonly:
            if isinstance(prepared, Upload):
                return await self._check_upload(step, host, prepared, transport, sink), None
            return self._result(
                step, host, StepStatus.WOULD_RUN, plan_line(step.action, prepared)
            ), None
        outcome, raw = await self._attempts(play, step, host, context, prepared, transport, sink)
        if isinstance(step.action, WaitForAction) and outcome.stops_host:
            # --check looks once and does not wait: not ready yet is what a real run waits for.
            return self._result(
                step, host, StepStatus.WOULD_RUN, plan_line(step.action, prepared)
            ), raw
        return outcome, raw

    def _decide(
        self, play: Play, step: Step, host: Host, context: Mapping[str, object]
    ) -> HostStepResult | Guards:
        """The step's result if ``when`` decides it, else its guards (to check on the host).

        In --check mode, a ``when`` or guard that uses a value registered by a step that did
        not run cannot be decided: the step "would run if ..." (not "skipped").
        """
        if step.when is not None:
            decided = self._when(play, step, host, context)
            if decided is not None:
                return decided
        self.touched.clear()
        guards = render_guards(step, context, play.path)
        unknown = self._depends() if guards else ""
        if unknown:
            detail = f"unless a guard skips it (cannot check its guards: {unknown})"
            return self._result(step, host, StepStatus.WOULD_RUN, detail)
        return guards

    def _one_connection(self, step: Step, host: Host, guards: Guards) -> bool:
        """Whether the guards can go with the command (not a durable job, not --check, and
        no secret in the guards: the combined command is a command line)."""
        durable = replace(self.options.run, durable=step.durable).route_of(host).durable
        secret = self.off_argv.reveals(guard_script(guards))
        return not self.options.check and not durable and not secret

    def _skip(self, step: Step, host: Host, guards: Guards, verdict: str) -> HostStepResult:
        return self._result(step, host, StepStatus.SKIPPED, skip_reason(guards, verdict))

    def _when(
        self, play: Play, step: Step, host: Host, context: Mapping[str, object]
    ) -> HostStepResult | None:
        """Skipped if ``when`` is false, "would run if" if it cannot be decided (--check)."""
        assert step.when is not None
        self.touched.clear()
        holds = evaluate(step.when, context, play.path)
        unknown = self._depends()
        if unknown:
            detail = f"if {step.when.value} ({unknown})"
            return self._result(step, host, StepStatus.WOULD_RUN, detail)
        if not holds:
            return self._result(step, host, StepStatus.SKIPPED, f"when: {step.when.value}")
        return None

    @property
    def touched(self) -> list[str]:
        """Uses of `Pending` values by this host's task (--check: registered by steps that
        did not run); each host's work starts a fresh collector (`collect_uses`)."""
        return current_uses()

    def _depends(self) -> str:
        """What the `Pending` values used since ``touched`` was cleared are (empty: none)."""
        if not self.touched:
            return ""
        origins = list(dict.fromkeys(self.touched))
        self.touched.clear()
        return "depends on " + "; ".join(origins)

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
            return self._result(
                step, host, StepStatus.WOULD_RUN, plan_line(step.action, upload), done
            )
        return self._result(step, host, StepStatus.OK, None, done)

    async def _check_guards(
        self, guards: Guards, step: Step, transport: Transport, host: Host
    ) -> tuple[str, HostStepResult | None]:
        limit = step.timeout or GUARD_TIMEOUT_S
        if self.off_argv.reveals(guard_script(guards)):
            command, script = guard_command_on_stdin(guards, sudo=step.sudo)
            spec = CommandSpec(command, limit, script)
        else:
            spec = CommandSpec(guard_command(guards, sudo=step.sudo), limit)
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
        guards: Guards | None = None,
    ) -> tuple[HostStepResult, dict[str, object] | None]:
        """Run the action (retried per retries/until); with ``guards``, the first attempt
        checks them in the same remote command and may end as skipped."""
        retries, delay = retry_limits(step, context, play.path)
        attempts = 0
        met = False
        held: list[tuple[str, str]] = []
        out: OutputSink = (
            (lambda stream, text: held.append((stream, text))) if step.secret else sink
        )
        while True:
            attempts += 1
            if guards is not None and isinstance(prepared, Command):
                done, verdict = await self._guarded_attempt(
                    prepared, guards, step, host, out, transport
                )
                if done.status is not Status.UNREACHABLE and verdict != "run":
                    return self._guard_outcome(step, host, guards, verdict, done), None
                guards = None
            else:
                done = await perform(prepared, step, transport, host, out, self.options.run)
            if step.secret:
                self.masker.add([done.stdout, done.stderr])
                self.off_argv.add([done.stdout, done.stderr])
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
            if met or attempts > retries:
                break
            await asyncio.sleep(delay)
        return self._finish(play, step, host, context, done, attempts, met), value

    async def _guarded_attempt(
        self,
        prepared: Command,
        guards: Guards,
        step: Step,
        host: Host,
        sink: OutputSink,
        transport: Transport,
    ) -> tuple[HostResult, str | None]:
        """The guards and the command in one remote command: the result and the verdict."""
        splitter = VerdictSplitter(sink)
        limit = step.timeout or GUARD_TIMEOUT_S
        text = guarded_command(guards, prepared.text, sudo=step.sudo, guard_timeout=limit)
        together = replace(prepared, text=text)
        done = await perform(together, step, transport, host, splitter, self.options.run)
        splitter.flush()
        verdict = guard_verdict(done.stdout.partition("\n")[0])
        return replace(done, stdout=without_verdict(done.stdout)), verdict

    def _guard_outcome(
        self, step: Step, host: Host, guards: Guards, verdict: str | None, done: HostResult
    ) -> HostStepResult:
        """A guard skipped the step, or could not be checked."""
        if verdict is not None and done.status is Status.OK:
            return self._skip(step, host, guards, verdict)
        reason = first_error_line(done) or f"exit {done.exit_status}"
        return self._result(step, host, StepStatus.FAILED, f"guard check failed: {reason}")

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
        if outcome.status is StepStatus.WOULD_RUN:
            # --check: the step did not run, so what it registers is not known in this run.
            origin = f"{step.register}, registered by step {step.name!r} in this run"
            self.registered[host.name][step.register] = Pending(origin)
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


def _strings(value: object) -> list[str]:
    """Every string inside an ``-e`` value (a mapping or list from ``-e @file`` too)."""
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    if value is None or isinstance(value, bool):
        return []
    return [str(getattr(value, "value", value))]


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


def _in_order(hosts: Sequence[Host], results: Sequence[HostResult]) -> list[HostResult]:
    by_name = {r.host: r for r in results}
    return [
        by_name.get(h.name) or HostResult(h.name, h.address, Status.SKIPPED, error="not run")
        for h in hosts
    ]


def _quote(text: str) -> str:
    return shlex.quote(text)
