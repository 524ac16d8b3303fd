"""The root-mode lab on any host layout: its state anywhere, a /home with users' files.

Each node overlays /etc, /root and /home and mounts a tmpfs on /tmp, so a lab directory under
one of them used to trip over the node's own mounts (issue 12: state under /root while /home
is overlaid too failed with "overlay: filesystem on .../home.upper not supported as
upperdir"). The launcher (bastion/lab/node_launcher.sh) now reaches every layer through a
descriptor opened before any mount. These tests start a real lab with its directory in each
place a host may keep it, beside a user's files in /home, and the stand-ins' directory
(`BASTION_LAB_PATH_PREFIX`) under /tmp. Subnet 127.$BASTION_TEST_NET.10.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.errors import UsageError
from bastion.lab.manager import down, up
from bastion.lab.nodes import filesystem_of, upper_layer_problem
from tests.conftest import TEST_NET
from tests.lab_accounts import ensure_user, remove_user
from tests.test_lab import processes_mentioning, running, ssh

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the root-mode lab needs root")

SUBNET = f"127.{TEST_NET}.10"
HOME_USER = "bst-lab-home"
"""A user with files in /home, as on most machines (the build machine once had no /home)."""


@pytest.fixture(scope="module")
def home_user() -> Iterator[Path]:
    """A real user whose home in /home holds a file; removed afterwards."""
    created_home = not Path("/home").exists()
    Path("/home").mkdir(mode=0o755, exist_ok=True)
    account = ensure_user(HOME_USER)
    home = Path(account.pw_dir)
    notes = home / "notes.txt"
    notes.write_text("the user's own file\n")
    os.chown(notes, account.pw_uid, account.pw_gid)
    try:
        yield home
    finally:
        remove_user(HOME_USER)
        if created_home:
            shutil.rmtree("/home", ignore_errors=True)


def _parents(home: Path) -> dict[str, Path | None]:
    srv = Path("/srv")
    return {
        # root's default state dir: $HOME/.local/state/bastion/lab with HOME=/root
        "root": Path("/root"),
        "home": home,  # a root shell that kept a user's HOME (sudo -E)
        "tmp": Path("/tmp"),  # a checkout or XDG_STATE_HOME under /tmp
        "var-tmp": Path("/var/tmp"),
        "etc": Path("/etc"),
        "srv": srv if srv.is_dir() else None,
    }


@pytest.fixture(params=["root", "home", "tmp", "var-tmp", "etc", "srv"])
def state_home(
    request: pytest.FixtureRequest, home_user: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """``XDG_STATE_HOME`` in a fresh directory under the parameter's place; the lab in it."""
    parent = _parents(home_user)[request.param]
    if parent is None:
        pytest.skip(f"this host has no {request.param}")
    scratch = Path(tempfile.mkdtemp(prefix=".bastion-lab-layout-", dir=parent))
    monkeypatch.delenv("BASTION_LAB_DIR", raising=False)
    monkeypatch.delenv("BASTION_LAB_PATH_PREFIX", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(scratch / ".local" / "state"))
    lab_dir = scratch / ".local" / "state" / "bastion" / "lab"
    try:
        yield lab_dir
    finally:
        down(lab_dir)
        assert processes_mentioning(lab_dir) == []
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.mark.lab
@needs_root
def test_the_lab_starts_wherever_its_state_is_and_nodes_keep_their_own_files(
    state_home: Path, home_user: Path
) -> None:
    lab = up(2, subnet=SUBNET)  # no lab_dir: the default, under XDG_STATE_HOME
    assert lab.lab_dir == state_home
    notes = home_user / "notes.txt"
    name = f"lab-layout-{uuid.uuid4().hex}"
    on_node1 = ssh(
        lab,
        "node1",
        f"hostname; cat {notes}; echo mine >{home_user}/{name}; echo mine >/root/{name}; "
        f"echo mine >/etc/{name}; echo mine >/tmp/{name}",
    )
    assert on_node1.returncode == 0, on_node1.stderr
    assert on_node1.stdout == "node1\nthe user's own file\n"
    for path in (f"{home_user}/{name}", f"/root/{name}", f"/etc/{name}", f"/tmp/{name}"):
        assert ssh(lab, "node2", f"test -e {path}").returncode == 1, path
        assert not Path(path).exists(), path
    # The node's changes are in its own layers, in the lab directory.
    node1 = state_home / "nodes" / "node1"
    assert (node1 / "home.upper" / home_user.name / name).read_text() == "mine\n"
    assert (node1 / "root.upper" / name).read_text() == "mine\n"
    # `down` still finds what a session left behind in the node's namespace.
    left = ssh(lab, "node2", "setsid sleep 303 </dev/null >/dev/null 2>&1 & echo $!")
    orphan = int(left.stdout)
    assert running(orphan)
    down()
    assert not running(orphan)


@pytest.mark.lab
@needs_root
def test_the_stand_ins_directory_may_be_under_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every node has its own /tmp: the lab binds the host's directory into each node.
    bin_dir = tmp_path / "standins" / "bin"
    bin_dir.mkdir(parents=True)
    tool = bin_dir / "kubeadm"
    tool.write_text('#!/bin/sh\necho "stand-in kubeadm $*"\n')
    tool.chmod(0o755)
    lab_dir = tmp_path / "lab"
    monkeypatch.setenv("BASTION_LAB_PATH_PREFIX", str(bin_dir))
    try:
        lab = up(1, subnet=SUBNET, lab_dir=lab_dir)
        plain = ssh(lab, "node1", "kubeadm version; sudo -n kubeadm version")
        assert plain.returncode == 0, plain.stderr
        assert plain.stdout == "stand-in kubeadm version\nstand-in kubeadm version\n"
        # Only that directory: the rest of the host's /tmp stays out of the node's.
        (tmp_path / "host-only").touch()
        assert ssh(lab, "node1", f"test -e {tmp_path / 'host-only'}").returncode == 1
    finally:
        down(lab_dir)
    assert processes_mentioning(lab_dir) == []


@pytest.mark.lab
@needs_root
def test_a_missing_stand_ins_directory_is_refused_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_LAB_PATH_PREFIX", str(tmp_path / "absent"))
    try:
        with pytest.raises(UsageError, match="no such directory"):
            up(1, subnet=SUBNET, lab_dir=tmp_path / "lab")
        assert processes_mentioning(tmp_path) == []
    finally:
        down(tmp_path / "lab")


MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:25 / /tmp rw,nosuid shared:5 - tmpfs tmpfs rw
41 22 0:40 / /var/lib/docker/overlay2/x/merged rw - overlay overlay rw,lowerdir=/a
50 22 0:51 / /home rw - nfs4 server:/home rw
"""


@pytest.mark.parametrize(
    ("lab_dir", "fstype", "refused"),
    [
        ("/root/.local/state/bastion/lab", "ext4", False),
        ("/tmp/lab", "tmpfs", False),
        ("/var/lib/docker/overlay2/x/merged/root/lab", "overlay", True),
        ("/home/ann/.local/state/bastion/lab", "nfs4", True),
    ],
)
def test_a_lab_dir_overlayfs_cannot_use_is_named_before_anything_starts(
    lab_dir: str, fstype: str, refused: bool
) -> None:
    assert filesystem_of(Path(lab_dir), MOUNTINFO) == fstype
    problem = upper_layer_problem(Path(lab_dir), MOUNTINFO)
    assert (problem is not None) is refused
    if problem:
        assert f"{lab_dir} is on {fstype}" in problem and "BASTION_LAB_DIR" in problem
