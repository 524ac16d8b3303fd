"""copy and fetch through the real executor and asyncssh transport, against in-process servers.

These servers run commands but have no SFTP subsystem (so transfers go through exec sessions,
`ShellFiles`), and can be stopped at will: what a host that cannot be reached comes to.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.executor import RunOptions, execute_work
from bastion.models import Host, HostResult, Status
from bastion.transfer.copy import CopyOptions, copy_to_host
from bastion.transfer.fetch import FetchOptions, fetch_from_host
from bastion.transfer.sources import plan_copy
from bastion.transfer.work import files_work
from bastion.transport.base import ConnectOptions
from tests.sshserver import SSHServerHarness, write_known_hosts


@pytest.fixture
def ssh(tmp_path: Path) -> Iterator[SSHServerHarness]:
    with SSHServerHarness(tmp_path / "client") as harness:
        yield harness


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_copy_and_fetch_without_sftp_use_exec_sessions_and_reach_the_others(
    ssh: SSHServerHarness, tmp_path: Path
) -> None:
    server = ssh.start_server()
    known = write_known_hosts(tmp_path / "known_hosts", [server])
    no_sftp = Host(
        "node1",
        server.address,
        port=server.port,
        user="test",
        identity_file=str(ssh.identity_file),
        known_hosts=str(known),
    )
    closed = Host(
        "node2",
        "127.0.0.1",
        port=free_port(),
        user="test",
        identity_file=str(ssh.identity_file),
        known_hosts=str(known),
    )
    source = tmp_path / "a.conf"
    source.write_text("a\n")
    dest = tmp_path / "dest"
    dest.mkdir()
    plan = plan_copy([str(source)], f"{dest}/", recursive=False)
    options = RunOptions(connect=ConnectOptions(retries=0))

    def transfer(work_body: object) -> list[HostResult]:
        work = files_work(work_body, timeout=30)  # type: ignore[arg-type]
        return asyncio.run(execute_work([no_sftp, closed], options, lambda event: None, work))

    copied = transfer(
        lambda files, host, sink: copy_to_host(files, host, plan, f"{dest}/", CopyOptions(), sink)
    )
    fetched = transfer(
        lambda files, host, sink: fetch_from_host(
            files, host, [str(dest / "a.conf")], tmp_path / "out", FetchOptions(), sink
        )
    )
    for first, second in (copied, fetched):
        assert first.status is Status.OK, first
        assert second.status is Status.UNREACHABLE
        assert second.error is not None and "connection refused" in second.error
    assert (dest / "a.conf").read_text() == "a\n"
    assert (tmp_path / "out" / "node1" / str(dest / "a.conf").lstrip("/")).read_text() == "a\n"
