"""The mosh and auto transports: a real mosh client and mosh-server against the real lab.

mosh carries the durable-job wrapper's wait; the output and the exit code are read over SSH
from the node's spool. These tests check that with real programs, the fall-backs to SSH, and
`--transport auto` moving a host whose SSH keeps being reset to mosh, after which port 22 is
blackholed entirely while the job finishes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from bastion.lab import processes
from bastion.models import Host
from bastion.transport.mosh_transport import mosh_argv, ssh_option
from tests.conftest import BASTION, Cli, is_root
from tests.faults import clear_fault
from tests.test_durable_lab import (
    EXIT,
    jobs_left,
    node_root,
    slow_command,
    starts,
    wait_for,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("mosh") is None, reason="mosh is not installed"),
]
needs_faults = pytest.mark.skipif(
    not is_root() or shutil.which("iptables") is None, reason="faults need root and iptables"
)


def test_mosh_bootstraps_with_strict_host_keys_and_the_inventory_settings() -> None:
    host = Host(
        name="node1",
        address="127.0.0.5",
        port=2222,
        user="ops",
        identity_file="/keys/ops key",
        known_hosts="/lab/known_hosts",
        connect_timeout=4,
    )
    assert ssh_option(host) == (
        "ssh -p 2222 -o StrictHostKeyChecking=yes -o BatchMode=yes "
        "-o UserKnownHostsFile=/lab/known_hosts -o ConnectTimeout=4 -l ops "
        "-i '/keys/ops key' -o IdentitiesOnly=yes"
    )
    argv = mosh_argv(host, ["sh", "-c", "true"])
    assert argv[0] == "mosh"
    assert argv[-5:] == ["127.0.0.5", "--", "sh", "-c", "true"]


def test_mosh_refuses_a_jump_host() -> None:
    with pytest.raises(ValueError, match="mosh cannot pass it"):
        mosh_argv(Host(name="node2", address="127.0.0.6", jump="node1"), ["true"])


def json_records(stdout: str) -> dict[str, dict[str, object]]:
    return {r["host"]: r for r in map(json.loads, stdout.splitlines())}


@pytest.mark.skipif(not is_root(), reason="per-node /root needs the root-mode lab")
def test_transport_mosh_runs_once_and_returns_output_and_exit_code(lab: Cli) -> None:
    for node in ("node1", "node2"):
        (node_root(lab, node) / "mosh-starts").unlink(missing_ok=True)
    done = lab(
        "run", "-i", "lab", "-H", "node[1-2]", "--transport", "mosh", "-o", "json",
        'echo started >> ~/mosh-starts; echo "out $(hostname)"; echo "err $(hostname)" >&2; '
        'exit "$(hostname | tr -dc 0-9)"',
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    records = json_records(done.stdout)
    for node in ("node1", "node2"):
        assert records[node]["stdout"] == f"out {node}\n"
        assert records[node]["stderr"] == f"err {node}\n"
        assert starts(lab, node, "mosh-starts") == 1
        assert jobs_left(lab, node) == []
        # The exit code mosh itself would have lost (mosh issue #1010).
        assert records[node]["exit_status"] == int(node.removeprefix("node"))
    assert "(ran over mosh)" in done.stderr


@pytest.mark.skipif(not is_root(), reason="per-node /root needs the root-mode lab")
def test_mosh_keeps_the_exit_code_and_a_timeout_stops_the_job(lab: Cli) -> None:
    done = lab("run", "-i", "lab", "-H", "node1", "--transport", "mosh", "-o", "json", "exit 9")
    assert json_records(done.stdout)["node1"]["exit_status"] == 9
    marker = f"sleep 6{os.getpid() % 1000}.5"
    done = lab(
        "run", "-i", "lab", "-H", "node1", "--transport", "mosh", "-t", "2", "-o", "json",
        f"echo begun; {marker}",
    )  # fmt: skip
    record = json_records(done.stdout)["node1"]
    assert (record["status"], record["stdout"]) == ("timeout", "begun\n"), done.stderr
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    assert left.stdout == ""


def test_without_mosh_here_the_run_stays_on_ssh_and_says_so(lab: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = dict(lab.env, PATH=str(empty))
    done = Cli(env, lab.cwd)("run", "-i", "lab", "-H", "node1", "--transport", "mosh", "echo hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "node1: hi\n"
    assert (
        "(mosh unavailable (mosh is not installed here (apt-get install mosh)); stayed on SSH)"
        in done.stderr
    )


def test_without_mosh_server_on_the_host_the_run_continues_on_ssh(lab: Cli) -> None:
    env = dict(lab.env, BASTION_MOSH_SERVER="/nonexistent/mosh-server")
    done = Cli(env, lab.cwd)("run", "-i", "lab", "-H", "node2", "--transport", "mosh", "echo hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "node2: hi\n"
    assert "(mosh failed (" in done.stderr
    assert "Did not find mosh server startup message" in done.stderr
    assert "continued over SSH)" in done.stderr


def test_a_host_behind_a_jump_host_stays_on_ssh(lab: Cli, tmp_path: Path) -> None:
    lab_dir = Path(lab.env["BASTION_LAB_DIR"])
    inventory = yaml.safe_load((lab_dir / "inventory.yaml").read_text())
    for key in ("identity_file", "known_hosts"):
        inventory["defaults"][key] = str(lab_dir / inventory["defaults"][key])
    inventory["hosts"]["node2"]["jump"] = "node1"
    path = tmp_path / "jumped.yaml"
    path.write_text(yaml.safe_dump(inventory))
    done = lab("run", "-i", str(path), "-H", "node2", "--transport", "mosh", "echo hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "node2: hi\n"
    assert "node2 is behind jump host node1, which mosh cannot pass" in done.stderr


AUTO_LINES = 30
"""Long enough for two resets, the move to mosh, then a blackhole, on a loaded machine."""


def mosh_clients(pid: int) -> list[int]:
    """The mosh-client processes a bastion run started."""
    table = processes.process_table()
    return [
        child
        for child in processes.descendants([pid], table)
        if any("mosh-client" in word for word in processes.command_line(child) or [])
    ]


@pytest.mark.timeout(300)  # 20-second commands on a loaded machine
@needs_faults
def test_auto_moves_a_resetting_host_to_mosh_and_survives_a_blackholed_ssh(lab: Cli) -> None:
    (node_root(lab, "node3") / "auto-starts").unlink(missing_ok=True)
    run = subprocess.Popen(
        [*BASTION, "run", "-i", "lab", "-H", "node3", "--transport", "auto", "-o", "json",
         slow_command("auto-starts", AUTO_LINES)],
        env=lab.env, cwd=lab.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    mosh_up = threading.Event()
    timeline: list[str] = []

    def reset_until_mosh() -> None:
        # SSH connections to node3 are reset every few seconds until the host is on mosh.
        while not mosh_up.is_set() and run.poll() is None:
            lab("lab", "fault", "node3", "--reset", "--port", "22")
            time.sleep(1.0)
            clear_fault(lab, "node3")
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline and not mosh_up.is_set():
                if mosh_clients(run.pid):
                    mosh_up.set()
                time.sleep(0.1)

    resetter = threading.Thread(target=reset_until_mosh, daemon=True)
    try:
        wait_for(lambda: starts(lab, "node3", "auto-starts") > 0, 60, "the job to start")
        resetter.start()
        try:
            wait_for(lambda: mosh_up.is_set() or run.poll() is not None, 90, "mosh")
        finally:
            mosh_up.set()  # stops the resets
        if run.poll() is not None:
            stdout, stderr = run.communicate()
            raise AssertionError(f"the run ended before moving to mosh: {stderr}")
        resetter.join(30)
        # Now mosh lives on UDP: TCP port 22 goes dark entirely.
        assert lab("lab", "fault", "node3", "--blackhole", "--port", "22").returncode == 0
        timeline.append("ssh blackholed")
        wait_for(
            lambda: any(node_root(lab, "node3").glob(".bastion/jobs/*/rc")), 60, "the job to end"
        )
        timeline.append("job ended")
        wait_for(lambda: not mosh_clients(run.pid), 30, "the mosh session to end")
        timeline.append("mosh session ended")
        clear_fault(lab, "node3")
        timeline.append("ssh back")
        stdout, stderr = run.communicate(timeout=120)
    finally:
        mosh_up.set()
        if run.poll() is None:
            run.kill()
            run.wait()
        clear_fault(lab, "node3")
    assert timeline == ["ssh blackholed", "job ended", "mosh session ended", "ssh back"]
    assert run.returncode == 1, stderr
    record = json.loads(stdout)
    assert record["exit_status"] == EXIT, stderr
    assert record["stdout"] == "".join(f"line {i}\n" for i in range(1, AUTO_LINES + 1)), stderr
    assert record["stderr"] == "".join(f"err {i}\n" for i in range(1, AUTO_LINES + 1)), stderr
    assert starts(lab, "node3", "auto-starts") == 1
    assert "switched to mosh after" in stderr
    assert jobs_left(lab, "node3") == []
