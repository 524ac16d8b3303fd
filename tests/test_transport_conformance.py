"""The transport contract, run against both SSH transports (asyncssh and paramiko).

Same in-process servers as `test_transport_faults` (real asyncssh servers running real
``/bin/sh``); every test is parametrized by transport, so a transport that strays from the
contract (an error worded differently, a host key accepted that should not be, a timeout
that leaves the command running) fails here.
"""

from __future__ import annotations

import asyncio
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bastion.executor import RunOptions, Task, run
from bastion.hostkeys import HostKeyPolicy
from bastion.models import Host, HostResult, Status
from bastion.transport.base import ConnectOptions, LinkFailure
from bastion.transport.paramiko_transport import ParamikoTransport
from tests.sshserver import SSHServerHarness, SSHTestServer, write_known_hosts

USER = "test"
TRANSPORTS = ["asyncssh", "paramiko"]


@pytest.fixture
def ssh(tmp_path: Path) -> Iterator[SSHServerHarness]:
    with SSHServerHarness(tmp_path / "client") as harness:
        yield harness


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


def run_on(transport: str, hosts: list[Host], command: str, **options: object) -> list[HostResult]:
    connect = options.pop("connect", ConnectOptions())
    run_options = RunOptions(transport=transport, connect=connect, **options)  # type: ignore[arg-type]
    return run([Task(host, command) for host in hosts], run_options, lambda event: None)


def test_output_exit_status_and_streams(
    ssh: SSHServerHarness, tmp_path: Path, transport: str
) -> None:
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    [result] = run_on(
        transport,
        [host_on(ssh, server, known_hosts)],
        "echo out; echo err >&2; printf 'caf\\303\\251 no newline'; exit 3",
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
    )


def test_stdin_is_delivered(ssh: SSHServerHarness, tmp_path: Path, transport: str) -> None:
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    [result] = run_on(transport, [host_on(ssh, server, known_hosts)], "wc -c", stdin=b"12345")
    assert (result.status, result.stdout.strip()) == (Status.OK, "5")


def test_unknown_host_key_is_refused(ssh: SSHServerHarness, tmp_path: Path, transport: str) -> None:
    server, other = ssh.start_server(), ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [other])
    before = known_hosts.read_bytes()
    [result] = run_on(transport, [host_on(ssh, server, known_hosts)], "true")
    assert result.status is Status.UNREACHABLE
    assert result.error == (
        f"host key {server.host_key.get_fingerprint()} is not in {known_hosts}; refusing "
        "(add it to known_hosts, or use --accept-new to trust it on first use)"
    )
    assert known_hosts.read_bytes() == before
    assert server.commands == []


@pytest.mark.parametrize("accept_new", [False, True])
def test_a_changed_host_key_is_always_refused(
    ssh: SSHServerHarness, tmp_path: Path, transport: str, accept_new: bool
) -> None:
    server = ssh.start_server(wrong_host_key=True)
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    before = known_hosts.read_bytes()
    [result] = run_on(
        transport,
        [host_on(ssh, server, known_hosts)],
        "true",
        connect=ConnectOptions(host_keys=HostKeyPolicy(accept_new=accept_new)),
    )
    assert result.status is Status.UNREACHABLE
    assert result.error is not None
    assert result.error.startswith(
        f"HOST KEY CHANGED: the server presented {server.presented_key.get_fingerprint()}, "
    )
    assert known_hosts.read_bytes() == before
    assert server.commands == []


def test_accept_new_records_the_key_once(
    ssh: SSHServerHarness, tmp_path: Path, transport: str
) -> None:
    server, other = ssh.start_server(), ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [other])
    accept = ConnectOptions(host_keys=HostKeyPolicy(accept_new=True))
    for _ in range(2):
        [result] = run_on(transport, [host_on(ssh, server, known_hosts)], "true", connect=accept)
        assert result.status is Status.OK, result.error
    assert known_hosts.read_text().splitlines() == [
        other.known_hosts_line,
        server.known_hosts_line,
    ]
    assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o600


def test_auth_failure_is_unreachable_and_not_retried(
    ssh: SSHServerHarness, tmp_path: Path, transport: str
) -> None:
    server = ssh.start_server(reject_auth=True)
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    [result] = run_on(transport, [host_on(ssh, server, known_hosts)], "true")
    assert result.status is Status.UNREACHABLE
    assert result.error is not None
    assert result.error.startswith("authentication failed for test: ")
    assert server.connections == 1


def test_connection_refused_is_retried(tmp_path: Path, transport: str) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = unused.getsockname()[1]
        host = Host(name="nobody", address="127.0.0.1", port=port, known_hosts=str(tmp_path / "k"))
        [result] = run_on(transport, [host], "true", connect=ConnectOptions(retries=1))
    assert result.status is Status.UNREACHABLE
    assert result.error == f"connection refused by 127.0.0.1:{port} (after 2 attempts)"


def test_a_drop_mid_command_keeps_partial_output(
    ssh: SSHServerHarness, tmp_path: Path, transport: str
) -> None:
    server = ssh.start_server(drop_after_stdout_bytes=4096)
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    [result] = run_on(
        transport, [host_on(ssh, server, known_hosts)], "yes abcdefg | head -c 100000; sleep 5"
    )
    assert result.status is Status.UNREACHABLE
    assert result.error is not None
    assert result.error.startswith("connection lost mid-command")
    assert 0 < len(result.stdout) <= 4096
    assert result.stdout == ("abcdefg\n" * 600)[: len(result.stdout)]


def test_timeout_stops_the_remote_process_group(
    ssh: SSHServerHarness, tmp_path: Path, transport: str
) -> None:
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    marker = tmp_path / "still-running"
    started = time.monotonic()
    [result] = run_on(
        transport,
        [host_on(ssh, server, known_hosts)],
        f"echo begun; (sleep 3; touch {marker}) & sleep 30",
        timeout=1.0,
    )
    assert time.monotonic() - started < 10
    assert (result.status, result.stdout) == (Status.TIMEOUT, "begun\n")
    assert result.error == "timed out after 1s; remote process group stopped"
    time.sleep(3.5)
    assert not marker.exists(), "a process of the timed-out command was left running"


def test_targets_behind_a_jump_host(ssh: SSHServerHarness, tmp_path: Path, transport: str) -> None:
    jump = ssh.start_server(allow_forwarding=True)
    targets = [ssh.start_server() for _ in range(2)]
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [jump, *targets])
    gateway = host_on(ssh, jump, known_hosts, name="gateway")
    hosts = [
        replace(host_on(ssh, t, known_hosts, name=f"node{i}"), jump="gateway")
        for i, t in enumerate(targets, 1)
    ]
    results = run_on(
        transport, hosts, "echo hi", connect=ConnectOptions(jump_hosts={"gateway": gateway})
    )
    assert [(r.status, r.stdout) for r in results] == [(Status.OK, "hi\n")] * 2
    assert jump.connections == 1
    assert jump.forwards == 2


def test_durable_links_report_exit_status_and_refuse_when_down(
    ssh: SSHServerHarness, tmp_path: Path, transport: str
) -> None:
    """The plain connections durable jobs drive: raw bytes, exit status, failures typed."""
    from bastion.transport.asyncssh_transport import AsyncsshTransport

    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    host = host_on(ssh, server, known_hosts)
    opener_type = AsyncsshTransport if transport == "asyncssh" else ParamikoTransport

    async def main() -> tuple[int, bytes, bytes, str]:
        opener = opener_type(ConnectOptions(retries=0))
        link = await opener.open_link(host, retry=True)
        got: dict[str, bytes] = {"stdout": b"", "stderr": b""}

        def keep(stream: str, data: bytes) -> None:
            got[stream] += data

        try:
            status = await link.exec("printf 'a\\377'; echo e >&2; exit 4", keep)
        finally:
            link.close()
        refused = ""
        try:
            await opener.open_link(replace(host, port=1), retry=False)
        except LinkFailure as exc:
            refused = exc.message if exc.transient else "not transient"
        await opener.close()
        return status, got["stdout"], got["stderr"], refused

    status, out, err, refused = asyncio.run(main())
    assert (status, out, err) == (4, b"a\xff", b"e\n")
    assert refused == "connection refused by 127.0.0.1:1"
