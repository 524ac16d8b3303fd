"""``-o json``: one JSON object per host as it finishes, and nothing else on stdout."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TextIO

from bastion.models import Event, FileReport, HostFinished, HostResult

SCHEMA_VERSION = 1


def result_to_json(result: HostResult) -> dict[str, object]:
    """The documented JSON Lines record of one host (schema 1); ``files`` for copy and fetch."""
    record: dict[str, object] = {
        "schema": SCHEMA_VERSION,
        "host": result.host,
        "address": result.address,
        "status": str(result.status),
        "exit_status": result.exit_status,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "error": result.error,
        "duration_s": round(result.duration_s, 3),
    }
    if result.files is not None:
        record["files"] = files_to_json(result.files)
    return record


def files_to_json(report: FileReport) -> dict[str, object]:
    """A copy's ``changed``/``unchanged``/``failed`` paths, or a fetch's ``fetched``/``failed``."""
    failed = [{"path": f.path, "error": f.error} for f in report.failed]
    if report.kind == "fetch":
        return {"fetched": list(report.changed), "failed": failed}
    return {"changed": list(report.changed), "unchanged": list(report.unchanged), "failed": failed}


class JsonLinesRenderer:
    """Writes each finished host as one line of JSON, flushed at once for streaming readers."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def handle(self, event: Event) -> None:
        if isinstance(event, HostFinished):
            self._out.write(json.dumps(result_to_json(event.result), ensure_ascii=False) + "\n")
            self._out.flush()

    def finish(self, results: Sequence[HostResult]) -> None:
        """Every host was written when it finished."""
