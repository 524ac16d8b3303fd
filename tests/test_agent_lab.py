"""The warm connection agent against the real-sshd lab: reuse, failover, privacy, host keys.

Every test has its own XDG_RUNTIME_DIR, hence its own agent, stopped (or killed) at the end.
That a warm run opens no new SSH connection is proven from outside the agent: the client ends
of established TCP connections to the lab's port 22, as `ss` lists them, are the same ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import (
    BASTION,
    Cli,
    is_root,
    known_hosts_name,
    lab_hostname,
    lab_login,
    lab_nodes,
)

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@pytest.fixture
def agent(lab: Cli, tmp_path: Path) -> Iterator[Cli]:
    """The lab's CLI with a private runtime dir; its agent is gone after the test."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    cli = replace(lab, env={**lab.env, "XDG_RUNTIME_DIR": str(runtime)})
    yield cli
    status = _status(cli)
    if status["running"]:
        cli("agent", "stop")
        if _alive(int(str(status["pid"]))):
            os.kill(int(str(status["pid"])), signal.SIGKILL)


def _status(cli: Cli) -> dict[str, object]:
    proc = cli("agent", "status", "-o", "json")
    assert proc.returncode in (0, 1), proc.stderr
    status: dict[str, object] = json.loads(proc.stdout)
    return status


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody has reaped yet does not)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] != "Z"


def _runtime(cli: Cli) -> Path:
    return Path(cli.env["XDG_RUNTIME_DIR"]) / "bastion"


def _json_results(stdout: str) -> dict[str, dict[str, object]]:
    records = [json.loads(line) for line in stdout.splitlines()]
    return {str(record["host"]): record for record in records}


def _lab_connections(cli: Cli) -> set[str]:
    """Client ends (address:port) of established TCP connections to the lab's sshd."""
    servers = {f"{address}:{port}" for address, port in lab_nodes(cli).values()}
    proc = subprocess.run(
        ["ss", "-Htn", "state", "established"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = set()
    for line in proc.stdout.splitlines():
        fields = line.split()
        local, peer = fields[-2], fields[-1]
        if peer in servers:
            found.add(local)
    return found


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _lab_inventory_with(cli: Cli, tmp_path: Path, known: Path) -> Path:
    """The lab's inventory, its key by absolute path and its known_hosts file ``known``."""
    lab_dir = Path(cli.env["BASTION_LAB_DIR"])
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        (lab_dir / "inventory.yaml")
        .read_text()
        .replace("identity_file: id_ed25519", f"identity_file: {lab_dir / 'id_ed25519'}")
        .replace("known_hosts: known_hosts", f"known_hosts: {known}")
    )
    return inventory


def test_start_status_stop_and_private_modes(agent: Cli) -> None:
    started = agent("agent", "start", "--persist", "5m")
    assert started.returncode == 0, started.stderr
    assert "started: pid" in started.stdout
    again = agent("agent", "start")
    assert "already running" in again.stdout
    status = _status(agent)
    assert status["running"] is True
    assert status["persist_s"] == 300.0
    directory = _runtime(agent)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    sock = directory / "agent.sock"
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / "agent.log").stat().st_mode) == 0o600
    text = agent("agent", "status")
    assert text.returncode == 0
    assert f"pid {status['pid']}" in text.stdout
    stopped = agent("agent", "stop")
    assert stopped.returncode == 0
    assert f"stopped (pid {status['pid']})" in stopped.stdout
    assert not _alive(int(str(status["pid"])))
    assert not sock.exists()
    after = agent("agent", "status")
    assert after.returncode == 1
    assert "no bastion agent running" in after.stdout


def _soft_open_files_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError(f"no open-files limit for pid {pid}")


def test_agent_raises_its_open_files_limit_for_many_hosts(agent: Cli) -> None:
    # It holds a connection per host across runs: a soft limit of 1024 would cap it at
    # about a thousand hosts whatever the run asked for.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip("the hard open-files limit leaves nothing to raise")
    started = subprocess.run(
        ["/bin/sh", "-c", 'ulimit -Sn 256 && exec "$@"', "sh", *BASTION, "agent", "start"],
        env=agent.env,
        cwd=agent.cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    pid = int(str(_status(agent)["pid"]))
    assert _soft_open_files_limit(pid) > 256
    assert "open-files limit raised from 256" in (_runtime(agent) / "agent.log").read_text()


def test_warm_run_reuses_connections_and_matches_direct_results(agent: Cli) -> None:
    if not is_root():
        pytest.skip("tells nodes apart by hostname: the root-mode lab's (user mode shares one)")
    command = "echo out-$(hostname); echo err >&2; [ $(hostname) = node2 ] && exit 7; true"
    direct = agent("run", "-i", "lab", "--all", "-o", "json", "--no-agent", "--", command)
    assert agent("agent", "start").returncode == 0
    before = _lab_connections(agent)
    first = agent("run", "-i", "lab", "--all", "-o", "json", "--", command)
    opened = _lab_connections(agent) - before
    assert len(opened) == 3, (opened, first.stderr, _status(agent))
    second = agent("run", "-i", "lab", "--all", "-o", "json", "--", command)
    assert _lab_connections(agent) - before == opened  # the same three connections, no new one
    for proc in (direct, first, second):
        assert proc.returncode == 1, proc.stderr
    keys = ("status", "exit_status", "stdout", "stderr", "error", "address")
    want = {h: {k: r[k] for k in keys} for h, r in _json_results(direct.stdout).items()}
    for proc in (first, second):
        got = {h: {k: r[k] for k in keys} for h, r in _json_results(proc.stdout).items()}
        assert got == want
    assert want["node2"]["exit_status"] == 7
    assert want["node1"]["stdout"] == "out-node1\n"
    assert want["node1"]["stderr"] == "err\n"
    connections = _status(agent)["connections"]
    assert isinstance(connections, list)
    assert sorted((c["host"], c["uses"]) for c in connections) == [
        ("node1", 2),
        ("node2", 2),
        ("node3", 2),
    ]
    # The inline output is the same as a direct run's too, and stdin reaches every host.
    inline = agent("run", "-i", "lab", "-H", "node1", "cat", input="from stdin\n")
    assert inline.stdout.startswith("node1: from stdin\n"), inline.stdout
    assert inline.stderr.count("notice") == 0


def test_timeout_through_agent_stops_the_remote_process_group(agent: Cli) -> None:
    assert agent("agent", "start").returncode == 0
    proc = agent(
        "run", "-i", "lab", "-H", "node1", "-o", "json", "-t", "1", "--", "sleep 123.25 & wait"
    )
    assert proc.returncode == 1, proc.stderr
    record = _json_results(proc.stdout)["node1"]
    assert record["status"] == "timeout"
    assert record["error"] == "timed out after 1s; remote process group stopped"
    left = agent(
        "run",
        "-i",
        "lab",
        "-H",
        "node1",
        "--no-agent",
        "--",
        "ps -eo args | grep -c '[s]leep 123.25'",
    )
    assert left.stdout.strip() == "node1: 0", left.stdout


def test_other_users_are_refused(lab: Cli) -> None:
    if not is_root():
        pytest.skip("needs root to act as another user")
    # pytest's own tmp dirs are 0700: this test needs a path another user can walk.
    runtime = Path(tempfile.mkdtemp(prefix="bastion-agent-test-", dir="/tmp"))
    runtime.chmod(0o711)
    cli = replace(lab, env={**lab.env, "XDG_RUNTIME_DIR": str(runtime)})
    try:
        _refuse_other_users(cli, runtime)
    finally:
        cli("agent", "stop")
        shutil.rmtree(runtime, ignore_errors=True)


def _refuse_other_users(cli: Cli, runtime: Path) -> None:
    assert cli("agent", "start").returncode == 0
    directory = _runtime(cli)
    sock = directory / "agent.sock"
    client = runtime / "client.py"
    client.write_text(
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        "    s.connect(sys.argv[1])\n"
        "except OSError as exc:\n"
        "    print('connect:', exc.strerror); sys.exit(0)\n"
        "print('answer:', s.makefile().readline().strip())\n"
    )
    client.chmod(0o644)
    argv = [*AS_NOBODY, "/usr/bin/python3", str(client), str(sock)]

    # The directory (0700) and the socket (0600) keep other users out...
    blocked = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert blocked.stdout.strip() == "connect: Permission denied"
    # ...and with both opened up, the agent itself refuses a peer of another uid.
    directory.chmod(0o711)
    sock.chmod(0o666)
    refused = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert refused.stdout.strip() == 'answer: {"error":"refused: this agent serves another user"}'
    log = (directory / "agent.log").read_text()
    assert f"refused a client of uid {NOBODY}" in log
    # A run does not use a socket in a directory that others can write to.
    directory.chmod(0o777)
    ignored = cli("run", "-i", "lab", "-H", "node1", "true")
    assert ignored.returncode == 0
    assert "ignoring the bastion agent's socket" in ignored.stderr
    assert "writable by others (mode 0777)" in ignored.stderr
    directory.chmod(0o700)


def test_status_does_not_trust_a_socket_served_by_another_user(lab: Cli) -> None:
    # A socket file that passes the owner checks (chowned to us) but is served by another
    # uid: `agent status`, like a run, checks the server's SO_PEERCRED and ignores it.
    if not is_root():
        pytest.skip("needs root to act as another user")
    runtime = Path(tempfile.mkdtemp(prefix="bastion-agent-test-", dir="/tmp"))
    runtime.chmod(0o711)
    agent = replace(lab, env={**lab.env, "XDG_RUNTIME_DIR": str(runtime)})
    directory = runtime / "bastion"
    directory.mkdir()
    directory.chmod(0o777)
    sock = directory / "agent.sock"
    impostor = subprocess.Popen(
        [*AS_NOBODY, "/usr/bin/python3", "-c", _IMPOSTOR, str(sock)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        assert impostor.stdout is not None and impostor.stderr is not None
        assert impostor.stdout.readline().strip() == "listening", impostor.stderr.read()
        os.chown(sock, os.getuid(), os.getgid())
        directory.chmod(0o700)
        status = agent("agent", "status")
        assert status.returncode == 1, status.stdout
        assert "no bastion agent running" in status.stdout
    finally:
        impostor.kill()
        impostor.communicate()
        shutil.rmtree(runtime, ignore_errors=True)


_IMPOSTOR = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(4)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b'{"hello": 1, "pid": 1}\n')
    c.recv(4096)
    c.sendall(json.dumps({"id": 1, "status": {"pid": 1, "impostor": True}}).encode() + b"\n")
    c.close()
"""


def test_unsafe_runtime_dir_is_refused(agent: Cli) -> None:
    if not is_root():
        pytest.skip("needs root to make a directory owned by another user")
    directory = _runtime(agent)
    directory.mkdir(mode=0o700)
    os.chown(directory, NOBODY, NOBODY)
    owned = agent("agent", "start")
    assert owned.returncode == 1
    assert owned.stderr.strip() == (
        f"bastion: error: refusing the agent directory: {directory} is owned by uid {NOBODY}, "
        f"not by you (uid 0); remove it, or set XDG_RUNTIME_DIR to a private directory"
    )
    os.chown(directory, 0, 0)
    directory.chmod(0o770)
    writable = agent("agent", "start")
    assert writable.returncode == 1
    assert "is writable by others (mode 0770)" in writable.stderr


def test_an_uncreatable_runtime_dir_is_one_line_not_a_traceback(agent: Cli) -> None:
    # $XDG_RUNTIME_DIR is missing and cannot be made (nothing can be created under /proc).
    missing = "/proc/bastion-test-no-such-dir/run"
    cli = replace(agent, env={**agent.env, "XDG_RUNTIME_DIR": missing})
    started = cli("agent", "start")
    assert started.returncode == 1
    assert started.stderr.startswith("bastion: error: cannot create ")
    assert "Traceback" not in started.stderr and len(started.stderr.splitlines()) == 1
    # A run that asked for the agent goes direct, with one notice.
    run = cli("run", "-i", "lab", "-H", "node1", "--persist", "1m", "true")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "connecting directly" in run.stderr


def test_killed_agent_fails_over_to_direct_with_one_notice(agent: Cli) -> None:
    assert agent("agent", "start").returncode == 0
    pid = int(str(_status(agent)["pid"]))
    assert agent("run", "-i", "lab", "--all", "true").returncode == 0
    os.kill(pid, signal.SIGKILL)
    assert _wait_for(lambda: not _alive(pid))
    proc = agent("run", "-i", "lab", "--all", "hostname")
    assert proc.returncode == 0, proc.stderr
    nodes = ("node1", "node2", "node3")
    assert sorted(proc.stdout.splitlines()) == [f"{n}: {lab_hostname(n)}" for n in nodes]
    notices = [line for line in proc.stderr.splitlines() if "notice" in line]
    assert notices == [
        "bastion: notice: the bastion agent is not answering (Connection refused); "
        "connecting directly"
    ]


def test_agent_killed_mid_command_reports_the_host_lost(agent: Cli) -> None:
    assert agent("agent", "start").returncode == 0
    pid = int(str(_status(agent)["pid"]))
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bastion",
            "run",
            "-i",
            "lab",
            "-H",
            "node1",
            "-o",
            "json",
            "--",
            "sleep 20",
        ],
        env=agent.env,
        cwd=agent.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def running() -> bool:
        connections = _status(agent)["connections"]
        return isinstance(connections, list) and any(c["active"] for c in connections)

    assert _wait_for(running)
    os.kill(pid, signal.SIGKILL)
    stdout, _ = run.communicate(timeout=30)
    assert run.returncode == 3
    record = _json_results(stdout)["node1"]
    assert record["status"] == "unreachable"
    assert str(record["error"]).startswith(
        "connection lost mid-command: the bastion agent went away"
    )


def test_idle_connections_close_and_persist_expiry_exits(agent: Cli) -> None:
    assert agent("agent", "start", "--persist", "4s", "--idle", "1s").returncode == 0
    pid = int(str(_status(agent)["pid"]))
    before = _lab_connections(agent)
    assert agent("run", "-i", "lab", "--all", "true").returncode == 0
    assert _wait_for(lambda: not _status(agent)["connections"])
    assert _wait_for(lambda: not (_lab_connections(agent) - before))
    log = (_runtime(agent) / "agent.log").read_text()
    assert f"closed node1 ({lab_login()}@" in log
    assert "idle for" in log
    assert _wait_for(lambda: not _alive(pid))
    assert not (_runtime(agent) / "agent.sock").exists()
    assert "unused for 4s: exiting" in (_runtime(agent) / "agent.log").read_text()


def test_persist_starts_the_agent_on_demand(agent: Cli) -> None:
    first = agent("run", "-i", "lab", "--persist", "1m", "-H", "node1", "true")
    assert first.returncode == 0, first.stderr
    status = _status(agent)
    assert status["running"] is True
    assert status["persist_s"] == 60.0
    bypass = agent("run", "-i", "lab", "--persist", "1m", "--durable", "-H", "node1", "true")
    assert bypass.returncode == 2
    assert "--durable does not go through the agent" in bypass.stderr
    bad = agent("run", "-i", "lab", "--persist", "soon", "-H", "node1", "true")
    assert bad.returncode == 2
    assert "'soon' is not a duration" in bad.stderr


def test_changed_host_key_is_refused_through_the_agent_as_directly(
    agent: Cli, tmp_path: Path
) -> None:
    lab_dir = Path(agent.env["BASTION_LAB_DIR"])
    known = tmp_path / "known_hosts"
    known.write_text((lab_dir / "known_hosts").read_text())
    inventory = _lab_inventory_with(agent, tmp_path, known)
    assert agent("agent", "start").returncode == 0
    warm = agent("run", "-i", str(inventory), "-H", "node1", "true")
    assert warm.returncode == 0, warm.stderr
    # node1's pinned key is now another key: the live connection must not be trusted.
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    other_key = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    node1 = known_hosts_name(*lab_nodes(agent)["node1"])
    lines = [
        f"{node1} {other_key}" if line.split()[0] == node1 else line
        for line in known.read_text().splitlines()
    ]
    known.write_text("\n".join(lines) + "\n")
    through = agent("run", "-i", str(inventory), "-H", "node1", "-o", "json", "true")
    direct = agent("run", "-i", str(inventory), "-H", "node1", "-o", "json", "--no-agent", "true")
    assert through.returncode == direct.returncode == 3
    got, want = _json_results(through.stdout)["node1"], _json_results(direct.stdout)["node1"]
    assert str(want["error"]).startswith("HOST KEY CHANGED")
    assert got["error"] == want["error"]
    assert got["status"] == want["status"] == "unreachable"
    assert "host key no longer trusted" in (_runtime(agent) / "agent.log").read_text()
    assert _status(agent)["connections"] == []


def test_agent_log_holds_no_output_or_stdin(agent: Cli) -> None:
    assert agent("agent", "start").returncode == 0
    proc = agent(
        "run",
        "-i",
        "lab",
        "--all",
        "--",
        "cat; echo OUTPUT-MARKER-4711; echo ERR-MARKER >&2",
        input="STDIN-4711",
    )
    assert "OUTPUT-MARKER-4711" in proc.stdout
    log = (_runtime(agent) / "agent.log").read_text()
    assert "opened node1" in log
    for secret in ("OUTPUT-MARKER", "ERR-MARKER", "STDIN-4711", "cat;"):
        assert secret not in log


def test_unknown_keys_and_accept_new_through_the_agent(agent: Cli, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    inventory = _lab_inventory_with(agent, tmp_path, known)
    assert agent("agent", "start").returncode == 0
    run = ("run", "-i", str(inventory), "-H", "node1", "-o", "json")
    through = agent(*run, "true")
    direct = agent(*run, "--no-agent", "true")
    assert through.returncode == direct.returncode == 3
    got, want = _json_results(through.stdout)["node1"], _json_results(direct.stdout)["node1"]
    assert str(want["error"]).startswith("host key SHA256:")
    assert got["error"] == want["error"]
    accepted = agent(*run, "--accept-new", "true")
    assert accepted.returncode == 0, accepted.stdout
    assert known.read_text().startswith(f"{known_hosts_name(*lab_nodes(agent)['node1'])} ssh-")
    strict = agent(*run, "true")
    assert strict.returncode == 0, strict.stdout
    # The connection made under --accept-new does not serve the strict run: two connections.
    connections = _status(agent)["connections"]
    assert isinstance(connections, list)
    assert sorted(c["accept_new"] for c in connections) == [False, True]


def test_bad_requests_get_an_error_and_the_agent_keeps_serving(agent: Cli) -> None:
    assert agent("agent", "start").returncode == 0
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(_runtime(agent) / "agent.sock"))
        reader = sock.makefile("rb")
        assert json.loads(reader.readline())["hello"] == 1
        sock.sendall(b"not json\n")
        assert json.loads(reader.readline())["error"].startswith("bad request:")
        sock.sendall(b'{"op": "run", "id": 5, "host": {"name": "x"}}\n')
        answer = json.loads(reader.readline())
        assert answer["id"] == 5
        assert answer["error"] == "bad request: KeyError: 'options'"
        sock.sendall(b'{"op": "launch", "id": 6}\n')
        assert json.loads(reader.readline())["error"] == "bad request: unknown op 'launch'"
    assert agent("run", "-i", "lab", "-H", "node1", "true").returncode == 0
    assert _status(agent)["requests"] == 2


STREAM_LINE = b"x" * 63 + b"\n"
STREAM_LINES = 3_125_000  # 200 MB
RSS_BOUND_KB = 50 * 1024


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def _wire_host(cli: Cli, name: str) -> dict[str, object]:
    """A lab host as the agent's protocol sends it, its files by absolute path."""
    from bastion.agent.protocol import host_to_wire
    from bastion.inventory import load_inventory

    lab_dir = Path(cli.env["BASTION_LAB_DIR"])
    host = load_inventory(lab_dir / "inventory.yaml").hosts[name]
    wire = host_to_wire(host)
    for field_name in ("identity_file", "known_hosts"):
        if wire[field_name]:
            wire[field_name] = str(lab_dir / str(wire[field_name]))
    return wire


def test_a_client_that_stops_reading_does_not_make_the_agent_buffer(agent: Cli) -> None:
    """200 MB of output to a client that reads nothing for a while: the agent's memory stays
    bounded (its channels pause, the SSH window stops the command), then every byte arrives."""
    from bastion.agent.protocol import options_to_wire
    from bastion.transport.base import ConnectOptions

    assert agent("agent", "start").returncode == 0
    pid = int(str(_status(agent)["pid"]))
    request = {
        "op": "run",
        "id": 1,
        "host": _wire_host(agent, "node1"),
        "jumps": {},
        "options": options_to_wire(ConnectOptions()),
        "command": f"yes {STREAM_LINE[:-1].decode()} | head -n {STREAM_LINES}",
        "timeout": None,
        "stdin": None,
    }
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(120)
        sock.connect(str(_runtime(agent) / "agent.sock"))
        reader = sock.makefile("rb")
        assert json.loads(reader.readline())["hello"] == 1
        start_kb = _rss_kb(pid)
        sock.sendall(json.dumps(request).encode() + b"\n")
        # Read nothing for 8 s: unbounded, the agent would hold everything the host printed.
        peak_kb = start_kb
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and peak_kb - start_kb <= RSS_BOUND_KB:
            peak_kb = max(peak_kb, _rss_kb(pid))
            time.sleep(0.2)
        assert peak_kb - start_kb <= RSS_BOUND_KB, (start_kb, peak_kb)
        received = 0
        digest = hashlib.sha256()
        for line in reader:
            message = json.loads(line)
            assert message["id"] == 1, message
            if "result" in message:
                result = message["result"]
                break
            assert message["stream"] == "stdout", message
            data = message["data"].encode()
            received += len(data)
            digest.update(data)
        else:
            raise AssertionError("the agent closed the connection before the result")
    assert result["status"] == "ok", result
    assert received == len(STREAM_LINE) * STREAM_LINES
    want = hashlib.sha256()
    block = STREAM_LINE * 16384
    for _ in range(STREAM_LINES // 16384):
        want.update(block)
    want.update(STREAM_LINE * (STREAM_LINES % 16384))
    assert digest.hexdigest() == want.hexdigest()


def _serve_one_status(path: Path, status: object) -> threading.Thread:
    """A fake agent (fault injection, not bastion's): greets one client like the real one and
    answers its request with ``status``, then closes."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(1)

    def serve() -> None:
        with listener:
            listener.settimeout(30)
            peer, _ = listener.accept()
            with peer:
                peer.sendall(json.dumps({"hello": 1, "pid": os.getpid()}).encode() + b"\n")
                request = json.loads(peer.makefile("rb").readline())
                peer.sendall(json.dumps({"id": request["id"], "status": status}).encode() + b"\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        ({"pid": 1}, "no 'socket'"),
        ("ok", "expected an object, got str"),
    ],
)
def test_a_malformed_status_is_one_line_not_a_traceback(
    agent: Cli, status: object, problem: str
) -> None:
    server = _serve_one_status(_runtime(agent) / "agent.sock", status)
    proc = agent("agent", "status")
    server.join(30)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "sent a malformed status: " + problem in lines[0]
    (_runtime(agent) / "agent.sock").unlink()
