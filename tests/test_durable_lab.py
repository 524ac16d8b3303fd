"""`bastion run --durable` against real sshd nodes, with real faults on the link (iptables).

The fault scenarios are slow by nature (a 20-second command each), so they run at the same
time, one node each: 30% loss on node3, a 10-second blackhole on node2, node1's sshd session
processes killed mid-command. Each checks the three guarantees: the command started exactly
once (a marker file on the node counts starts), every line arrived exactly once and in order,
and the exit code is the command's.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bastion.durable import script
from bastion.durable.script import wrapper_text
from bastion.lab import processes
from tests.conftest import BASTION, Cli, is_root
from tests.faults import clear_fault, lab_fault

pytestmark = pytest.mark.lab

needs_faults = pytest.mark.skipif(
    not is_root() or shutil.which("iptables") is None, reason="faults need root and iptables"
)

WRAPPER = Path(__file__).resolve().parent.parent / "bastion" / "durable" / "wrapper.sh"
MARKER = "durable-starts"
LINES = 20
EXIT = 7
TRANSPORTS = ("asyncssh", "paramiko")


def slow_command(marker: str, lines: int = LINES) -> str:
    """A line a second (20 s); each start appends to a marker file in the node's /root."""
    return (
        f'echo started >> ~/{marker}; i=1; while [ $i -le {lines} ]; do echo "line $i"; '
        f'echo "err $i" >&2; sleep 1; i=$((i + 1)); done; exit {EXIT}'
    )


EXPECTED_STDOUT = "".join(f"line {i}\n" for i in range(1, LINES + 1))
EXPECTED_STDERR = "".join(f"err {i}\n" for i in range(1, LINES + 1))


def node_root(cli: Cli, node: str) -> Path:
    """The node's private /root as the host sees it: its overlay's upper layer."""
    return Path(cli.env["BASTION_LAB_DIR"]) / "nodes" / node / "root.upper"


def starts(cli: Cli, node: str, marker_name: str = MARKER) -> int:
    marker = node_root(cli, node) / marker_name
    return len(marker.read_text().splitlines()) if marker.exists() else 0


def jobs_left(cli: Cli, node: str) -> list[str]:
    jobs = node_root(cli, node) / ".bastion" / "jobs"
    return sorted(p.name for p in jobs.iterdir()) if jobs.exists() else []


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_the_wrapper_is_posix_sh_and_shellcheck_clean() -> None:
    assert wrapper_text() == WRAPPER.read_text()
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is not installed (apt-get install shellcheck)")
    done = subprocess.run(
        [shellcheck, "--shell=sh", "--severity=style", str(WRAPPER)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


@pytest.mark.skipif(not is_root(), reason="per-node /root needs the root-mode lab")
def test_durable_run_keeps_streams_apart_exit_codes_and_cleans_up(lab: Cli) -> None:
    done = lab(
        "run", "-i", "lab", "--all", "--durable", "-o", "json",
        'echo "out $(hostname)"; echo "err $(hostname)" >&2; test "$(hostname)" != node2',
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    records = {r["host"]: r for r in map(json.loads, done.stdout.splitlines())}
    for node in ("node1", "node2", "node3"):
        assert records[node]["stdout"] == f"out {node}\n"
        assert records[node]["stderr"] == f"err {node}\n"
        assert records[node]["exit_status"] == (1 if node == "node2" else 0)
        assert jobs_left(lab, node) == []
    assert "failed  node2  exit status 1: err node2" in done.stderr


@pytest.mark.skipif(not is_root(), reason="per-node /root needs the root-mode lab")
def test_durable_timeout_stops_the_remote_group_and_keeps_output(lab: Cli) -> None:
    marker = f"sleep 5{os.getpid() % 1000}.5"
    done = lab(
        "run", "-i", "lab", "-H", "node1", "--durable", "-t", "2", "-o", "json",
        f"echo begun; {marker} & {marker}; echo never",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "timeout"
    assert record["stdout"] == "begun\n"
    assert record["exit_status"] is None
    assert "timed out after 2s; remote process group stopped" in done.stderr
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    assert left.stdout == ""
    assert jobs_left(lab, "node1") == []


@dataclass
class Scenario:
    """One node's durable run in the background, and what the fault thread did to it."""

    node: str
    transport: str
    process: subprocess.Popen[str]
    fault: threading.Thread | None = None
    failure: BaseException | None = None

    def outcome(self) -> tuple[dict[str, object], str, int]:
        stdout, stderr = self.process.communicate(timeout=240)
        if self.fault is not None:
            self.fault.join(60)
        if self.failure is not None:
            raise self.failure
        return json.loads(stdout), stderr, self.process.returncode


def start_durable(cli: Cli, node: str, transport: str) -> Scenario:
    (node_root(cli, node) / f"{MARKER}-{transport}").unlink(missing_ok=True)
    command = slow_command(f"{MARKER}-{transport}")
    args = ["run", "-i", "lab", "-H", node, "--durable", "-o", "json", "--transport", transport]
    process = subprocess.Popen(
        [*BASTION, *args, command],
        env=cli.env,
        cwd=cli.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Scenario(node, transport, process)


def in_background(scenario: Scenario, action: Callable[[], None]) -> None:
    def guarded() -> None:
        try:
            action()
        except BaseException as exc:  # reported by outcome(), in the test's thread
            scenario.failure = exc

    scenario.fault = threading.Thread(target=guarded, daemon=True)
    scenario.fault.start()


def sshd_sessions(cli: Cli, node: str) -> list[int]:
    """The node's per-connection sshd processes: the children of its listener."""
    state = json.loads((Path(cli.env["BASTION_LAB_DIR"]) / "state.json").read_text())
    listener = next(int(n["pid"]) for n in state["nodes"] if n["name"] == node)
    return [info.pid for info in processes.process_table().values() if info.ppid == listener]


def reconnects(stderr: str) -> int:
    found = re.search(r"reconnected (\d+)x", stderr)
    return int(found.group(1)) if found else 0


@pytest.mark.timeout(300)  # 20-second commands on a loaded machine
@needs_faults
def test_durable_jobs_survive_loss_blackhole_and_killed_sessions(lab: Cli) -> None:
    """Both SSH transports at once: six 20-second runs, two per node, one fault per node."""
    runs = {
        (node, transport): start_durable(lab, node, transport)
        for node in ("node1", "node2", "node3")
        for transport in TRANSPORTS
    }

    def started(node: str) -> bool:
        return all(starts(lab, node, f"{MARKER}-{t}") > 0 for t in TRANSPORTS)

    def blackhole() -> None:
        wait_for(lambda: started("node2"), 60, "node2's jobs to start")
        time.sleep(3)
        with lab_fault(lab, "node2", "--blackhole"):
            time.sleep(10)

    def kill_sessions() -> None:
        wait_for(lambda: started("node1"), 60, "node1's jobs to start")
        time.sleep(4)
        sessions = sshd_sessions(lab, "node1")
        assert sessions, "no sshd session to kill on node1"
        for pid in sessions:
            os.kill(pid, signal.SIGKILL)

    try:
        with lab_fault(lab, "node3", "--loss", "30"):
            in_background(runs["node2", "asyncssh"], blackhole)
            in_background(runs["node1", "asyncssh"], kill_sessions)
            results = {key: run.outcome() for key, run in runs.items()}
    finally:
        for run in runs.values():
            if run.process.poll() is None:
                run.process.kill()
                run.process.wait()
        clear_fault(lab, "node2")
    counts = {}
    for (node, transport), (record, stderr, code) in results.items():
        where = f"{node} over {transport}: {stderr}"
        assert code == 1, where
        assert record["status"] == "failed", where
        assert record["exit_status"] == EXIT, where
        assert record["stdout"] == EXPECTED_STDOUT, where
        assert record["stderr"] == EXPECTED_STDERR, where
        assert starts(lab, node, f"{MARKER}-{transport}") == 1, f"{where}: started twice"
        counts[node, transport] = reconnects(stderr)
    for node in ("node1", "node2", "node3"):
        assert jobs_left(lab, node) == []
    for transport in TRANSPORTS:
        assert counts["node2", transport] >= 1, results["node2", transport][1]
        assert counts["node1", transport] >= 1, results["node1", transport][1]
    # The number the issue asks for: reconnects of a 20-second command under 30% loss.
    print(f"reconnects: {counts}")


def on_node(cli: Cli, node: str, *commands: str) -> list[tuple[int, str]]:
    """Run commands one after another over one connection; (exit status, stdout) each."""
    from bastion.inventory import load_inventory
    from bastion.transport.asyncssh_transport import AsyncsshTransport
    from bastion.transport.base import ConnectOptions

    host = load_inventory(Path(cli.env["BASTION_LAB_DIR"]) / "inventory.yaml").hosts[node]

    async def main() -> list[tuple[int, str]]:
        transport = AsyncsshTransport(ConnectOptions())
        link = await transport.open_link(host, retry=True)
        answers = []
        try:
            for command in commands:
                out: dict[str, bytes] = {"stdout": b"", "stderr": b""}

                def keep(stream: str, data: bytes, out: dict[str, bytes] = out) -> None:
                    out[stream] += data

                status = await link.exec(command, keep)
                answers.append((status, out["stdout"].decode()))
        finally:
            link.close()
            await transport.close()
        return answers

    return asyncio.run(main())


@pytest.mark.skipif(not is_root(), reason="per-node /root needs the root-mode lab")
def test_a_job_starts_once_and_jobs_lists_and_cleans_leftovers(lab: Cli) -> None:
    first, again, finished = on_node(
        lab,
        "node2",
        script.start("left-running", f"echo once >> ~/{MARKER}-once; sleep 60"),
        script.start("left-running", f"echo once >> ~/{MARKER}-once; sleep 60"),
        script.start("left-done", "echo done-out; echo done-err >&2; exit 4"),
    )
    assert (first[0], again[0], finished[0]) == (0, script.ALREADY_STARTED, 0)
    try:
        wait_for(lambda: "left-done" in jobs_left(lab, "node2"), 10, "the jobs")
        time.sleep(0.5)
        listed = lab("jobs", "-i", "lab", "-H", "node[1-2]")
        assert listed.returncode == 0, listed.stderr
        lines = sorted(line.split("  ") for line in listed.stdout.splitlines())
        assert [(w[0], w[1], w[2], w[4]) for w in lines] == [
            ("node2", "left-done", "done rc=4", "echo done-out; echo done-err >&2; exit 4"),
            ("node2", "left-running", "running", f"echo once >> ~/{MARKER}-once; sleep 60"),
        ]
        assert "2 hosts in" in listed.stderr
        # Output never shown is not removed unseen.
        kept = lab("jobs", "-i", "lab", "-H", "node2", "--clean")
        assert kept.stdout == (
            "node2  kept  left-done  (never shown: --show it, or --clean --unseen-too)\n"
        )
        assert sorted(jobs_left(lab, "node2")) == ["left-done", "left-running"]
        shown = lab("jobs", "-i", "lab", "-H", "node2", "--show", "left-done")
        assert shown.returncode == 1, shown.stderr  # the job's own status: it exited 4
        assert shown.stdout == "node2: done-out\n"
        assert "done-err" in shown.stderr and "exit status 4" in shown.stderr
        cleaned = lab("jobs", "-i", "lab", "-H", "node2", "--clean")
        assert cleaned.stdout == "node2  removed  left-done\n"
        assert jobs_left(lab, "node2") == ["left-running"]
        assert (node_root(lab, "node2") / f"{MARKER}-once").read_text() == "once\n"
    finally:
        on_node(lab, "node2", script.kill("left-running", 0), script.clean("left-running"))
        (node_root(lab, "node2") / f"{MARKER}-once").unlink(missing_ok=True)
    assert jobs_left(lab, "node2") == []


@pytest.mark.skipif(not is_root(), reason="per-node /root needs the root-mode lab")
def test_interrupting_a_durable_run_stops_and_removes_the_job(lab: Cli) -> None:
    marker = f"sleep 7{os.getpid() % 1000}.5"
    process = subprocess.Popen(
        [*BASTION, "run", "-i", "lab", "-H", "node3", "--durable", f"echo begun; {marker}"],
        env=lab.env,
        cwd=lab.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: bool(jobs_left(lab, "node3")), 60, "the job to start")
        time.sleep(1)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert stdout == "node3: begun\n"
    assert "interrupted; not finished: node3" in stderr
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    assert left.stdout == ""
    assert jobs_left(lab, "node3") == []


@pytest.mark.parametrize("how", [["--durable"], ["--transport", "mosh"], ["--transport", "auto"]])
def test_durable_refuses_standard_input_rather_than_dropping_it(lab: Cli, how: list[str]) -> None:
    done = lab("run", "-i", "lab", "-H", "node1", *how, "cat", input="payload\n")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("bastion: error: --durable: durable jobs")
    assert "Traceback" not in done.stderr
