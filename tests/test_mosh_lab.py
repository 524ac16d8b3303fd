"""The mosh and auto transports: a real mosh client and mosh-server against the real lab.

mosh carries the durable-job wrapper's pager: the output and the exit code are read off the
synchronised screen, page by page (`bastion.transport.mosh_screen`). These tests check that
with real programs: byte-exact output larger than many pages, the fall-backs to SSH, and
`--transport auto` moving a host whose SSH keeps being reset to mosh, after which port 22 is
blackholed for good and the run still completes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from bastion.durable import script
from bastion.durable.jobs import PAGER_WINDOW
from bastion.inventory import load_inventory
from bastion.lab import processes
from bastion.lab.faults import active_faults
from bastion.models import Host, Stream
from bastion.transport.mosh_screen import PageReader, page_geometry
from bastion.transport.mosh_transport import mosh_argv, run_mosh, ssh_option
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


BLOB_BYTES = 200 * 1024


@pytest.mark.skipif(not is_root(), reason="per-node /root needs the root-mode lab")
def test_output_of_many_pages_arrives_byte_exact_through_mosh(lab: Cli) -> None:
    made = lab(
        "run", "-i", "lab", "-H", "node1",
        f"head -c {BLOB_BYTES} /dev/urandom > ~/blob; "
        "printf '\\377\\303(\\0\\033[2J\\342\\200\\250' >> ~/blob",  # U+2028 last
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    blob = (node_root(lab, "node1") / "blob").read_bytes()
    assert len(blob) == BLOB_BYTES + 11
    # The bytes, as the pages bring them (the CLI decodes UTF-8 for display).
    host = load_inventory(Path(lab.env["BASTION_LAB_DIR"]) / "inventory.yaml").hosts["node1"]
    offsets: dict[Stream, int] = {"stdout": 0, "stderr": 0}
    received = {"stdout": bytearray(), "stderr": bytearray()}

    def deliver(stream: Stream, data: bytes) -> None:
        offsets[stream] += len(data)
        received[stream] += data

    reader = PageReader(PAGER_WINDOW, offsets, deliver)
    remote = script.serve(
        f"blob-{os.getpid()}", "cat ~/blob; head -c 3000 ~/blob >&2; exit 3", None, (0, 0),
        page_geometry(PAGER_WINDOW),
    )  # fmt: skip
    outcome = asyncio.run(run_mosh(host, remote, timeout=120, window=PAGER_WINDOW, driver=reader))
    assert outcome.ok, outcome.tail
    assert reader.error is None and reader.end is not None
    assert reader.end.rc == 3
    assert reader.pages > 20
    assert hashlib.sha256(received["stdout"]).hexdigest() == hashlib.sha256(blob).hexdigest()
    assert bytes(received["stderr"]) == blob[:3000]
    assert jobs_left(lab, "node1") == []
    # The same through the CLI: the text is the bytes decoded, once, in order.
    done = lab("run", "-i", "lab", "-H", "node1", "--transport", "mosh", "-o", "json", "cat ~/blob")
    assert done.returncode == 0, done.stderr
    # One record: json.loads, not splitlines (which also splits at U+2028 and U+0085).
    assert json.loads(done.stdout)["stdout"] == blob.decode(errors="replace")
    assert "(ran over mosh)" in done.stderr
    assert jobs_left(lab, "node1") == []


AUTO_LINES = 25
"""Long enough for two resets, the move to mosh, then a blackhole while it runs, when loaded."""


def mosh_clients(pid: int) -> list[int]:
    """The mosh-client processes a bastion run started."""
    table = processes.process_table()
    return [
        child
        for child in processes.descendants([pid], table)
        if any("mosh-client" in word for word in processes.command_line(child) or [])
    ]


def lines_so_far(cli: Cli, node: str) -> int:
    """Lines the node's durable job has written to its stdout spool so far."""
    spools = list(node_root(cli, node).glob(".bastion/jobs/*/out"))
    return len(spools[0].read_bytes().splitlines()) if spools else 0


@pytest.mark.timeout(300)  # 30-second commands on a loaded machine
@needs_faults
def test_auto_moves_a_resetting_host_to_mosh_and_completes_with_ssh_blackholed(
    lab: Cli,
) -> None:
    (node_root(lab, "node3") / "auto-starts").unlink(missing_ok=True)
    run = subprocess.Popen(
        [*BASTION, "run", "-i", "lab", "-H", "node3", "--transport", "auto", "-o", "json",
         slow_command("auto-starts", AUTO_LINES)],
        env=lab.env, cwd=lab.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    mosh_up = threading.Event()

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
    lab_dir = Path(lab.env["BASTION_LAB_DIR"])
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
        # Now mosh lives on UDP: TCP port 22 goes dark for good, while the job still runs.
        assert lab("lab", "fault", "node3", "--blackhole", "--port", "22").returncode == 0
        lines_at_blackhole = lines_so_far(lab, "node3")
        stdout, stderr = run.communicate(timeout=150)
        # The run is over and port 22 is still dark: everything came through mosh.
        still_dark = active_faults(lab_dir, "node3")
    finally:
        mosh_up.set()
        if run.poll() is None:
            run.kill()
            run.wait()
        clear_fault(lab, "node3")
    assert lines_at_blackhole < AUTO_LINES, "the job ended before SSH was blackholed"
    assert any("DROP" in rule for rule in still_dark), still_dark
    assert run.returncode == 1, stderr
    record = json.loads(stdout)
    assert record["exit_status"] == EXIT, stderr
    assert record["stdout"] == "".join(f"line {i}\n" for i in range(1, AUTO_LINES + 1)), stderr
    assert record["stderr"] == "".join(f"err {i}\n" for i in range(1, AUTO_LINES + 1)), stderr
    assert starts(lab, "node3", "auto-starts") == 1
    assert "switched to mosh after" in stderr
    # The pager removed the job directory itself, SSH being dark.
    assert jobs_left(lab, "node3") == []
    print(f"lines at blackhole: {lines_at_blackhole}; {stderr.strip().splitlines()[-1]}")


def mosh_servers_of(job: str) -> list[int]:
    """mosh-servers on the nodes (one process table in the lab) running this job's pager."""
    found = []
    for pid in processes.process_table():
        words = processes.command_line(pid) or []
        if words and words[0].endswith("mosh-server") and {"serve", job} <= set(words):
            found.append(pid)
    return found


@pytest.mark.timeout(200)
@pytest.mark.skipif(not is_root(), reason="per-node /root needs the root-mode lab")
def test_a_killed_mosh_session_is_replaced_and_goes_on_from_its_offsets(lab: Cli) -> None:
    (node_root(lab, "node2") / "again-starts").unlink(missing_ok=True)
    lines = 12
    run = subprocess.Popen(
        [*BASTION, "run", "-i", "lab", "-H", "node2", "--transport", "mosh", "-o", "json",
         slow_command("again-starts", lines)],
        env=lab.env, cwd=lab.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: lines_so_far(lab, "node2") >= 3 and bool(mosh_clients(run.pid)), 60, "")
        job = jobs_left(lab, "node2")[0]
        first = mosh_clients(run.pid)
        for pid in first:
            os.kill(pid, 9)  # the client dies; its mosh-server and pager stay on the node
        wait_for(lambda: bool(set(mosh_clients(run.pid)) - set(first)), 60, "a second session")
        assert len(mosh_servers_of(job)) == 2
        stdout, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    record = json.loads(stdout)
    assert record["stdout"] == "".join(f"line {i}\n" for i in range(1, lines + 1)), stderr
    assert record["stderr"] == "".join(f"err {i}\n" for i in range(1, lines + 1)), stderr
    assert record["exit_status"] == EXIT
    assert starts(lab, "node2", "again-starts") == 1
    assert "(ran over mosh, mosh started on try 2)" in stderr
    assert jobs_left(lab, "node2") == []
    # The orphaned pager sees its job collected and leaves, and its mosh-server with it.
    wait_for(lambda: not mosh_servers_of(job), 30, "the orphaned session to end")
