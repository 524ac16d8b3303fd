"""`BASTION_LAB_PATH_PREFIX`: a directory first on the lab nodes' PATH, for SSH and for sudo.

The real-node half (a stand-in found first, with and without sudo) runs in
tests/test_kube_playbooks.py, whose lab is started with it.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from bastion.errors import UsageError
from bastion.lab import paths, tools
from bastion.lab.nodes import SUDO_PATH_FILE, _write_sudo_path
from bastion.lab.sshd import SshdSettings, render_sshd_config


def settings(tmp_path: Path, session_path: str | None) -> SshdSettings:
    return SshdSettings(
        address="127.0.9.2",
        port=22,
        host_key=tmp_path / "key",
        pid_file=tmp_path / "pid",
        authorized_keys=".ssh/authorized_keys",
        session_path=session_path,
    )


def test_without_a_prefix_sshd_keeps_its_default_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(paths.PATH_PREFIX_ENV, raising=False)
    assert paths.node_path(paths.lab_path_prefix()) is None
    assert "SetEnv" not in render_sshd_config(settings(tmp_path, None))


def test_a_prefix_comes_first_on_the_sessions_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.PATH_PREFIX_ENV, "/var/tmp/standins/bin")
    session_path = paths.node_path(paths.lab_path_prefix())
    assert session_path == f"/var/tmp/standins/bin:{paths.NODE_DEFAULT_PATH}"
    config = render_sshd_config(settings(tmp_path, session_path))
    assert f"SetEnv PATH={session_path}\n" in config
    # This sshd accepts the line (-t: check the config and keys only).
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (tmp_path / "sshd_config").write_text(config)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    checked = subprocess.run(
        [tools.find_program("sshd"), "-t", "-f", str(tmp_path / "sshd_config")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("prefix", ["relative/bin", "/with space", '/quote"d', "/a:b"])
def test_a_prefix_that_would_break_sshd_config_or_sudoers_is_refused(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.PATH_PREFIX_ENV, prefix)
    with pytest.raises(UsageError, match=paths.PATH_PREFIX_ENV):
        paths.lab_path_prefix()


def test_sudo_gets_the_same_path_and_loses_it_without_a_prefix(tmp_path: Path) -> None:
    etc_upper = tmp_path / "etc.upper"
    etc_upper.mkdir()
    _write_sudo_path(etc_upper, "/opt/x/bin:/usr/bin")
    target = etc_upper / SUDO_PATH_FILE
    assert target.read_text() == 'Defaults secure_path="/opt/x/bin:/usr/bin"\n'
    assert stat.S_IMODE(target.stat().st_mode) == 0o440
    if os.path.exists("/usr/sbin/visudo"):
        checked = subprocess.run(
            ["/usr/sbin/visudo", "-c", "-f", str(target)], capture_output=True, check=False
        )
        assert checked.returncode == 0, checked.stdout
    _write_sudo_path(etc_upper, None)
    assert not target.exists()
