"""The asyncssh transport and the executor against in-process SSH servers with injected faults.

Every server is a real asyncssh server on loopback that runs commands with a real ``/bin/sh``
(see `sshserver`), so these tests see exactly what a user of ``bastion run`` would see.
"""

from __future__ import annotations

import os
import shlex
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from bastion.executor import RunOptions, Task, run
from bastion.hostkeys import HostKeyPolicy
from bastion.models import Event, Host, HostFinished, HostResult, Reason, Status
from bastion.transport.base import ConnectOptions
from bastion.transport.remote_shell import PID_PREAMBLE
from tests.sshserver import SSHServerHarness, SSHTestServer, write_known_hosts

USER = "test"


@pytest.fixture
def ssh(tmp_path: Path) -> Iterator[SSHServerHarness]:
    """A harness for in-process SSH servers, closed (with all it started) after the test."""
    with SSHServerHarness(tmp_path / "client") as harness:
        yield harness


@dataclass
class EventLog:
    """An emit callback that keeps every event with the time it arrived."""

    events: list[tuple[float, Event]] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.events.append((time.monotonic(), event))

    def finish_times(self) -> dict[str, float]:
        """When each host's `HostFinished` arrived."""
        return {e.result.host: t for t, e in self.events if isinstance(e, HostFinished)}

    def finish_order(self) -> list[str]:
        return [e.result.host for _, e in self.events if isinstance(e, HostFinished)]


def host_on(
    ssh: SSHServerHarness,
    server: SSHTestServer,
    known_hosts: Path,
    name: str = "node1",
    **extra: Any,
) -> Host:
    """An inventory host that reaches ``server`` with the harness's client key."""
    return Host(
        name=name,
        address=server.address,
        port=server.port,
        user=USER,
        identity_file=str(ssh.identity_file),
        known_hosts=str(known_hosts),
        **extra,
    )


def run_tasks(
    tasks: list[Task], options: RunOptions | None = None, emit: EventLog | None = None
) -> list[HostResult]:
    """Run tasks through the real executor, as ``bastion run`` does; results in task order."""
    return run(tasks, options or RunOptions(), emit or EventLog())


def run_command(
    hosts: list[Host], command: str, options: RunOptions | None = None
) -> list[HostResult]:
    """Run one command on every host; results in host order."""
    return run_tasks([Task(host, command) for host in hosts], options)


def connect_options(**overrides: object) -> RunOptions:
    """Run options whose connect options are overridden."""
    return RunOptions(connect=ConnectOptions(**overrides))  # type: ignore[arg-type]


def process_is_running(pid: int) -> bool:
    """Whether ``pid`` is alive; a zombie waiting for init to reap it counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def wait_until_gone(pids: list[int], within_s: float) -> list[int]:
    """Poll until none of ``pids`` runs; returns those still running after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        running = [pid for pid in pids if process_is_running(pid)]
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.05)


# --- A healthy server -----------------------------------------------------------------------


def test_output_is_relayed_exactly_with_streams_apart(
    ssh: SSHServerHarness, tmp_path: Path
) -> None:
    """stdout and stderr arrive separately and exactly; the pid preamble never shows."""
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])

    [result] = run_command(
        [host_on(ssh, server, known_hosts)], "echo out; echo err >&2; printf 'no newline'"
    )

    assert result == HostResult(
        host="node1",
        address="127.0.0.1",
        status=Status.OK,
        exit_status=0,
        stdout="out\nno newline",
        stderr="err\n",
        error=None,
        duration_s=result.duration_s,
    )
    assert server.commands == [PID_PREAMBLE + "echo out; echo err >&2; printf 'no newline'"]


def test_nonzero_exit_is_failed_with_its_status(ssh: SSHServerHarness, tmp_path: Path) -> None:
    """A command that exits non-zero is FAILED with its status and its output kept."""
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])

    [result] = run_command([host_on(ssh, server, known_hosts)], "echo before; exit 3")

    assert result.status is Status.FAILED
    assert result.exit_status == 3
    assert result.stdout == "before\n"
    assert result.error == "exit status 3"


def test_stdin_bytes_are_delivered(ssh: SSHServerHarness, tmp_path: Path) -> None:
    """Stdin reaches the command intact, over many packets, and is followed by EOF."""
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    data = "".join(f"líne {n}\n" for n in range(30_000)).encode()

    [result] = run_command(
        [host_on(ssh, server, known_hosts)],
        "cat",
        RunOptions(stdin=data, keep_output_chars=len(data)),  # all of it, to compare
    )

    assert result.status is Status.OK
    assert result.stdout == data.decode()


# --- Authentication and host keys ------------------------------------------------------------


def test_auth_failure_is_unreachable_and_not_retried(ssh: SSHServerHarness, tmp_path: Path) -> None:
    """A refused key is final: one connection, however many retries are allowed."""
    server = ssh.start_server(reject_auth=True)
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])

    [result] = run_command([host_on(ssh, server, known_hosts)], "true", connect_options(retries=2))

    assert result.status is Status.UNREACHABLE
    assert result.exit_status is None
    assert result.error == (
        f"authentication failed for {USER}: Permission denied for user {USER} on host 127.0.0.1"
    )
    assert server.connections == 1


@pytest.mark.parametrize("accept_new", [False, True])
def test_changed_host_key_is_refused_and_never_recorded(
    ssh: SSHServerHarness, tmp_path: Path, accept_new: bool
) -> None:
    """A key other than the pinned one is refused loudly, even with --accept-new."""
    server = ssh.start_server(wrong_host_key=True)
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    before = known_hosts.read_bytes()

    [result] = run_command(
        [host_on(ssh, server, known_hosts)],
        "true",
        connect_options(host_keys=HostKeyPolicy(accept_new=accept_new)),
    )

    assert result.status is Status.UNREACHABLE
    assert result.error is not None
    assert result.error.startswith("HOST KEY CHANGED: the server presented SHA256:")
    assert server.presented_key.get_fingerprint() in result.error
    assert known_hosts.read_bytes() == before
    assert server.connections == 1


def test_unknown_host_key_is_refused_when_strict(ssh: SSHServerHarness, tmp_path: Path) -> None:
    """A host missing from known_hosts is refused, and the error points at --accept-new."""
    server, other = ssh.start_server(), ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [other])
    before = known_hosts.read_bytes()

    [result] = run_command([host_on(ssh, server, known_hosts)], "true")

    assert result.status is Status.UNREACHABLE
    assert result.error is not None
    assert server.host_key.get_fingerprint() in result.error
    assert "--accept-new" in result.error
    assert known_hosts.read_bytes() == before
    assert server.connections == 1


def test_accept_new_records_the_key_once(ssh: SSHServerHarness, tmp_path: Path) -> None:
    """Trust on first use appends one line; the next run trusts it and adds nothing."""
    server, other = ssh.start_server(), ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [other])
    known_hosts.chmod(0o644)
    accept_new = connect_options(host_keys=HostKeyPolicy(accept_new=True))

    [first] = run_command([host_on(ssh, server, known_hosts)], "echo hi", accept_new)

    assert first.status is Status.OK
    assert first.stdout == "hi\n"
    assert known_hosts.read_text().splitlines() == [
        other.known_hosts_line,
        server.known_hosts_line,
    ]
    # An existing known_hosts keeps its mode, as OpenSSH's own appends do (a new one is 0600:
    # tests/test_hostkeys.py); the line is added by an atomic rewrite under a lock.
    assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o644
    after_first = known_hosts.read_bytes()

    [second] = run_command([host_on(ssh, server, known_hosts)], "echo hi", accept_new)

    assert second.status is Status.OK
    assert known_hosts.read_bytes() == after_first


def test_accept_new_with_concurrent_connections_to_one_server(
    ssh: SSHServerHarness, tmp_path: Path
) -> None:
    """Several hosts behind one address:port, all new: every one is accepted, one line added."""
    server = ssh.start_server()
    known_hosts = tmp_path / "known_hosts"
    hosts = [host_on(ssh, server, known_hosts, name=f"alias{i}") for i in range(4)]

    results = run_command(
        hosts, "echo hi", connect_options(host_keys=HostKeyPolicy(accept_new=True))
    )

    assert [(r.status, r.error) for r in results] == [(Status.OK, None)] * 4
    assert known_hosts.read_text().splitlines() == [server.known_hosts_line]


# --- Connections that break ------------------------------------------------------------------


def test_disconnect_mid_output_keeps_partial_output(ssh: SSHServerHarness, tmp_path: Path) -> None:
    """The dropped host is unreachable with what it sent so far; its neighbour is unaffected."""
    dropping = ssh.start_server(drop_after_stdout_bytes=4096)
    healthy = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [dropping, healthy])
    full_output = "".join(f"{n}\n" for n in range(1, 20001))

    dropped, fine = run_command(
        [
            host_on(ssh, dropping, known_hosts, "dropped"),
            host_on(ssh, healthy, known_hosts, "fine"),
        ],
        "seq 1 20000",
        RunOptions(keep_output_chars=len(full_output)),  # all of it, to compare
    )

    assert dropped.status is Status.UNREACHABLE
    assert dropped.exit_status is None
    assert dropped.error is not None
    assert dropped.error.startswith("connection lost mid-command")
    # 4096 bytes were sent, the pid line (under 32 bytes) among them: all of them arrived.
    assert 4096 - 32 < len(dropped.stdout) < 4096
    assert full_output.startswith(dropped.stdout)
    assert (fine.status, fine.exit_status, fine.error) == (Status.OK, 0, None)
    assert fine.stdout == full_output


def test_timeout_stops_the_remote_process_group(ssh: SSHServerHarness, tmp_path: Path) -> None:
    """A timed-out command and its background children are really gone afterwards."""
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    pid_file = tmp_path / "pids"
    command = (
        f"sleep 300 & echo $! > {shlex.quote(str(pid_file))}; "
        f"echo $$ >> {shlex.quote(str(pid_file))}; echo started; wait"
    )

    [result] = run_command([host_on(ssh, server, known_hosts)], command, RunOptions(timeout=1))

    assert result.status is Status.TIMEOUT
    assert result.stdout == "started\n"
    assert result.exit_status is None
    assert result.error == "timed out after 1s; remote process group stopped"
    pids = [int(line) for line in pid_file.read_text().split()]
    assert len(pids) == 2  # the background sleep and the shell itself
    assert wait_until_gone(pids, within_s=3.0) == []


def test_connection_refused_is_not_retried(ssh: SSHServerHarness, tmp_path: Path) -> None:
    """Nothing listens there now: unreachable at once, as ssh and pdsh say (no retries)."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = unused.getsockname()[1]
        host = Host(
            name="nobody",
            address="127.0.0.1",
            port=port,
            user=USER,
            identity_file=str(ssh.identity_file),
            known_hosts=str(tmp_path / "known_hosts"),
        )

        [result] = run_command([host], "true", connect_options(retries=1))

    assert (result.status, result.reason) == (Status.UNREACHABLE, Reason.REFUSED)
    assert result.error == f"connection refused by 127.0.0.1:{port}"


# --- Concurrency -----------------------------------------------------------------------------


@pytest.mark.parametrize("slowness", ["slow handshake", "slow command"])
def test_a_slow_host_does_not_hold_back_fast_ones(
    ssh: SSHServerHarness, tmp_path: Path, slowness: str
) -> None:
    """Six hosts on six addresses, six forks: five answer at once, one takes 4 s."""
    slow_handshake = slowness == "slow handshake"
    slow = ssh.start_server("127.0.0.2", handshake_delay_s=4.0 if slow_handshake else 0.0)
    fast = [ssh.start_server(f"127.0.0.{n}") for n in range(3, 8)]
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [slow, *fast])
    slow_command = "echo done" if slow_handshake else "sleep 4; echo done"
    tasks = [Task(host_on(ssh, slow, known_hosts, "slow"), slow_command)]
    tasks += [
        Task(host_on(ssh, server, known_hosts, f"fast{i}"), "echo done")
        for i, server in enumerate(fast, 1)
    ]
    log = EventLog()

    started = time.monotonic()
    results = run_tasks(tasks, RunOptions(forks=6), log)

    assert [(r.host, r.status, r.stdout) for r in results] == [
        (t.host.name, Status.OK, "done\n") for t in tasks
    ]
    finished = log.finish_times()
    last_fast = max(finished[f"fast{i}"] for i in range(1, 6))
    assert log.finish_order()[-1] == "slow"
    assert finished["slow"] - started >= 4.0
    # Had the fast hosts waited on the slow one they would finish after it; a margin of a
    # second keeps the check meaningful on a loaded machine without timing it to the tenth.
    assert finished["slow"] - last_fast > 1.0


def test_more_than_ten_sessions_run_at_once(ssh: SSHServerHarness, tmp_path: Path) -> None:
    """20 hosts of `sleep 1` on one server overlap, despite 8 handshakes at a time."""
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    hosts = [host_on(ssh, server, known_hosts, f"node{i}") for i in range(1, 21)]

    started = time.monotonic()
    results = run_command(hosts, "sleep 1", RunOptions(forks=64))
    elapsed = time.monotonic() - started

    assert [r.status for r in results] == [Status.OK] * 20
    assert server.connections == 20
    assert server.max_sessions_in_flight > 10
    assert elapsed < 10.0


@pytest.mark.parametrize("per_server", [2, 8])
def test_handshakes_are_paced_per_server(
    ssh: SSHServerHarness, tmp_path: Path, per_server: int
) -> None:
    """At most ``max_handshakes_per_server`` connections are unauthenticated at the server."""
    server = ssh.start_server(handshake_delay_s=0.4)
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    hosts = [host_on(ssh, server, known_hosts, f"node{i}") for i in range(1, 7)]

    results = run_command(hosts, "true", connect_options(max_handshakes_per_server=per_server))

    assert [r.status for r in results] == [Status.OK] * 6
    # With the limit above the number of hosts, all six are seen in flight: the probe works.
    assert server.max_handshakes_in_flight == min(per_server, 6)


# --- Jump hosts ------------------------------------------------------------------------------


def test_targets_behind_one_jump_host_share_its_connection(
    ssh: SSHServerHarness, tmp_path: Path
) -> None:
    """Three targets reached through one jump host: one connection to it, three tunnels."""
    jump = ssh.start_server(allow_forwarding=True)
    targets = [ssh.start_server() for _ in range(3)]
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [jump, *targets])
    jump_host = host_on(ssh, jump, known_hosts, "jumpbox")
    hosts = [
        host_on(ssh, server, known_hosts, f"inner{i}", jump="jumpbox")
        for i, server in enumerate(targets, 1)
    ]

    results = run_command(hosts, "echo inside", connect_options(jump_hosts={"jumpbox": jump_host}))

    assert [(r.status, r.stdout) for r in results] == [(Status.OK, "inside\n")] * 3
    assert jump.connections == 1
    assert jump.forwards == 3
    assert jump.commands == []
    assert [server.connections for server in targets] == [1, 1, 1]


@pytest.mark.parametrize("fault", ["forwarding disabled", "target down"])
def test_a_tunnel_that_cannot_open_leaves_the_target_unreachable(
    ssh: SSHServerHarness, tmp_path: Path, fault: str
) -> None:
    """A refused direct-tcpip channel is a per-host failure naming the jump host, not a bug."""
    jump = ssh.start_server(allow_forwarding=fault == "target down")
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [jump])
    jump_host = host_on(ssh, jump, known_hosts, "jumpbox")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        inner = replace(jump_host, name="inner", port=unused.getsockname()[1], jump="jumpbox")

        [result] = run_command(
            [inner], "true", connect_options(retries=1, jump_hosts={"jumpbox": jump_host})
        )

    assert result.status is Status.UNREACHABLE
    assert result.error is not None
    assert result.error.startswith(
        f"jump host jumpbox cannot open a tunnel to 127.0.0.1:{inner.port}: "
    )
    assert result.reason is Reason.REFUSED
    if fault == "target down":
        assert result.error.endswith(f"Connect call failed ('127.0.0.1', {inner.port})")
        assert jump.forwards == 1  # refused through the tunnel: not retried either
    else:
        assert result.error.endswith("TCP forwarding disabled")
        assert jump.forwards == 0
    assert jump.connections == 1
