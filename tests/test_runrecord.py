"""The --out-dir record, --retry-failed and the history log: contents and permissions."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from bastion.errors import UsageError
from bastion.history import read_history, record_run
from bastion.models import HostFinished, HostOutput, HostResult, Status
from bastion.runrecord import OutDirRecorder, RunContext, hosts_to_retry

CONTEXT = RunContext(
    command="uname -r",
    selection="--all",
    inventory_path="/tmp/inv.yaml",
    inventory_digest="ab" * 32,
    started_at="2026-11-27T01:00:00+00:00",
    options={"forks": 64},
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_out_dir_holds_per_host_files_lists_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "run1"
    recorder = OutDirRecorder(out, CONTEXT)
    ok = HostResult("node1", "127.0.1.1", Status.OK, 0, "6.1\n", "", None, 0.1)
    bad = HostResult("node2", "127.0.1.2", Status.FAILED, 1, "", "boom\n", "exit status 1", 0.2)
    gone = HostResult("node3", "127.0.1.3", Status.UNREACHABLE, error="connection refused")
    recorder.handle(HostOutput("node1", "stdout", "6.1\n"))
    recorder.handle(HostOutput("node2", "stderr", "boom\n"))
    for result in (ok, bad, gone):
        recorder.handle(HostFinished(result))
    recorder.finish([ok, bad, gone], exit_code=3, elapsed_s=0.5)

    assert (out / "node1.out").read_text() == "6.1\n"
    assert (out / "node1.err").read_text() == ""
    assert (out / "node2.err").read_text() == "boom\n"
    assert (out / "node3.out").read_text() == ""
    assert (out / "hosts.ok").read_text() == "node1\n"
    assert (out / "hosts.failed").read_text() == "node2\nnode3\n"
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["command"] == "uname -r"
    assert manifest["exit_code"] == 3
    assert manifest["inventory"] == {"path": "/tmp/inv.yaml", "sha256": "ab" * 32}
    assert [(h["host"], h["status"], h["exit_status"]) for h in manifest["hosts"]] == [
        ("node1", "ok", 0),
        ("node2", "failed", 1),
        ("node3", "unreachable", None),
    ]
    assert mode(out) == 0o700
    for path in out.iterdir():
        assert mode(path) == 0o600, path
    assert hosts_to_retry(out) == ["node2", "node3"]


def test_retry_failed_without_a_record_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"run\.json: no run record here"):
        hosts_to_retry(tmp_path)


def test_history_appends_one_line_per_run_without_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = tmp_path / "state" / "history.jsonl"
    monkeypatch.setenv("BASTION_HISTORY_FILE", str(history))
    secret_output = HostResult("node1", "127.0.1.1", Status.OK, 0, "s3cr3t-output\n")
    record_run(CONTEXT, [secret_output], exit_code=0, elapsed_s=0.25)
    record_run(CONTEXT, [secret_output], exit_code=0, elapsed_s=0.25)
    entries = read_history()
    assert len(entries) == 2
    assert entries[0]["command"] == "uname -r"
    assert entries[0]["hosts"] == {"node1": ["ok", 0]}
    assert "s3cr3t-output" not in history.read_text()
    assert mode(history) == 0o600
    assert read_history(limit=1) == entries[-1:]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"hosts": [{"host": 5, "status": "failed"}]}', "a host entry is"),
        ('{"hosts": [{"host": "", "status": "failed"}]}', "a host entry is"),
        ('{"hosts": [{"host": "node1"}]}', "a host entry is"),
        ('{"hosts": "node1"}', "missing hosts/status"),
        ("[1, 2]", "missing hosts/status"),
        ('{"hosts": [' * 2000 + "]" * 2000 + "}", "nested more than"),
        ("\x00\x01", "control character"),
    ],
)
def test_a_corrupt_record_is_one_usage_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "run.json").write_text(text)
    with pytest.raises(UsageError, match=message):
        hosts_to_retry(tmp_path)
