"""``--out-dir``: a run's record on disk, and ``--retry-failed``: the hosts to run again.

The directory holds ``HOST.out`` and ``HOST.err`` (written as output arrives), ``hosts.ok`` and
``hosts.failed`` (one host a line, for scripts and re-runs) and ``run.json`` (the manifest).
Everything is private to the user: files 0600, the directory 0700.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bastion.errors import UsageError
from bastion.models import Event, HostFinished, HostOutput, HostResult, Status
from bastion.private_files import open_private, private_dir, write_private
from bastion.render.jsonl import result_to_json

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
    directory: Path,
    context: RunContext,
    *,
    exit_code: int,
    elapsed_s: float,
    hosts: Sequence[Mapping[str, object]],
    kind: str | None = None,
) -> None:
    """Write ``run.json`` (0600): what was asked, how it ended, one entry per host.

    ``kind`` names a record that is not a plain run (``play``); a run's manifest has none.
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
    write_private(directory / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def file_stem(host: str) -> str:
    """A host name safe to use as a file name in the record."""
    return host.replace(os.sep, "_").lstrip(".") or "_"


class OutDirRecorder:
    """Consumes the event stream and writes the run's record under ``out_dir``."""

    def __init__(self, out_dir: Path, context: RunContext) -> None:
        self._dir = private_dir(out_dir)
        self._context = context
        self._open: dict[tuple[str, str], int] = {}
        for stale in (*self._dir.glob("*.out"), *self._dir.glob("*.err")):
            stale.unlink()

    def handle(self, event: Event) -> None:
        if isinstance(event, HostOutput):
            key = (event.host, event.stream)
            fd = self._open.get(key)
            if fd is None:
                suffix = "out" if event.stream == "stdout" else "err"
                fd = self._open[key] = open_private(self._dir / f"{file_stem(event.host)}.{suffix}")
            os.write(fd, event.data.encode("utf-8"))
        elif isinstance(event, HostFinished):
            host = event.result.host
            for stream, suffix in (("stdout", "out"), ("stderr", "err")):
                fd = self._open.pop((host, stream), None)
                if fd is None:
                    os.close(open_private(self._dir / f"{file_stem(host)}.{suffix}"))
                else:
                    os.close(fd)

    def finish(self, results: Sequence[HostResult], *, exit_code: int, elapsed_s: float) -> None:
        """Write the host lists and the manifest once every host is done."""
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()
        ok = [r.host for r in results if r.status is Status.OK]
        not_ok = [r.host for r in results if r.status is not Status.OK]
        write_private(self._dir / "hosts.ok", "".join(f"{h}\n" for h in ok))
        write_private(self._dir / "hosts.failed", "".join(f"{h}\n" for h in not_ok))
        hosts = []
        for result in results:
            record = result_to_json(result)
            del record["schema"], record["stdout"], record["stderr"]
            record["stdout_file"] = f"{file_stem(result.host)}.out"
            record["stderr_file"] = f"{file_stem(result.host)}.err"
            hosts.append(record)
        write_manifest(
            self._dir, self._context, exit_code=exit_code, elapsed_s=elapsed_s, hosts=hosts
        )


def hosts_to_retry(out_dir: Path) -> list[str]:
    """The hosts that did not succeed in the run recorded in ``out_dir``, in run order."""
    path = out_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            "no run record here (expected a --out-dir of an earlier run)", source=path
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read run record: {exc}", source=path) from exc
    try:
        return [h["host"] for h in manifest["hosts"] if h["status"] != str(Status.OK)]
    except (KeyError, TypeError) as exc:
        raise UsageError("not a bastion run record (missing hosts/status)", source=path) from exc
