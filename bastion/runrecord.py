"""``--out-dir``: a run's record on disk, and ``--retry-failed``: the hosts to run again.

The directory holds ``HOST.out`` and ``HOST.err`` (written as output arrives), ``hosts.ok`` and
``hosts.failed`` (one host a line, for scripts and re-runs) and ``run.json`` (the manifest).
Everything is private to the user: files 0600, the directory 0700. The directory is opened
once, before any host is contacted, without following another user's symlink or trusting
their directory (`private_files.open_private_dir`: an unusable one is exit 2); every file is
then made relative to it with ``O_NOFOLLOW``. A write that fails during the run (a full disk)
is one warning line (`record_guard`) and never changes a host's result or the exit code.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bastion.errors import UsageError
from bastion.models import Event, HostFinished, HostOutput, HostResult, Status
from bastion.private_files import open_in, open_private_dir, write_in
from bastion.record_guard import RecordGuard
from bastion.result_record import result_to_json

MANIFEST = "run.json"
MANIFEST_SCHEMA = 1


@dataclass(frozen=True, slots=True)
class RunContext:
    """What was asked for: recorded beside the results in the manifest and the history."""

    command: str
    selection: str
    inventory_path: str
    inventory_digest: str
    started_at: str
    """ISO 8601, UTC."""
    options: dict[str, object]
    run_id: str = field(default_factory=lambda: secrets.token_hex(6))
    """A short random id naming this run in history, run.json and messages."""


def write_manifest(
    directory: Path | int,
    context: RunContext,
    *,
    exit_code: int,
    elapsed_s: float,
    hosts: Sequence[Mapping[str, object]],
    kind: str | None = None,
) -> None:
    """Write ``run.json`` (0600): what was asked, how it ended, one entry per host.

    ``directory`` is a path or an open directory descriptor (see `OutDirRecorder`). ``kind``
    names a record that is not a plain run (``play``); a run's manifest has none.
    """
    manifest: dict[str, object] = {"schema": MANIFEST_SCHEMA}
    if kind is not None:
        manifest["kind"] = kind
    manifest |= {
        "run_id": context.run_id,
        "command": context.command,
        "selection": context.selection,
        "inventory": {"path": context.inventory_path, "sha256": context.inventory_digest},
        "started_at": context.started_at,
        "duration_s": round(elapsed_s, 3),
        "options": context.options,
        "exit_code": exit_code,
        "hosts": hosts,
    }
    text = json.dumps(manifest, indent=2) + "\n"
    if isinstance(directory, int):
        write_in(directory, MANIFEST, text)
        return
    fd = open_private_dir(directory)
    try:
        write_in(fd, MANIFEST, text)
    finally:
        os.close(fd)


def file_stem(host: str) -> str:
    """A host name safe to use as a file name in the record."""
    return host.replace(os.sep, "_").lstrip(".") or "_"


class OutDirRecorder:
    """Consumes the event stream and writes the run's record under ``out_dir``.

    Made before the run: an ``out_dir`` that is a file, cannot be created, or could be
    redirected by another user raises `private_files.UnsafeLocation` (exit 2) then.
    """

    def __init__(self, out_dir: Path, context: RunContext) -> None:
        self.path = out_dir
        self._fd: int | None = open_private_dir(out_dir)
        self._context = context
        self._open: dict[tuple[str, str], int] = {}
        self.guard = RecordGuard(f"the --out-dir record in {out_dir}")
        for stale in os.listdir(self._fd):
            if stale.endswith((".out", ".err")):
                with contextlib.suppress(OSError):  # a directory named so is left alone
                    os.unlink(stale, dir_fd=self._fd)

    def handle(self, event: Event) -> None:
        if self._fd is None or self.guard.failed is not None:
            return
        with self.guard:
            if isinstance(event, HostOutput):
                key = (event.host, event.stream)
                fd = self._open.get(key)
                if fd is None:
                    suffix = "out" if event.stream == "stdout" else "err"
                    name = f"{file_stem(event.host)}.{suffix}"
                    fd = self._open[key] = open_in(self._fd, name)
                _write_all(fd, event.data.encode("utf-8", "surrogateescape"))
            elif isinstance(event, HostFinished):
                host = event.result.host
                for stream, suffix in (("stdout", "out"), ("stderr", "err")):
                    fd = self._open.pop((host, stream), None)
                    if fd is None:
                        os.close(open_in(self._fd, f"{file_stem(host)}.{suffix}"))
                    else:
                        os.close(fd)
        if self.guard.failed is not None:
            self._close_files()

    def _close_files(self) -> None:
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()

    def finish(self, results: Sequence[HostResult], *, exit_code: int, elapsed_s: float) -> None:
        """Write the host lists and the manifest once every host is done."""
        self._close_files()
        if self._fd is None:
            return
        ok = [r.host for r in results if r.status is Status.OK]
        not_ok = [r.host for r in results if r.status is not Status.OK]
        hosts = []
        for result in results:
            record = result_to_json(result)
            del record["schema"], record["stdout"], record["stderr"]
            record["stdout_file"] = f"{file_stem(result.host)}.out"
            record["stderr_file"] = f"{file_stem(result.host)}.err"
            hosts.append(record)
        # Tried even after a failed output write: the lists and the manifest are small, and
        # space may have come back; a second failure is not warned about again.
        with self.guard:
            write_in(self._fd, "hosts.ok", "".join(f"{h}\n" for h in ok))
            write_in(self._fd, "hosts.failed", "".join(f"{h}\n" for h in not_ok))
            write_manifest(
                self._fd, self._context, exit_code=exit_code, elapsed_s=elapsed_s, hosts=hosts
            )
        os.close(self._fd)
        self._fd = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def hosts_to_retry(out_dir: Path) -> list[str]:
    """The hosts that did not succeed in the run recorded in ``out_dir``, in run order.

    The record is input like any file: read within the document limits, and anything that is
    not a list of ``{"host": NAME, "status": STATUS}`` is one error naming it.
    """
    from bastion.located_yaml import load_document, plain

    path = out_dir / MANIFEST
    missing = "no run record here (expected a --out-dir of an earlier run)"
    manifest = plain(load_document(path, UsageError, what="run record", missing=missing).root)
    hosts = manifest.get("hosts") if isinstance(manifest, dict) else None
    if not isinstance(hosts, list):
        raise UsageError("not a bastion run record (missing hosts/status)", source=path)
    names: list[str] = []
    for entry in hosts:
        name = entry.get("host") if isinstance(entry, dict) else None
        status = entry.get("status") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name or not isinstance(status, str):
            raise UsageError(
                f"not a bastion run record: a host entry is {str(entry)[:80]!r}", source=path
            )
        if status != str(Status.OK):
            names.append(name)
    return names
