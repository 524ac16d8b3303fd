"""A second local user plants directories and symlinks where bastion (root) is about to write.

The user is made with useradd (``bst-files-eve``, created and removed by the tests) and plants
things in a sticky, world-writable directory, as anyone can in /tmp. Every case must be
refused with one ``bastion: error:`` line naming the place, exit 2, before any host is
contacted (the in-process server counts connections), and nothing is written through.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile_sftp import run_bastion, start_hostile_sftp, write_inventory
from tests.sshserver import SSHServerHarness, SSHTestServer, write_known_hosts

USER = "bst-files-eve"


def _drop_user() -> None:
    subprocess.run(["userdel", "-f", USER], capture_output=True, check=False)


@pytest.fixture(scope="module")
def eve() -> Iterator[pwd.struct_passwd]:
    """The hostile local user (skipped when the tests cannot make one)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a second local user (useradd)")
    if shutil.which("useradd") is None:
        pytest.skip("useradd is not installed")
    _drop_user()  # idempotent: a user left by an interrupted run is made again
    subprocess.run(
        ["useradd", "--no-create-home", "--shell", "/bin/sh", USER], check=True, capture_output=True
    )
    try:
        yield pwd.getpwnam(USER)
    finally:
        _drop_user()


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory like /tmp: owned by root, mode 1777 (the tests' own, not the real /tmp)."""
    path = Path(tempfile.mkdtemp(prefix="bst-files-shared-"))
    path.chmod(0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def as_eve(script: str) -> None:
    subprocess.run(["runuser", "-u", USER, "--", "/bin/sh", "-ec", script], check=True)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[SSHTestServer, Path]]:
    with SSHServerHarness(tmp_path / "client") as harness:
        server = start_hostile_sftp(harness, tmp_path / "node")
        (tmp_path / "node" / "f").write_text("from the node\n")
        known = write_known_hosts(tmp_path / "known_hosts", [server])
        yield server, write_inventory(tmp_path / "inv.yaml", harness, known, [server])


def refused(done: subprocess.CompletedProcess[str], server: SSHTestServer, *words: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bastion: error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert server.connections == 0


def test_an_out_dir_planted_by_another_user_is_refused_before_any_host(
    eve: pwd.struct_passwd, shared: Path, lab: tuple[SSHTestServer, Path], tmp_path: Path
) -> None:
    server, inventory = lab
    as_eve(f"mkdir -m 0777 {shared}/out")
    done = run_bastion(
        ["run", "-i", str(inventory), "--all", "--out-dir", f"{shared}/out", "true"],
        tmp_path / "home",
    )
    refused(done, server, f"{shared}/out", f"owned by uid {eve.pw_uid}")
    assert list((shared / "out").iterdir()) == []


def test_a_planted_symlink_out_dir_is_not_followed(
    eve: pwd.struct_passwd, shared: Path, lab: tuple[SSHTestServer, Path], tmp_path: Path
) -> None:
    server, inventory = lab
    secret = tmp_path / "root-only"
    secret.mkdir(mode=0o700)
    (secret / "node1.out").write_text("precious\n")
    as_eve(f"ln -s {secret} {shared}/out")
    for command in (
        ["run", "-i", str(inventory), "--all", "--out-dir", f"{shared}/out", "true"],
        ["fetch", "-i", str(inventory), "--all", "/f", f"{shared}/out"],
        ["fetch", "-i", str(inventory), "--all", "/f", f"{shared}/out/deeper"],
    ):
        done = run_bastion(command, tmp_path / "home")
        refused(done, server, f"{shared}/out", "symlink owned by uid")
    assert sorted(p.name for p in secret.iterdir()) == ["node1.out"]
    assert (secret / "node1.out").read_text() == "precious\n"


def test_a_directory_below_another_users_directory_is_refused(
    eve: pwd.struct_passwd, shared: Path, lab: tuple[SSHTestServer, Path], tmp_path: Path
) -> None:
    server, inventory = lab
    as_eve(f"mkdir -m 0755 {shared}/theirs")
    done = run_bastion(
        ["fetch", "-i", str(inventory), "--all", "/f", f"{shared}/theirs/out"], tmp_path / "home"
    )
    refused(done, server, f"{shared}/theirs", "parent directory owned by uid")
    assert not (shared / "theirs" / "out").exists()


def test_a_directory_of_ours_writable_by_others_is_refused(
    shared: Path, lab: tuple[SSHTestServer, Path], tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("the shared directory is made by root")
    server, inventory = lab
    (shared / "open").mkdir()
    (shared / "open").chmod(0o777)
    done = run_bastion(
        ["run", "-i", str(inventory), "--all", "--out-dir", f"{shared}/open", "true"],
        tmp_path / "home",
    )
    refused(done, server, f"{shared}/open", "writable by group or others (mode 0777)")


def test_a_safe_out_dir_in_the_shared_directory_works(
    shared: Path, lab: tuple[SSHTestServer, Path], tmp_path: Path
) -> None:
    _server, inventory = lab
    done = run_bastion(
        ["run", "-i", str(inventory), "--all", "--out-dir", f"{shared}/mine/run", "echo hi"],
        tmp_path / "home",
    )
    assert done.returncode == 0, done.stderr
    assert (shared / "mine" / "run" / "node1.out").read_text() == "hi\n"
    assert (shared / "mine").stat().st_mode & 0o777 == 0o700


def test_history_in_another_users_directory_is_a_warning_not_a_failure(
    eve: pwd.struct_passwd, shared: Path, lab: tuple[SSHTestServer, Path], tmp_path: Path
) -> None:
    _server, inventory = lab
    as_eve(f"mkdir -m 0777 {shared}/state")
    done = run_bastion(
        ["run", "-i", str(inventory), "--all", "echo hi"],
        tmp_path / "home",
        env={"BASTION_HISTORY_FILE": f"{shared}/state/history.jsonl"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("hi")
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "cannot write the history" in warnings[0], done.stderr
    assert list((shared / "state").iterdir()) == []


_AGENT_DIR = """
from bastion.agent.paths import ensure_private_dir, runtime_dir
print(runtime_dir()); print(ensure_private_dir())
"""


def test_a_planted_agent_directory_makes_the_agent_use_a_private_one(
    eve: pwd.struct_passwd, shared: Path, tmp_path: Path
) -> None:
    planted = shared / f"bastion-{os.getuid()}"
    as_eve(f"mkdir -m 0777 {planted}")
    env = {
        **os.environ,
        "TMPDIR": str(shared),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    env.pop("XDG_RUNTIME_DIR", None)

    done = subprocess.run(
        [sys.executable, "-c", _AGENT_DIR], env=env, capture_output=True, text=True, check=True
    )
    first, second = done.stdout.split()
    assert first == second == str(tmp_path / "state" / "bastion" / "agent")
    assert (tmp_path / "state" / "bastion" / "agent").stat().st_mode & 0o777 == 0o700
    assert list(planted.iterdir()) == []


def test_the_agent_starts_serves_and_stops_despite_a_planted_directory(
    eve: pwd.struct_passwd, shared: Path, lab: tuple[SSHTestServer, Path], tmp_path: Path
) -> None:
    server, inventory = lab
    planted = shared / f"bastion-{os.getuid()}"
    as_eve(f"mkdir -m 0777 {planted}")
    home = tmp_path / "home"
    env = {"TMPDIR": str(shared), "XDG_RUNTIME_DIR": ""}
    started = run_bastion(["agent", "start"], home, env=env)
    try:
        assert started.returncode == 0, started.stderr
        socket = home / "state" / "bastion" / "agent" / "agent.sock"
        assert socket.is_socket()
        done = run_bastion(["run", "-i", str(inventory), "--all", "echo hi"], home, env=env)
        assert done.returncode == 0, done.stderr
        assert "connecting directly" not in done.stderr  # it went through the agent
        status = run_bastion(["agent", "status"], home, env=env)
        assert status.returncode == 0 and "node1" in status.stdout, status.stdout
    finally:
        stopped = run_bastion(["agent", "stop"], home, env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert list(planted.iterdir()) == []
    assert server.connections >= 1
