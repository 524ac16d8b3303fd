"""``bastion play --out-dir``: the play's record, laid out like ``run``'s.

``HOST.out`` and ``HOST.err`` hold the host's output of every step, each step introduced by a
``### STEP n/m name`` line in ``HOST.out``; ``hosts.ok`` and ``hosts.failed`` list the hosts
(so ``--retry-failed``-style scripts work); ``run.json`` is the manifest, with every host's
result per step. Everything arrives masked from the engine; files are 0600 in a 0700 directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from bastion.playbook.results import (
    PlayEvent,
    PlayRecap,
    StepFinished,
    StepOutput,
    StepStarted,
)
from bastion.private_files import open_in, open_private_dir, write_in
from bastion.record_guard import RecordGuard
from bastion.runrecord import RunContext, file_stem, write_manifest


class PlayRecorder:
    """Consumes the play's events and writes the record under ``out_dir``."""

    def __init__(self, out_dir: Path, context: RunContext) -> None:
        # Opened before the play (exit 2 if unusable); written relative to this descriptor.
        self._dir = open_private_dir(out_dir)
        self.guard = RecordGuard(f"the --out-dir record in {out_dir}")
        self._context = context
        self._fds: dict[tuple[str, str], int] = {}
        self._step = ""
        self._headed: set[str] = set()
        with self.guard:
            for stale in os.listdir(self._dir):
                if stale.endswith((".out", ".err")):
                    os.unlink(stale, dir_fd=self._dir)

    def handle(self, event: PlayEvent) -> None:
        if isinstance(event, StepStarted):
            self._step = f"### STEP {event.number}/{event.total} {event.name}\n"
            self._headed = set()
        elif isinstance(event, StepOutput):
            if event.host not in self._headed:
                self._headed.add(event.host)
                self._write(event.host, "stdout", self._step)
            self._write(event.host, event.stream, event.text)
        elif isinstance(event, StepFinished):
            for result in event.results:
                if result.host not in self._headed:  # every host's file names every step
                    self._headed.add(result.host)
                    self._write(result.host, "stdout", self._step)

    def _write(self, host: str, stream: str, text: str) -> None:
        if self.guard.failed is not None:
            return
        with self.guard:  # a full disk is one warning, never the play's failure
            key = (host, stream)
            fd = self._fds.get(key)
            if fd is None:
                suffix = "out" if stream == "stdout" else "err"
                fd = self._fds[key] = open_in(self._dir, f"{file_stem(host)}.{suffix}")
            os.write(fd, text.encode("utf-8"))

    def finish(self, recap: PlayRecap, *, exit_code: int) -> None:
        """Write the host lists and the manifest once the play is over."""
        for tally in recap.hosts:
            for stream in ("stdout", "stderr"):
                if (tally.host, stream) not in self._fds:
                    self._write(tally.host, stream, "")
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        ok = [t.host for t in recap.hosts if t.status == "ok"]
        not_ok = [t.host for t in recap.hosts if t.status != "ok"]
        hosts = []
        for tally in recap.hosts:
            steps = [
                {
                    "play": r.play,
                    "step": r.step,
                    "status": str(r.status),
                    "ignored": r.ignored,
                    "detail": r.detail,
                    "rc": r.rc,
                    "attempts": r.attempts,
                    "duration_s": round(r.duration_s, 3),
                }
                for r in recap.results
                if r.host == tally.host
            ]
            hosts.append(
                {
                    "host": tally.host,
                    "address": tally.address,
                    "status": tally.status,
                    "counts": tally.counts,
                    "stopped_at": tally.stopped_at,
                    "error": tally.reason,
                    "stdout_file": f"{file_stem(tally.host)}.out",
                    "stderr_file": f"{file_stem(tally.host)}.err",
                    "steps": steps,
                }
            )
        with self.guard:
            write_in(self._dir, "hosts.ok", "".join(f"{h}\n" for h in ok))
            write_in(self._dir, "hosts.failed", "".join(f"{h}\n" for h in not_ok))
            write_manifest(
                self._dir,
                self._context,
                exit_code=exit_code,
                elapsed_s=recap.elapsed_s,
                hosts=hosts,
                kind="play",
            )
        os.close(self._dir)
