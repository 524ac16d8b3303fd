"""Drive one durable job from the bastion: start once, stream, reconnect, resume, collect.

The node does the keeping (see `wrapper.sh`): the command runs detached, its stdout and
stderr go to spool files, its exit code to an rc file. The bastion only ever asks the node
for the spools from the byte offsets it has already received, so a dropped connection costs
nothing: reconnect, ask again from the same offsets, and every byte arrives exactly once, in
order. Starting is guarded on the node by an atomic ``mkdir`` of the job directory, so a start
retried after a drop never runs the command twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from enum import Enum

from bastion.durable import script
from bastion.models import Host, HostResult, Reason, Status, Stream
from bastion.transport.base import (
    CommandSpec,
    Link,
    LinkFailure,
    LinkLost,
    LinkOpener,
    OutputSink,
)
from bastion.transport.mosh_screen import End, PageReader, page_geometry
from bastion.transport.mosh_transport import mosh_missing, run_mosh
from bastion.transport.session import StreamKeeper

MOSH_SERVER_MISSING = "Did not find mosh server startup message"
"""What mosh says when the host has no mosh-server (its SSH start worked)."""
CLEANUP_WAIT_S = 10.0
"""How long an interrupted run spends stopping and removing its job before giving up."""
PAGER_WINDOW = (60, 200)
"""The mosh-client's window (rows, columns) when reading pages: about 8 KB a page."""


@dataclass(frozen=True, slots=True)
class DurablePolicy:
    """How hard a durable job holds on to its host."""

    reconnect_window_s: float = 300.0
    """Give up when no connection could be made for this long after a drop."""
    backoff_first_s: float = 0.5
    backoff_max_s: float = 4.0
    keepalive_interval_s: float = 2.0
    """Durable runs use short keepalives, so a silent link is noticed in seconds."""
    keepalive_count_max: int = 3
    switch_after_drops: int = 2
    """With ``--transport auto``: SSH connections dropped mid-command before moving to mosh."""
    mosh_attempts: int = 5
    """mosh sessions tried per job (a flaky link can break mosh's SSH start too)."""
    mosh_grace_s: float = 60.0
    """How long past the job's own timeout a mosh session may last."""


class _Phase(Enum):
    MOSH = "mosh"
    START = "start"
    ATTACH = "attach"
    RESULT = "result"
    CLEAN = "clean"
    DONE = "done"


@dataclass(slots=True)
class _Progress:
    """Where a job is: its phase, whether its start is confirmed, timeout and exit code."""

    deadline: float | None
    phase: _Phase = _Phase.START
    confirmed: bool = False
    """The node answered the start (started now, or already): never start it again."""
    timed_out: bool = False
    must_kill: bool = False
    stopped: bool = False
    """The node saw the job's whole process group gone after stopping it (sudo'd ones too)."""
    rc: int | None = None
    after_mosh: _Phase = _Phase.START
    """Where to go on over SSH when a mosh session ends or cannot start."""


class _Spool(StreamKeeper):
    """What has arrived of the job's output: the session core's decoding and kept start
    (the spec's limit, as on every path), plus the byte offsets to resume from."""

    def __init__(self, on_output: OutputSink, keep_chars: int | None) -> None:
        super().__init__(on_output, keep_chars)
        self.offsets: dict[Stream, int] = {"stdout": 0, "stderr": 0}

    def feed(self, stream: Stream, data: bytes) -> None:
        # The decoders live across reconnects: a character split by a drop is still whole.
        self.offsets[stream] += len(data)
        super().feed(stream, data)


class _Ignore:
    """A data sink for commands whose output is not wanted."""

    def __call__(self, stream: Stream, data: bytes) -> None:
        pass


class _Collect:
    """A data sink that keeps a small command's stdout."""

    def __init__(self) -> None:
        self.stdout = b""
        self.stderr = b""

    def __call__(self, stream: Stream, data: bytes) -> None:
        if stream == "stdout":
            self.stdout += data
        else:
            self.stderr += data


class _GaveUp(Exception):
    """No connection could be made within the reconnect window."""


class _Refused(Exception):
    """A reconnection failed for a reason no retry mends (host key, authentication)."""

    def __init__(self, failure: LinkFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(slots=True)
class DurableJob:
    """One host's durable job; `run` returns its `HostResult`, never raises for the host."""

    opener: LinkOpener
    host: Host
    spec: CommandSpec
    job_id: str
    on_output: OutputSink
    policy: DurablePolicy = field(default_factory=DurablePolicy)
    mosh: str | None = None
    """None: SSH only; "first": run the job through mosh; "auto": move to mosh after drops."""
    reconnects: int = 0
    """Connections that dropped and were made again."""
    drops: int = 0
    """SSH connections lost mid-job."""
    notes: list[str] = field(default_factory=list)
    _mosh_given_up: bool = False
    _mosh_done: bool = False
    _link: Link | None = None
    _last_error: str = ""

    async def run(self) -> HostResult:
        """Start the job once, stream it to the end through drops, collect and clean it."""
        started = time.monotonic()
        spool = _Spool(self.on_output, self.spec.keep_output_chars)
        try:
            self._link = await self.opener.open_link(self.host, retry=True)
        except LinkFailure as exc:
            return self._result(started, spool, Status.UNREACHABLE, None, exc.message, exc.reason)
        try:
            return await self._drive(started, spool)
        except asyncio.CancelledError:
            await asyncio.shield(self._abandon())
            raise
        finally:
            if self._link is not None:
                self._link.close()

    async def _drive(self, started: float, spool: _Spool) -> HostResult:
        deadline = started + self.spec.timeout if self.spec.timeout is not None else None
        progress = _Progress(deadline=deadline)
        if self.mosh == "first":
            progress.phase = _Phase.MOSH
        while progress.phase is not _Phase.DONE:
            if progress.phase is _Phase.MOSH:
                await self._through_mosh(progress, spool)
                continue
            try:
                failure = await self._step(await self._reconnect(), progress, spool)
            except LinkLost as exc:
                self._drop(exc.reason)
                if progress.phase is _Phase.START:
                    # Unknown whether the start arrived: look for the job before starting again.
                    progress.phase = _Phase.ATTACH
                if self._should_switch(progress):
                    progress.after_mosh = progress.phase
                    progress.phase = _Phase.MOSH
                continue
            except _GaveUp:
                error = (
                    f"connection lost and not regained in {self.policy.reconnect_window_s:g}s "
                    f"({self._last_error}); job {self.job_id} may still be on the host "
                    "(bastion jobs lists it)"
                )
                return self._result(
                    started, spool, Status.UNREACHABLE, progress.rc, error, Reason.DROPPED
                )
            except _Refused as exc:
                # The host key changed (or auth broke) between two connections: that is no
                # flaky link, and retrying for the reconnect window would hide it.
                error = (
                    f"{exc.failure.message}; job {self.job_id} may still be on the host "
                    "(bastion jobs lists it)"
                )
                return self._result(
                    started, spool, Status.UNREACHABLE, progress.rc, error, exc.failure.reason
                )
            if failure is not None:
                message, why = failure
                return self._result(started, spool, Status.FAILED, None, message, why)
        rc = progress.rc
        if progress.timed_out:
            outcome = (
                "remote process group stopped"
                if progress.stopped
                else "the remote command may still be running (it did not stop when signalled)"
            )
            error = f"timed out after {self.spec.timeout:g}s; {outcome}"
            return self._result(started, spool, Status.TIMEOUT, None, error, Reason.TIMEOUT)
        if rc == 0:
            return self._result(started, spool, Status.OK, rc, None)
        return self._result(started, spool, Status.FAILED, rc, f"exit status {rc}", Reason.EXIT)

    async def _step(
        self, link: Link, progress: _Progress, spool: _Spool
    ) -> tuple[str, Reason] | None:
        """Take the job one phase further on ``link``; why, when it cannot go on."""
        if progress.phase is _Phase.START:
            probe = _Collect()
            status = await link.exec(script.start(self.job_id, self.spec.command), probe)
            if status not in (0, script.ALREADY_STARTED):
                reason = probe.stderr.decode(errors="replace").strip() or f"status {status}"
                return f"cannot start the job: {reason}", Reason.NOT_STARTED
            progress.confirmed = True
            progress.phase = _Phase.ATTACH
        elif progress.phase is _Phase.ATTACH:
            if progress.must_kill:
                await link.exec(script.kill(self.job_id), _Ignore())
                progress.must_kill = False
            deadline = None if progress.timed_out else progress.deadline
            attached = await self._attach(link, spool, deadline)
            if attached is None:  # the deadline passed: stop the job, then collect
                progress.timed_out = progress.must_kill = True
            elif attached == script.NO_SUCH_JOB and not progress.confirmed:
                progress.phase = _Phase.START  # the start never reached the node: start it
            elif attached != 0:
                return self._vanished(attached)
            else:
                progress.phase = _Phase.RESULT
        elif progress.phase is _Phase.RESULT:
            answer = _Collect()
            status = await link.exec(script.result(self.job_id), answer)
            words = answer.stdout.decode(errors="replace").split()
            rc_word = words[0] if words else ""
            # The node writes this line: an exit status is 1-3 ASCII digits, nothing else.
            if status != 0 or not (
                0 < len(rc_word) <= 3 and rc_word.isascii() and rc_word.isdigit()
            ):
                return self._vanished(status)
            progress.rc = int(rc_word)
            if "timeout" in words[1:]:  # stopped at its deadline by the node (mosh runs)
                progress.timed_out = True
            progress.stopped = "stopped" in words[1:]
            progress.phase = _Phase.CLEAN
        elif progress.phase is _Phase.CLEAN:
            await link.exec(script.clean(self.job_id), _Ignore())
            progress.phase = _Phase.DONE
        return None

    def _should_switch(self, progress: _Progress) -> bool:
        """Whether ``--transport auto`` moves this job to mosh now."""
        return (
            self.mosh == "auto"
            and not self._mosh_done
            and not self._mosh_given_up
            and self.drops >= self.policy.switch_after_drops
            and progress.phase in (_Phase.START, _Phase.ATTACH)
        )

    async def _through_mosh(self, progress: _Progress, spool: _Spool) -> None:
        """Start (or find) the job in a mosh session and read its output off the screen.

        The node pages the spools from the offsets received so far, then the exit code
        (`mosh_screen`); SSH is only needed for mosh to start. When the session ends before
        the end was read, the job goes on over SSH from wherever the pages got to.
        """
        progress.phase = progress.after_mosh
        if progress.phase is _Phase.START:
            progress.phase = _Phase.ATTACH  # the mosh session starts it if it is not started
        missing = mosh_missing()
        if missing is None and self.host.jump:
            missing = (
                f"{self.host.name} is behind jump host {self.host.jump}, which mosh cannot pass"
            )
        if missing is not None:
            self._mosh_given_up = True
            self.notes.append(f"mosh unavailable ({missing}); stayed on SSH")
            return
        timeout = self.spec.timeout
        limit = None if timeout is None else timeout + self.policy.mosh_grace_s
        delay = self.policy.backoff_first_s
        for attempt in range(self.policy.mosh_attempts):
            if attempt:
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self.policy.backoff_max_s)
            offsets = (spool.offsets["stdout"], spool.offsets["stderr"])
            remote = script.serve(
                self.job_id, self.spec.command, timeout, offsets, page_geometry(PAGER_WINDOW)
            )
            reader = PageReader(PAGER_WINDOW, spool.offsets, spool.feed)
            outcome = await run_mosh(
                self.host, remote, timeout=limit, window=PAGER_WINDOW, driver=reader
            )
            if reader.end is not None:
                self._mosh_collected(progress, reader.end, cleaned=outcome.ok, attempt=attempt)
                return
            if reader.error is not None:
                self._mosh_given_up = True
                self.notes.append(f"mosh pages unreadable ({reader.error}); continued over SSH")
                return
            if outcome.exit_status is None or MOSH_SERVER_MISSING in outcome.tail:
                break  # stopped at the deadline, or no mosh-server there: trying again is vain
            if outcome.ok:
                # The pager left without showing the end (the job vanished, or could not
                # start): SSH says why.
                self._mosh_given_up = True
                self.notes.append("mosh session ended early; continued over SSH")
                return
        self._mosh_given_up = True
        self.notes.append(f"mosh failed ({outcome.reason()}); continued over SSH")

    def _mosh_collected(
        self, progress: _Progress, end: End, *, cleaned: bool, attempt: int
    ) -> None:
        """The output and exit code came through mosh; the job is done."""
        self._mosh_done = progress.confirmed = True
        progress.rc = end.rc
        progress.timed_out = end.timed_out
        # The pager shows the end only after its kill_job, which waits for the group to go.
        progress.stopped = end.timed_out
        progress.phase = _Phase.DONE
        if self.mosh == "auto":
            note = f"switched to mosh after {self.drops} dropped SSH connections"
        else:
            note = "ran over mosh"
        # A lossy link can break mosh's own SSH start: say when it took more than one.
        self.notes.append(f"{note}, mosh started on try {attempt + 1}" if attempt else note)
        if not cleaned:
            self.notes.append(
                f"job {self.job_id} may be left on the host (bastion jobs --clean removes it)"
            )

    async def _attach(self, link: Link, spool: _Spool, deadline: float | None) -> int | None:
        """Stream from the offsets received so far; None when ``deadline`` passes first."""
        offsets = spool.offsets
        command = script.attach(self.job_id, offsets["stdout"], offsets["stderr"])
        if deadline is None:
            return await link.exec(command, spool.feed)
        try:
            return await asyncio.wait_for(
                link.exec(command, spool.feed), max(0.0, deadline - time.monotonic())
            )
        except TimeoutError:
            return None

    async def _reconnect(self) -> Link:
        """The open link, or a new one after a drop, with jittered backoff, within the window."""
        if self._link is not None:
            return self._link
        lost_at = time.monotonic()
        delay = self.policy.backoff_first_s
        while True:
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            try:
                self._link = await self.opener.open_link(self.host, retry=False)
            except LinkFailure as exc:
                if not exc.transient:
                    raise _Refused(exc) from exc
                self._last_error = exc.message
                if time.monotonic() - lost_at > self.policy.reconnect_window_s:
                    raise _GaveUp from exc
                delay = min(delay * 2, self.policy.backoff_max_s)
                continue
            self.reconnects += 1
            return self._link

    def _drop(self, reason: str) -> None:
        self.drops += 1
        self._last_error = f"last drop: {reason}"
        if self._link is not None:
            self._link.close()
            self._link = None

    async def _abandon(self) -> None:
        """On interrupt: stop the job's process group and remove it, if the link allows."""
        link = self._link
        if link is None:
            return
        with contextlib.suppress(LinkLost, TimeoutError):
            async with asyncio.timeout(CLEANUP_WAIT_S):
                await link.exec(script.kill(self.job_id), _Ignore())
                await link.exec(script.clean(self.job_id), _Ignore())

    def _vanished(self, status: int) -> tuple[str, Reason]:
        if status == script.NO_SUCH_JOB:
            message = f"job {self.job_id} disappeared from the host before its result was read"
        else:
            message = f"cannot read job {self.job_id} (wrapper status {status})"
        return message, Reason.DROPPED

    def _result(
        self,
        started: float,
        spool: _Spool,
        status: Status,
        rc: int | None,
        error: str | None,
        reason: Reason | None = None,
    ) -> HostResult:
        spool.flush()
        notes = [*self.notes, f"reconnected {self.reconnects}x"] if self.reconnects else self.notes
        return HostResult(
            host=self.host.name,
            address=self.host.address,
            status=status,
            exit_status=rc,
            stdout=spool.text("stdout"),
            stderr=spool.text("stderr"),
            error=error,
            duration_s=time.monotonic() - started,
            notes=tuple(notes),
            reason=reason,
        )
