# ruff: noqa: E501  (argv lists of the real tools read best on one line)
"""The kube stand-ins against the real tools where this machine has them: etcdctl's JSON log
lines on stderr (Debian 12's etcd-client 3.4.23 against a real etcd on loopback).

The real output is kept in tests/data/kube/etcdctl-3.4.23-snapshot-save.stderr, so the
stand-in is compared with it everywhere, and the file with the real etcdctl where installed
(``apt-get install etcd-client etcd-server``; the test starts its own etcd on loopback).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
STANDINS = REPO / "tests" / "standins" / "kube_standins.py"
REAL_STDERR = REPO / "tests" / "data" / "kube" / "etcdctl-3.4.23-snapshot-save.stderr"


def shape(stderr: str) -> list[tuple[Any, ...]]:
    """What must match: level, caller, message, the fields' names, and ts's JSON type."""
    rows = []
    for line in stderr.splitlines():
        entry = json.loads(line)
        fields = tuple(sorted(set(entry) - {"level", "ts", "caller", "msg"}))
        rows.append(
            (entry["level"], entry["caller"], entry["msg"], fields, type(entry["ts"]).__name__)
        )
    return rows


def test_the_standin_etcdctl_logs_what_etcdctl_3_4_23_logs(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "state").mkdir()
    (tmp_path / "bin" / "etcdctl").symlink_to(STANDINS)
    (tmp_path / "state" / "cluster.json").write_text(json.dumps({"healthy": True}))
    target = tmp_path / "s.db"
    done = subprocess.run(
        [str(tmp_path / "bin" / "etcdctl"), "--endpoints=http://127.0.0.1:2379", "snapshot", "save", str(target)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Snapshot saved at {target}\n"
    assert shape(done.stderr) == shape(REAL_STDERR.read_text())
    paths = [json.loads(line).get("path") for line in done.stderr.splitlines()]
    assert paths == [f"{target}.part", None, None, None, None, str(target)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _real(tool: str) -> str | None:
    found = shutil.which(tool)
    return found if found and Path(found).resolve() != STANDINS.resolve() else None


def test_the_recorded_output_is_what_the_real_etcdctl_prints(tmp_path: Path) -> None:
    etcd, etcdctl = _real("etcd"), _real("etcdctl")
    if etcd is None or etcdctl is None:
        pytest.skip("no real etcd and etcdctl here (apt-get install etcd-server etcd-client)")
    version = subprocess.run([etcdctl, "version"], capture_output=True, text=True, check=False)
    if "3.4." not in version.stdout:
        pytest.skip(f"the recording is of etcdctl 3.4.23, this is {version.stdout.split()[:3]}")
    client, peer = _free_port(), _free_port()
    server = subprocess.Popen(
        [etcd, "--name", "default", "--data-dir", str(tmp_path / "data"),
         "--listen-client-urls", f"http://127.0.0.1:{client}",
         "--advertise-client-urls", f"http://127.0.0.1:{client}",
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"default=http://127.0.0.1:{peer}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        env = {**os.environ, "ETCDCTL_API": "3"}
        for _ in range(100):  # up to 20 s: etcd elects itself leader
            health = subprocess.run(
                [etcdctl, f"--endpoints=http://127.0.0.1:{client}", "endpoint", "health"],
                capture_output=True, text=True, check=False, env=env, timeout=30,
            )  # fmt: skip
            if health.returncode == 0:
                break
            time.sleep(0.2)
        done = subprocess.run(
            [etcdctl, f"--endpoints=http://127.0.0.1:{client}", "snapshot", "save", str(tmp_path / "s.db")],
            capture_output=True, text=True, check=False, env=env, timeout=60,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    assert shape(done.stderr) == shape(REAL_STDERR.read_text())
