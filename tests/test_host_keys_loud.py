"""Host keys are loud everywhere: no path retries, hides or reuses past a host-key problem.

- A durable job whose host presents another key when it reconnects fails at once with the
  host-key message (it used to retry silently for the whole reconnect window, 300 s).
- The agent's pool does not reuse a connection whose key has been marked ``@revoked`` since,
  and the new connection is refused by name.
- paramiko's own log records (tracebacks of its transport thread) never reach stderr.

In-process asyncssh servers (tests/sshserver.py); the conformance suite covers the rest (a
changed key, a key of another type, a revoked key, on every transport).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.agent.pool import ConnectionPool
from bastion.executor import RunOptions, Task, run
from bastion.models import Event, Host, HostOutput, Reason, Status
from bastion.transport.base import CommandSpec, ConnectOptions
from tests.sshserver import SSHServerHarness, SSHTestServer, write_known_hosts

USER = "test"


@pytest.fixture
def ssh(tmp_path: Path) -> Iterator[SSHServerHarness]:
    with SSHServerHarness(tmp_path / "client") as harness:
        yield harness


def host_on(ssh: SSHServerHarness, server: SSHTestServer, known_hosts: Path) -> Host:
    return Host(
        name="node1",
        address=server.address,
        port=server.port,
        user=USER,
        identity_file=str(ssh.identity_file),
        known_hosts=str(known_hosts),
    )


@pytest.mark.parametrize("transport", ["asyncssh", "paramiko"])
@pytest.mark.parametrize("key_type", ["ssh-ed25519", "ecdsa-sha2-nistp256"])
def test_a_durable_job_whose_host_key_changes_on_reconnect_fails_at_once(
    ssh: SSHServerHarness, tmp_path: Path, transport: str, key_type: str
) -> None:
    home = tmp_path / "home"  # the job is left there (the host is refused before cleaning)
    home.mkdir()
    server = ssh.start_server(home=str(home))
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    swapped = threading.Event()

    def emit(event: Event) -> None:
        # The job has started and streams: now the host "changes" under it.
        if isinstance(event, HostOutput) and "begun" in event.data and not swapped.is_set():
            swapped.set()
            threading.Thread(target=ssh.replace_host_key, args=(server, key_type)).start()

    options = RunOptions(transport=transport, durable=True, timeout=120.0)
    started = time.monotonic()
    [result] = run(
        [Task(host_on(ssh, server, known_hosts), "echo begun; sleep 20; echo end")],
        options,
        emit,
    )
    elapsed = time.monotonic() - started
    assert swapped.is_set()
    assert (result.status, result.reason) == (Status.UNREACHABLE, Reason.HOST_KEY)
    assert result.error is not None
    assert result.error.startswith(
        f"HOST KEY CHANGED: the server presented {server.presented_key.get_fingerprint()}, "
    ), result.error
    assert "may still be on the host (bastion jobs lists it)" in result.error
    assert result.stdout == "begun\n"
    assert elapsed < 15, f"retried for {elapsed:.0f}s instead of failing at once"


def test_the_agent_pool_does_not_reuse_a_connection_whose_key_was_revoked(
    ssh: SSHServerHarness, tmp_path: Path
) -> None:
    server = ssh.start_server()
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    host = host_on(ssh, server, known_hosts)
    log: list[str] = []

    async def scenario() -> list[tuple[Status, str | None, Reason | None]]:
        pool = ConnectionPool(60.0, log.append)
        transport = pool.transport_for("k", lambda: ConnectOptions(retries=0))
        outcomes = []
        try:
            first = await transport.run(host, CommandSpec("echo one"), lambda s, t: None)
            outcomes.append((first.status, first.error, first.reason))
            with known_hosts.open("a") as lines:
                lines.write(f"@revoked {server.known_hosts_line}\n")
            second = await transport.run(host, CommandSpec("echo two"), lambda s, t: None)
            outcomes.append((second.status, second.error, second.reason))
        finally:
            await pool.close()
        return outcomes

    first, second = asyncio.run(scenario())
    assert first == (Status.OK, None, None)
    assert second == (
        Status.UNREACHABLE,
        f"HOST KEY REVOKED: the server presented {server.host_key.get_fingerprint()}, which "
        f"{known_hosts} marks @revoked; refusing",
        Reason.HOST_KEY,
    )
    assert any("host key no longer trusted by known_hosts" in line for line in log), log
    assert not [c for c in server.commands if c.endswith("echo two")], "ran on a revoked key"


def test_paramiko_prints_no_traceback(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A peer that is no SSH server (it answers with garbage and hangs up): paramiko's thread
    logs a traceback; bastion reports the host and prints nothing else."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]

        def answer_garbage() -> None:
            peer, _ = listener.accept()
            with peer:
                peer.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        threading.Thread(target=answer_garbage, daemon=True).start()
        host = Host(name="web", address="127.0.0.1", port=port, known_hosts=str(tmp_path / "k"))
        [result] = run(
            [Task(host, "true")],
            RunOptions(transport="paramiko", connect=ConnectOptions(retries=0)),
            lambda event: None,
        )
    assert (result.status, result.reason) == (Status.UNREACHABLE, Reason.DROPPED)
    assert result.error is not None and result.error.startswith("connection dropped: ")
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err, captured.err
    assert captured.err == ""
