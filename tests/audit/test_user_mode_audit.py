"""The audit of a node whose sshd does not run as root (the user-mode lab; issue 12 item 2).

Such an sshd logs in only the user it runs as. On main at d293b42 the audit still listed every
account of /etc/passwd: each one's (shared, absolute) AuthorizedKeysFile was "unreadable as"
that account, one COLL-03 per system account (96 in a 3-node user-mode lab). Here a real sshd
runs as a plain user on a loopback address, as `bastion lab up` does for a non-root user.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_NET, Cli, cli_env, lab_available

pytestmark = pytest.mark.lab

USER = "bst-audit-sshd"
ADDRESS = f"127.{TEST_NET}.8.1"
PORT = 2222


@pytest.fixture
def plain_sshd(tmp_path: Path) -> Iterator[Path]:
    """A real sshd running as a plain user; yields the inventory that logs in as that user."""
    reason = lab_available()
    if reason:
        pytest.fail(reason)
    if os.geteuid() != 0:
        pytest.skip("creating the plain user needs root")
    subprocess.run(["userdel", "-r", USER], capture_output=True, check=False)
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True)
    home = Path(pwd.getpwnam(USER).pw_dir)
    state = home / "sshd"
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    process: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            ["runuser", "-u", USER, "--", "sh", "-c",
             f"mkdir -m 700 {state} && ssh-keygen -q -t ed25519 -N '' -f {state}/host_key && "
             f"ssh-keygen -q -t ed25519 -N '' -f {state}/id_ed25519 && "
             f"cp {state}/id_ed25519.pub {state}/authorized_keys"],
            check=True,
        )  # fmt: skip
        (state / "sshd_config").write_text(
            f"ListenAddress {ADDRESS}:{PORT}\nHostKey {state}/host_key\n"
            f"AuthorizedKeysFile {state}/authorized_keys\nPidFile {state}/sshd.pid\n"
            "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "StrictModes no\nLogLevel ERROR\n"
        )
        process = subprocess.Popen(
            ["runuser", "-u", USER, "--", sshd, "-D", "-e", "-f", f"{state}/sshd_config"]
        )
        client = tmp_path / "id_ed25519"
        shutil.copy(state / "id_ed25519", client)
        client.chmod(0o600)
        host_key = (state / "host_key.pub").read_text().split()
        (tmp_path / "known_hosts").write_text(f"[{ADDRESS}]:{PORT} {host_key[0]} {host_key[1]}\n")
        (tmp_path / "inventory.yaml").write_text(
            f"defaults: {{user: {USER}, identity_file: {client}, "
            f"known_hosts: {tmp_path / 'known_hosts'}}}\n"
            f"hosts:\n  plain1: {{address: {ADDRESS}, port: {PORT}}}\n"
        )
        for _ in range(100):  # sshd is ready when its pid file appears
            if (state / "sshd.pid").exists():
                break
            time.sleep(0.1)
        yield tmp_path / "inventory.yaml"
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        subprocess.run(["userdel", "-r", USER], capture_output=True, check=False)


def test_only_the_account_sshd_runs_as_is_audited(plain_sshd: Path, tmp_path: Path) -> None:
    cli = Cli(cli_env(tmp_path, tmp_path / "lab"), cwd=tmp_path)
    done = cli("audit", "-i", str(plain_sshd), "-F", "json", timeout=120)
    assert done.returncode in (0, 1), done.stdout[-1000:] + done.stderr
    report = json.loads(done.stdout)
    (host,) = report["hosts"]
    assert host["coverage"] == "partial"  # no root: said once, as COLL-02
    accounts = {f["account"] for f in report["findings"] if f["account"]}
    assert accounts <= {USER}, sorted(accounts)
    assert not [f for f in report["findings"] if f["id"] == "COLL-03"]
    assert {r["account"] for r in report["rows"]} == {USER}
    assert len(report["findings"]) < 10, [f["id"] for f in report["findings"]]
