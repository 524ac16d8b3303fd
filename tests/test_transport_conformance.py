"""The transport contract, run against every way bastion runs a command on a host.

Same in-process servers as `test_transport_faults` (real asyncssh servers running real
``/bin/sh``); every test is parametrized by transport: asyncssh, paramiko, the agent (a real
``bastion agent`` process in a private directory) and durable jobs over each SSH transport.
A transport that strays from the contract (an error worded differently, a reason missing, a
host key accepted that should not be, a timeout that leaves the command running, output kept
past its limit) fails here. Where durable jobs differ by design (they resume after a drop;
they take no stdin) the test says so.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bastion.executor import RunOptions, Task, run
from bastion.hostkeys import HostKeyPolicy
from bastion.models import Event, Host, HostOutput, HostResult, Reason, Status
from bastion.transport.base import CommandSpec, ConnectOptions, LinkFailure
from bastion.transport.paramiko_transport import ParamikoTransport
from bastion.transport.session import DEFAULT_KEEP_CHARS
from tests.conftest import REPO, TEST_NET
from tests.sshserver import SSHServerHarness, SSHTestServer, write_known_hosts

USER = "test"
TRANSPORTS = ["asyncssh", "paramiko", "agent", "durable", "durable-paramiko"]
DIRECT = ["asyncssh", "paramiko", "agent"]
"""The transports that run a command in one SSH session (durable jobs keep it on the node)."""


class _PrivateHomes(SSHServerHarness):
    """Servers whose commands have a private ``$HOME``: durable jobs keep their files there,
    never in the tester's own home."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self._home = workdir / "home"
        self._home.mkdir(parents=True, exist_ok=True)

    def start_server(self, address: str = "127.0.0.1", **faults: Any) -> SSHTestServer:
        return super().start_server(address, home=str(self._home), **faults)


@pytest.fixture
def ssh(tmp_path: Path) -> Iterator[SSHServerHarness]:
    with _PrivateHomes(tmp_path / "client") as harness:
        yield harness


@pytest.fixture(scope="module")
def agent_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real agent (``python -m bastion.agent.server``) in a private runtime directory."""
    runtime = tmp_path_factory.mktemp("agent-run")
    runtime.chmod(0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(REPO)}
    agent = subprocess.Popen(
        [sys.executable, "-m", "bastion.agent.server", "--persist", "300", "--idle", "300"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    path = runtime / "bastion" / "agent.sock"
    try:
        deadline = time.monotonic() + 30
        while not path.exists():
            assert agent.poll() is None, "the agent exited at start"
            assert time.monotonic() < deadline, "the agent did not start"
            time.sleep(0.05)
        yield path
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def host_on(
    ssh: SSHServerHarness, server: SSHTestServer, known_hosts: Path, name: str = "node1"
) -> Host:
    return Host(
        name=name,
        address=server.address,
        port=server.port,
        user=USER,
        identity_file=str(ssh.identity_file),
        known_hosts=str(known_hosts),
    )


def run_options(transport: str, request: pytest.FixtureRequest, **options: object) -> RunOptions:
    """The `RunOptions` that make the executor use ``transport``."""
    if transport == "agent":
        options.setdefault("agent", request.getfixturevalue("agent_socket"))
        name = "asyncssh"
    elif transport.startswith("durable"):
        options.setdefault("durable", True)
        name = "paramiko" if transport == "durable-paramiko" else "asyncssh"
    else:
        name = transport
    return RunOptions(transport=name, **options)  # type: ignore[arg-type]


def run_on(
    transport: str,
    hosts: list[Host],
    command: str,
    request: pytest.FixtureRequest,
    events: list[Event] | None = None,
    **options: object,
) -> list[HostResult]:
    emit = events.append if events is not None else (lambda event: None)
    tasks = [Task(host, command) for host in hosts]
    return run(tasks, run_options(transport, request, **options), emit)


def durable(transport: str) -> bool:
    return transport.startswith("durable")


def test_output_exit_status_and_streams(
    ssh: SSHServerHarness, tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    [result] = run_on(
        transport,
        [host_on(ssh, server, known_hosts)],
        "echo out; echo err >&2; printf 'caf\\303\\251 no newline'; exit 3",
        request,
    )
    assert result == HostResult(
        host="node1",
        address="127.0.0.1",
        status=Status.FAILED,
        exit_status=3,
        stdout="out\ncafé no newline",
        stderr="err\n",
        error="exit status 3",
        duration_s=result.duration_s,
        notes=result.notes,
        reason=Reason.EXIT,
    )
    [ok] = run_on(transport, [host_on(ssh, server, known_hosts)], "true", request)
    assert (ok.status, ok.error, ok.reason) == (Status.OK, None, None)
    if transport == "agent":
        log = (request.getfixturevalue("agent_socket").parent / "agent.log").read_text()
        assert f" opened node1 (test@127.0.0.1:{server.port})" in log, "the run went direct"


def test_stdin_is_delivered(
    ssh: SSHServerHarness, tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    if durable(transport):
        pytest.skip("durable jobs run detached with stdin from /dev/null (the CLI refuses stdin)")
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    [result] = run_on(
        transport, [host_on(ssh, server, known_hosts)], "wc -c", request, stdin=b"12345"
    )
    assert (result.status, result.stdout.strip()) == (Status.OK, "5")


def test_unknown_host_key_is_refused(
    ssh: SSHServerHarness, tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    server, other = ssh.start_server(), ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [other])
    before = known_hosts.read_bytes()
    [result] = run_on(transport, [host_on(ssh, server, known_hosts)], "true", request)
    assert (result.status, result.reason) == (Status.UNREACHABLE, Reason.HOST_KEY)
    assert result.error == (
        f"host key {server.host_key.get_fingerprint()} is not in {known_hosts}; refusing "
        "(add it to known_hosts, or use --accept-new to trust it on first use)"
    )
    assert known_hosts.read_bytes() == before
    assert server.commands == []
    assert server.connections == 1, "a host-key refusal is never retried"


@pytest.mark.parametrize("accept_new", [False, True])
def test_a_changed_host_key_is_always_refused(
    ssh: SSHServerHarness,
    tmp_path: Path,
    transport: str,
    accept_new: bool,
    request: pytest.FixtureRequest,
) -> None:
    server = ssh.start_server(wrong_host_key=True)
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    before = known_hosts.read_bytes()
    [result] = run_on(
        transport,
        [host_on(ssh, server, known_hosts)],
        "true",
        request,
        connect=ConnectOptions(host_keys=HostKeyPolicy(accept_new=accept_new)),
    )
    assert (result.status, result.reason) == (Status.UNREACHABLE, Reason.HOST_KEY)
    assert result.error is not None
    assert result.error.startswith(
        f"HOST KEY CHANGED: the server presented {server.presented_key.get_fingerprint()}, "
    )
    assert known_hosts.read_bytes() == before
    assert server.commands == []
    assert server.connections == 1


@pytest.mark.parametrize("accept_new", [False, True])
def test_a_server_offering_only_another_key_type_is_a_changed_key(
    ssh: SSHServerHarness,
    tmp_path: Path,
    transport: str,
    accept_new: bool,
    request: pytest.FixtureRequest,
) -> None:
    """known_hosts pins an ed25519 key; the server shows only an ECDSA one (what a man in the
    middle without the real key would do). Not a key exchange failure, not a retry."""
    server = ssh.start_server(wrong_host_key=True, presented_key_type="ecdsa-sha2-nistp256")
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    [result] = run_on(
        transport,
        [host_on(ssh, server, known_hosts)],
        "true",
        request,
        connect=ConnectOptions(host_keys=HostKeyPolicy(accept_new=accept_new)),
    )
    assert (result.status, result.reason) == (Status.UNREACHABLE, Reason.HOST_KEY)
    fingerprint = server.presented_key.get_fingerprint()
    assert result.error == (
        f"HOST KEY CHANGED: the server presented {fingerprint}, a ecdsa-sha2-nistp256 key, "
        f"but {known_hosts} pins keys of other types only for it; refusing (possible "
        "man-in-the-middle; if the host was rebuilt, remove its old entry and connect again)"
    )
    assert server.commands == []
    assert server.connections == 1


def test_a_revoked_host_key_is_refused(
    ssh: SSHServerHarness, tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    with known_hosts.open("a") as lines:
        lines.write(f"@revoked {server.known_hosts_line}\n")
    [result] = run_on(transport, [host_on(ssh, server, known_hosts)], "true", request)
    assert (result.status, result.reason) == (Status.UNREACHABLE, Reason.HOST_KEY)
    assert result.error == (
        f"HOST KEY REVOKED: the server presented {server.host_key.get_fingerprint()}, which "
        f"{known_hosts} marks @revoked; refusing"
    )
    assert server.commands == []


def test_accept_new_records_the_key_once(
    ssh: SSHServerHarness, tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    server, other = ssh.start_server(), ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [other])
    accept = ConnectOptions(host_keys=HostKeyPolicy(accept_new=True))
    for _ in range(2):
        [result] = run_on(
            transport, [host_on(ssh, server, known_hosts)], "true", request, connect=accept
        )
        assert result.status is Status.OK, result.error
    assert known_hosts.read_text().splitlines() == [
        other.known_hosts_line,
        server.known_hosts_line,
    ]
    assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o600


def test_auth_failure_is_unreachable_and_not_retried(
    ssh: SSHServerHarness, tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    server = ssh.start_server(reject_auth=True)
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    [result] = run_on(transport, [host_on(ssh, server, known_hosts)], "true", request)
    assert (result.status, result.reason) == (Status.UNREACHABLE, Reason.AUTH)
    assert result.error is not None
    assert result.error.startswith("authentication failed for test: ")
    assert server.connections == 1


def test_a_refused_connection_is_not_retried(
    tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = unused.getsockname()[1]
        host = Host(name="nobody", address="127.0.0.1", port=port, known_hosts=str(tmp_path / "k"))
        [result] = run_on(transport, [host], "true", request, connect=ConnectOptions(retries=2))
    assert (result.status, result.reason) == (Status.UNREACHABLE, Reason.REFUSED)
    assert result.error == f"connection refused by 127.0.0.1:{port}"


def test_a_blackholed_host_costs_one_connect_timeout(
    tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    """Nothing answers the SYN (a dead host, a firewall dropping packets): one attempt, one
    connect timeout, by default (it used to be three: ~34 s per run with the 10 s default).
    The blackhole: a listener whose accept queue is full, so the kernel drops new SYNs."""
    with socket.socket() as full:
        full.bind((f"127.{TEST_NET}.21.1", 0))
        full.listen(0)
        address, port = full.getsockname()
        with socket.create_connection((address, port), timeout=5):  # fills the queue
            host = Host(
                name="dead",
                address=address,
                port=port,
                known_hosts=str(tmp_path / "k"),
                connect_timeout=2.0,
            )
            started = time.monotonic()
            [result] = run_on(transport, [host], "true", request, connect=ConnectOptions(retries=2))
            elapsed = time.monotonic() - started
    assert (result.status, result.reason) == (Status.UNREACHABLE, Reason.CONNECT_TIMEOUT)
    if durable(transport):
        # --durable is the ask: a job meant for flaky links retries a connect lost to loss.
        assert result.error == "connect timed out after 2s (after 3 attempts)"
        return
    assert result.error == "connect timed out after 2s"
    assert elapsed < 5.5, elapsed  # one 2 s timeout, not three (6 s) plus backoff


def test_a_host_whose_handshake_stalls_is_retried(
    tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    """A host that accepts TCP and never speaks (an sshd too busy to answer): it answered, so
    the timeout is worth the run's retries, unlike a host that never answers at all."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        host = Host(
            name="silent",
            address="127.0.0.1",
            port=port,
            known_hosts=str(tmp_path / "k"),
            connect_timeout=1.0,
        )
        [result] = run_on(transport, [host], "true", request, connect=ConnectOptions(retries=1))
        accepted = _count_pending(silent)
    assert (result.status, result.reason) == (Status.UNREACHABLE, Reason.CONNECT_TIMEOUT)
    assert result.error == "connect timed out after 1s (after 2 attempts)"
    assert accepted == 2


def _count_pending(listener: socket.socket) -> int:
    """Connections waiting in ``listener``'s backlog."""
    listener.setblocking(False)
    count = 0
    while True:
        try:
            peer, _ = listener.accept()
        except BlockingIOError:
            return count
        peer.close()
        count += 1


def test_a_drop_mid_command_keeps_partial_output(
    ssh: SSHServerHarness, tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    server = ssh.start_server(drop_after_stdout_bytes=4096)
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    if durable(transport):
        # A durable job's output comes from the node's spool: each drop costs a reconnect,
        # and it resumes at the byte offsets it has; every byte arrives once, in order.
        [result] = run_on(
            transport,
            [host_on(ssh, server, known_hosts)],
            "yes abcdefg | head -c 10000; exit 3",
            request,
            keep_output_chars=10000,
        )
        assert (result.status, result.exit_status, result.reason) == (
            Status.FAILED,
            3,
            Reason.EXIT,
        )
        assert result.stdout == ("abcdefg\n" * 1250)
        assert any(note.startswith("reconnected ") for note in result.notes), result.notes
        return
    [result] = run_on(
        transport,
        [host_on(ssh, server, known_hosts)],
        "yes abcdefg | head -c 100000; sleep 5",
        request,
    )
    assert (result.status, result.reason) == (Status.UNREACHABLE, Reason.DROPPED)
    assert result.error is not None
    assert result.error.startswith("connection lost mid-command")
    assert 0 < len(result.stdout) <= 4096
    assert result.stdout == ("abcdefg\n" * 600)[: len(result.stdout)]


def test_timeout_stops_the_remote_process_group(
    ssh: SSHServerHarness, tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    marker = tmp_path / "still-running"
    started = time.monotonic()
    [result] = run_on(
        transport,
        [host_on(ssh, server, known_hosts)],
        f"echo begun; (sleep 3; touch {marker}) & sleep 30",
        request,
        timeout=1.0,
    )
    assert time.monotonic() - started < 15
    assert (result.status, result.stdout) == (Status.TIMEOUT, "begun\n")
    assert result.error == "timed out after 1s; remote process group stopped"
    assert result.reason is Reason.TIMEOUT
    time.sleep(3.5)
    assert not marker.exists(), "a process of the timed-out command was left running"


def test_a_command_killed_by_a_signal_failed(
    ssh: SSHServerHarness, tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    """``kill -KILL $$``: the command failed (exit 1 class), the host was reached."""
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    [result] = run_on(
        transport, [host_on(ssh, server, known_hosts)], "echo before; kill -KILL $$", request
    )
    assert result.stdout == "before\n"
    if durable(transport):
        # The node's job keeper records the shell's status, as `sh -c` reports it.
        assert (result.status, result.exit_status, result.reason) == (
            Status.FAILED,
            137,
            Reason.EXIT,
        )
        return
    assert (result.status, result.error, result.reason) == (
        Status.FAILED,
        "killed by signal KILL",
        Reason.SIGNAL,
    )


@pytest.mark.parametrize("limit", [1000, None])
def test_the_result_keeps_the_start_of_each_stream_and_the_sink_gets_all(
    ssh: SSHServerHarness,
    tmp_path: Path,
    transport: str,
    limit: int | None,
    request: pytest.FixtureRequest,
) -> None:
    """2 MB on each stream: the result keeps the first ``limit`` characters of each (the
    default when not given), while every character is streamed out as events."""
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    events: list[Event] = []
    big = 2_000_000
    [result] = run_on(
        transport,
        [host_on(ssh, server, known_hosts)],
        f"yes 0123456789 | head -c {big}; yes abc | head -c {big} >&2",
        request,
        events,
        keep_output_chars=limit,
    )
    kept = DEFAULT_KEEP_CHARS if limit is None else limit
    assert result.status is Status.OK, result.error
    assert result.stdout == ("0123456789\n" * (kept // 11 + 1))[:kept]
    assert result.stderr == ("abc\n" * (kept // 4 + 1))[:kept]
    streamed = {"stdout": 0, "stderr": 0}
    for event in events:
        if isinstance(event, HostOutput):
            streamed[event.stream] += len(event.data)
    assert streamed == {"stdout": big, "stderr": big}


def test_output_flows_while_the_command_runs(
    ssh: SSHServerHarness, tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    """The command waits for a file the test creates only once the first line arrived: it
    ends only if output is handed on as it comes (not at the command's end)."""
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    go = tmp_path / "go"
    events: list[Event] = []

    def emit(event: Event) -> None:
        events.append(event)
        if isinstance(event, HostOutput) and "first" in event.data:
            go.touch()

    tasks = [Task(host_on(ssh, server, known_hosts), f"echo first; while [ ! -e {go} ]; do "
             "sleep 0.1; done; echo second")]  # fmt: skip
    [result] = run(tasks, run_options(transport, request, timeout=20.0), emit)
    assert (result.status, result.stdout) == (Status.OK, "first\nsecond\n"), result.error


class _Throttle:
    """An `OutputFlow` that holds output back once, until the test lets it go."""

    def __init__(self) -> None:
        self.resume: object = None
        self.paused = threading.Event()

    def throttle(self, resume: object) -> bool:
        if self.resume is None:
            self.resume = resume
            self.paused.set()
            return True
        return False


@pytest.mark.parametrize("opener", ["asyncssh", "paramiko"])
def test_flow_control_holds_the_command_back(
    ssh: SSHServerHarness, tmp_path: Path, opener: str
) -> None:
    """While the consumer is behind, the transport stops reading: the SSH window fills and the
    remote command blocks on its writes (it does not get to its end); resumed, all arrives."""
    from bastion.transport.asyncssh_transport import AsyncsshTransport

    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    done = tmp_path / "wrote-everything"
    host = host_on(ssh, server, known_hosts)
    flow = _Throttle()
    got = {"stdout": 0}

    def sink(stream: str, text: str) -> None:
        got["stdout"] += len(text) if stream == "stdout" else 0

    async def main() -> tuple[HostResult, bool]:
        made = AsyncsshTransport if opener == "asyncssh" else ParamikoTransport
        transport = made(ConnectOptions(retries=0))
        spec = CommandSpec(
            f"head -c 20000000 /dev/zero; touch {done}", timeout=60.0, keep_output_chars=0
        )
        spec = replace(spec, flow=flow)
        running = asyncio.ensure_future(transport.run(host, spec, sink))
        while not flow.paused.is_set():
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)
        held = not done.exists()
        assert callable(flow.resume)
        flow.resume()
        result = await running
        await transport.close()
        return result, held

    result, held = asyncio.run(main())
    assert held, "the command ran to its end while its output was not being read"
    assert (result.status, got["stdout"]) == (Status.OK, 20_000_000)
    assert done.exists()


def test_targets_behind_a_jump_host(
    ssh: SSHServerHarness, tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    jump = ssh.start_server(allow_forwarding=True)
    targets = [ssh.start_server() for _ in range(2)]
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [jump, *targets])
    gateway = host_on(ssh, jump, known_hosts, name="gateway")
    hosts = [
        replace(host_on(ssh, t, known_hosts, name=f"node{i}"), jump="gateway")
        for i, t in enumerate(targets, 1)
    ]
    results = run_on(
        transport,
        hosts,
        "echo hi",
        request,
        connect=ConnectOptions(jump_hosts={"gateway": gateway}),
    )
    assert [(r.status, r.stdout) for r in results] == [(Status.OK, "hi\n")] * 2
    assert jump.connections == 1
    assert jump.forwards == 2


@pytest.mark.parametrize("opener", ["asyncssh", "paramiko"])
def test_durable_links_report_exit_status_and_refuse_when_down(
    ssh: SSHServerHarness, tmp_path: Path, opener: str
) -> None:
    """The plain connections durable jobs drive: raw bytes, exit status, failures typed."""
    from bastion.transport.asyncssh_transport import AsyncsshTransport

    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    host = host_on(ssh, server, known_hosts)
    opener_type = AsyncsshTransport if opener == "asyncssh" else ParamikoTransport

    async def main() -> tuple[int, bytes, bytes, int, str]:
        link_opener = opener_type(ConnectOptions(retries=0))
        link = await link_opener.open_link(host, retry=True)
        got: dict[str, bytes] = {"stdout": b"", "stderr": b""}

        def keep(stream: str, data: bytes) -> None:
            got[stream] += data

        try:
            status = await link.exec("printf 'a\\377'; echo e >&2; exit 4", keep)
            killed = await link.exec("kill -KILL $$", keep)
        finally:
            link.close()
        refused = ""
        try:
            await link_opener.open_link(replace(host, port=1), retry=False)
        except LinkFailure as exc:
            refused = f"{exc.message} {exc.reason}" if exc.transient else "not transient"
        await link_opener.close()
        return status, got["stdout"], got["stderr"], killed, refused

    status, out, err, killed, refused = asyncio.run(main())
    assert (status, out, err, killed) == (4, b"a\xff", b"e\n", 137)
    assert refused == "connection refused by 127.0.0.1:1 refused"
