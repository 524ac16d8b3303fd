"""The JSON record of one host's result (schema 1): what ``-o json`` prints and run.json keeps.

One definition for the renderer (render/jsonl.py) and the run record (runrecord.py), so the
two can never disagree, and the record layer needs nothing from the renderers.
"""

from __future__ import annotations

from bastion.models import FileReport, HostResult

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
        # Additive in schema 1: why the host did not succeed, as data (docs/output.md).
        "reason": None if result.reason is None else str(result.reason),
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
