"""Two hundred hosts at once: every host gets exactly one valid JSON line, all of them ok.

A smaller version of ``bench/scale.py`` (1,000 hosts): real asyncssh servers in-process, one
per loopback address, each running commands with a real ``/bin/sh``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_NET, Cli, cli_env
from tests.sshserver import SSHServerHarness, write_known_hosts

HOSTS = 200


@pytest.fixture
def ssh(tmp_path: Path) -> Iterator[SSHServerHarness]:
    with SSHServerHarness(tmp_path / "client") as harness:
        yield harness


@pytest.fixture
def lab_free_cli(tmp_path: Path) -> Cli:
    """The CLI with private state and history, and no lab."""
    return Cli(cli_env(tmp_path, tmp_path / "lab"), cwd=tmp_path)


def test_two_hundred_hosts_at_once_give_two_hundred_json_lines(
    ssh: SSHServerHarness, tmp_path: Path, lab_free_cli: Cli
) -> None:
    servers = [ssh.start_server(f"127.{TEST_NET}.20.{i + 1}") for i in range(HOSTS)]
    known = write_known_hosts(tmp_path / "known_hosts", servers)
    lines = [
        f"  h{i + 1}: {{address: {s.address}, port: {s.port}}}\n" for i, s in enumerate(servers)
    ]
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        f"defaults: {{user: test, identity_file: {ssh.identity_file}, known_hosts: {known}}}\n"
        "hosts:\n" + "".join(lines)
    )
    done = lab_free_cli(
        "run", "-i", str(inventory), "--all", "-o", "json", "-f", str(HOSTS), "echo hi",
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == HOSTS
    assert sorted(r["host"] for r in records) == sorted(f"h{i + 1}" for i in range(HOSTS))
    assert {(r["status"], r["stdout"]) for r in records} == {("ok", "hi\n")}
