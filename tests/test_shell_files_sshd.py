"""copy and fetch against a real OpenSSH sshd whose config has no ``Subsystem sftp`` line.

That is what hardened hosts run; pdcp and Ansible still copy there, and so must bastion (exec
sessions: `bastion.transport.asyncssh_sftp.ShellFiles`). The sshd keeps OpenSSH's default
``MaxSessions 10``, so the session limit is exercised too. Root only (sshd must start as root);
it listens on a loopback address of this helper's test net and is stopped by the test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from tests.hostile_sftp import run_bastion

SSHD = "/usr/sbin/sshd"


def _address() -> str:
    return f"127.{int(os.environ.get('BASTION_TEST_NET', '1'))}.7.1"


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Path]:
    """A real sshd without SFTP; yields an inventory file for it (host ``hard1``)."""
    if os.geteuid() != 0 or not Path(SSHD).exists():
        pytest.skip("needs root and OpenSSH's sshd to start a real sshd")
    etc = tmp_path / "sshd"
    etc.mkdir()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    host_key.write_private_key(etc / "host_key")
    (etc / "host_key").chmod(0o600)
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key.write_private_key(etc / "id")
    (etc / "id").chmod(0o600)
    (etc / "authorized_keys").write_bytes(client_key.export_public_key())
    address = _address()
    port = _free_port(address)
    (etc / "sshd_config").write_text(
        f"ListenAddress {address}:{port}\nHostKey {etc / 'host_key'}\n"
        f"PidFile {etc / 'sshd.pid'}\nAuthorizedKeysFile {etc / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nUseDNS no\n"
        "PrintMotd no\nLogLevel ERROR\n"  # and no Subsystem line: no SFTP at all
    )
    public = host_key.export_public_key("openssh").decode().split()
    (etc / "known_hosts").write_text(f"[{address}]:{port} {public[0]} {public[1]}\n")
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        f"defaults:\n  user: root\n  identity_file: {etc / 'id'}\n"
        f"  known_hosts: {etc / 'known_hosts'}\n"
        f"hosts:\n  hard1:\n    address: {address}\n    port: {port}\n"
    )
    daemon = subprocess.Popen([SSHD, "-D", "-e", "-f", str(etc / "sshd_config")])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection((address, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield inventory
    finally:
        daemon.terminate()
        daemon.wait(10)


def test_copy_and_fetch_work_on_an_sshd_without_sftp(sshd: Path, tmp_path: Path) -> None:
    tree = tmp_path / "app"
    for n in range(40):  # more files than MaxSessions: sessions are limited, not refused
        (tree / f"d{n % 4}").mkdir(parents=True, exist_ok=True)
        (tree / f"d{n % 4}" / f"f{n}").write_text(f"file {n}\n")
    private = tree / "d0"
    private.chmod(0o700)
    dest = tmp_path / "remote"
    dest.mkdir()
    home = tmp_path / "home"

    copied = run_bastion(["copy", "-i", str(sshd), "--all", "-r", str(tree), f"{dest}/"], home)
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert "cannot start SFTP" not in copied.stdout + copied.stderr
    for n in range(40):
        assert (dest / "app" / f"d{n % 4}" / f"f{n}").read_text() == f"file {n}\n"
    assert (dest / "app" / "d0").stat().st_mode & 0o777 == 0o700  # the directory's mode kept

    fetched = run_bastion(
        ["fetch", "-i", str(sshd), "--all", "-r", "-p", str(dest / "app"), str(tmp_path / "out")],
        home,
    )
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    local = tmp_path / "out" / "hard1" / str(dest / "app").lstrip("/")
    assert sorted(p.name for p in local.rglob("f*")) == sorted(f"f{n}" for n in range(40))
    assert (local / "d1" / "f1").read_text() == "file 1\n"
