"""An unusable inventory ``identity_file`` is exit 2 before any host is contacted.

Keys are made by the real ``ssh-keygen`` (every format it writes: OpenSSH, PEM, PKCS#8, with
and without a passphrase), so the framing bastion reads is the one users have. Through the CLI
against an in-process SSH server that counts its connections: none is made.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.errors import InventoryError
from bastion.models import Host
from bastion.transport.identity import check_identity_files, key_file_problem
from tests.conftest import REPO
from tests.sshserver import SSHServerHarness, SSHTestServer, write_known_hosts

needs_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="no ssh-keygen")


def keygen(path: Path, *args: str, passphrase: str = "") -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-f", str(path), "-N", passphrase, *args],
        check=True,
        capture_output=True,
    )
    return path


@needs_keygen
@pytest.mark.parametrize(
    "args",
    [
        ["-t", "ed25519"],
        ["-t", "ecdsa"],
        ["-t", "rsa", "-b", "2048", "-m", "PEM"],
        ["-t", "rsa", "-b", "2048", "-m", "PKCS8"],
    ],
    ids=["openssh-ed25519", "openssh-ecdsa", "pem-rsa", "pkcs8-rsa"],
)
def test_plain_and_encrypted_keys_are_told_apart(tmp_path: Path, args: list[str]) -> None:
    plain = keygen(tmp_path / "plain", *args)
    locked = keygen(tmp_path / "locked", *args, passphrase="correct horse")
    assert key_file_problem(plain, agent=False) is None
    problem = key_file_problem(locked, agent=False)
    assert problem is not None and problem.fatal
    assert problem.message.startswith("is encrypted and no ssh-agent runs")
    with_agent = key_file_problem(locked, agent=True)
    assert with_agent is not None and not with_agent.fatal


def test_missing_directory_and_not_a_key(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA comment\n")
    cases = {
        "missing": "no such file",
        "dir": "is a directory, not a key file",
        "pub": "is not a private key (no PRIVATE KEY block)",
    }
    for name, message in cases.items():
        problem = key_file_problem(tmp_path / name, agent=True)
        assert problem is not None and (problem.message, problem.fatal) == (message, True)


def test_a_jump_hosts_key_is_checked_too(tmp_path: Path) -> None:
    from bastion.executor import _with_jump_hosts

    gateway = Host(name="gw", address="127.0.0.1", identity_file=str(tmp_path / "gone"))
    inner = Host(name="inner", address="127.0.0.2", jump="gw")
    with pytest.raises(InventoryError, match=r"^host gw: identity_file .*gone no such file$"):
        check_identity_files(_with_jump_hosts([inner], {"gw": gateway}))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[SSHServerHarness, SSHTestServer]]:
    with SSHServerHarness(tmp_path / "client") as harness:
        yield harness, harness.start_server()


def run_cli(
    tmp_path: Path, identity: Path, server: SSHTestServer, **env: str
) -> subprocess.CompletedProcess[str]:
    known_hosts = write_known_hosts(tmp_path / "known_hosts", [server])
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        f"defaults:\n  user: test\n  identity_file: {identity}\n  known_hosts: {known_hosts}\n"
        f"hosts:\n  node1:\n    address: {server.address}\n    port: {server.port}\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    environment.pop("SSH_AUTH_SOCK", None)
    environment.update(
        PYTHONPATH=str(REPO),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_RUNTIME_DIR=str(tmp_path / "run"),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "bastion", "run", "-i", str(inventory), "--all", "true"],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_keygen
@pytest.mark.parametrize("problem", ["missing", "directory", "not a key", "encrypted"])
def test_an_unusable_identity_file_is_exit_2_before_connecting(
    tmp_path: Path, server: tuple[SSHServerHarness, SSHTestServer], problem: str
) -> None:
    _, ssh_server = server
    identity = tmp_path / "id"
    if problem == "directory":
        identity.mkdir()
    elif problem == "not a key":
        identity.write_text("hello\n")
    elif problem == "encrypted":
        keygen(identity, "-t", "ed25519", passphrase="secret words")
    done = run_cli(tmp_path, identity, ssh_server)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"bastion: error: host node1: identity_file {identity} ")
    assert ssh_server.connections == 0


@needs_keygen
def test_an_encrypted_key_with_an_agent_warns_and_uses_the_agent(
    tmp_path: Path, server: tuple[SSHServerHarness, SSHTestServer]
) -> None:
    """As ssh goes on with the agent's keys: the client key is loaded into a real ssh-agent."""
    if shutil.which("ssh-agent") is None:
        pytest.skip("no ssh-agent")
    harness, ssh_server = server
    identity = keygen(tmp_path / "id", "-t", "ed25519", passphrase="secret words")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            subprocess.run(["sleep", "0.05"], check=True)
        subprocess.run(
            ["ssh-add", "-q", str(harness.identity_file)],
            env={**os.environ, "SSH_AUTH_SOCK": str(sock)},
            check=True,
            capture_output=True,
        )
        done = run_cli(tmp_path, identity, ssh_server, SSH_AUTH_SOCK=str(sock))
    finally:
        agent.terminate()
        agent.wait(10)
    assert done.returncode == 0, done.stderr
    assert (
        f"bastion: warning: identity_file {identity} is encrypted (bastion never asks for a "
        "passphrase); using ssh-agent's keys\n"
    ) in done.stderr
