"""The newcomer path, walked as a newcomer: a fresh clone under /tmp, the README's first command.

`git clone` of this checkout's HEAD into a new directory under /tmp, then the first command of
the README (`make demo`: system packages, .venv, pip install, a 3-node lab, a run on every
node), with nothing of this test run's environment: the default state directory of the user
who runs it. Once as root (the root-mode lab, then the clone's own kube tests, whose stand-ins
must be reachable from a checkout under /tmp), once as a freshly created non-root user
(`bst-lab-newcomer`, the user-mode lab). Run as a non-root user, the second runs as that user.

`make demo` honours BASTION_LAB_SUBNET (the command typed stays the same), so the root lab
uses 127.$BASTION_TEST_NET.11 and never meets a user's lab on 127.0.1; a lab already recorded
in the default state directory is someone's: the test then skips rather than touch it.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_NET
from tests.lab_accounts import fresh_user, remove_user
from tests.test_lab import processes_mentioning
from tests.test_readme import shell_blocks

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]

NEWCOMER_USER = "bst-lab-newcomer"
SUBNET = f"127.{TEST_NET}.11"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
USER_PATH = "/usr/local/bin:/usr/bin:/bin"
"""A normal user's PATH (Debian's /etc/profile): no sbin, where sshd lives."""
# pip's own settings (a mirror, a wheel directory, a proxy) are the machine's, not the test's.
_PASSED_THROUGH = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY")


def first_command() -> list[str]:
    """The README's first command, as a newcomer would type it."""
    return shlex.split(shell_blocks()[0][0])


@dataclass(frozen=True)
class Newcomer:
    """Someone with a fresh clone: runs commands in it as themselves, with a login's environment."""

    account: pwd.struct_passwd
    clone: Path

    @property
    def home(self) -> Path:
        return Path(self.account.pw_dir)

    @property
    def lab_dir(self) -> Path:
        """The default state directory's lab (no XDG_STATE_HOME, no BASTION_LAB_DIR)."""
        return self.home / ".local" / "state" / "bastion" / "lab"

    def environment(self) -> dict[str, str]:
        root = self.account.pw_uid == 0
        env = {
            "HOME": str(self.home),
            "USER": self.account.pw_name,
            "LOGNAME": self.account.pw_name,
            "PATH": SYSTEM_PATH if root else USER_PATH,
            "LANG": "C.UTF-8",
            "BASTION_LAB_SUBNET": SUBNET,
        }
        passed = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
        passed |= {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
        return passed | env

    def run(
        self, argv: list[str], *, timeout: float, extra: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = self.environment() | dict(extra or {})
        if self.account.pw_uid != os.geteuid():
            pairs = [f"{k}={v}" for k, v in env.items()]
            argv = ["runuser", "-u", self.account.pw_name, "--", "env", "-i", *pairs, *argv]
            env = {"PATH": SYSTEM_PATH}
        return subprocess.run(
            argv,
            cwd=self.clone,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


GIT_CLONE = ("git", "-c", "safe.directory=*", "clone", "--quiet", "--no-hardlinks")


def clone_head(parent: Path) -> Path:
    """A clone of this checkout's HEAD (committed work only), sharing no file with it."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout to clone")
    clone = parent / "bastion"
    # The checkout may belong to another user than the one running the tests (CI as root).
    cloned = subprocess.run(
        [*GIT_CLONE, str(REPO), str(clone)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cloned.returncode == 0, cloned.stderr
    return clone


def refuse_to_touch_a_users_lab(newcomer: Newcomer) -> None:
    if (newcomer.lab_dir / "state.json").exists():
        pytest.skip(f"a lab is recorded in {newcomer.lab_dir}: not touching someone's lab")


@pytest.fixture
def root_newcomer() -> Iterator[Newcomer]:
    if os.geteuid() != 0:
        pytest.skip("the root-mode lab needs root")
    parent = Path(tempfile.mkdtemp(prefix="bst-lab-newcomer-", dir="/tmp"))
    newcomer = Newcomer(pwd.getpwuid(0), parent / "bastion")
    had_lab_dir = newcomer.lab_dir.exists()
    try:
        refuse_to_touch_a_users_lab(newcomer)
        clone_head(parent)
        try:
            yield newcomer
        finally:
            _bring_down(newcomer)
            if not had_lab_dir:  # only its keys are left: they were this test's
                shutil.rmtree(newcomer.lab_dir, ignore_errors=True)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def user_newcomer() -> Iterator[Newcomer]:
    """A freshly created user (as root), or the user running the tests (without root)."""
    created = os.geteuid() == 0
    account = fresh_user(NEWCOMER_USER) if created else pwd.getpwuid(os.geteuid())
    parent = Path(tempfile.mkdtemp(prefix="bst-lab-newcomer-", dir="/tmp"))
    try:
        newcomer = Newcomer(account, parent / "bastion")
        refuse_to_touch_a_users_lab(newcomer)
        clone_head(parent)
        if created:
            subprocess.run(
                ["chown", "-R", f"{account.pw_uid}:{account.pw_gid}", str(parent)], check=True
            )
        try:
            yield newcomer
        finally:
            _bring_down(newcomer)
    finally:
        if created:
            remove_user(NEWCOMER_USER)
        shutil.rmtree(parent, ignore_errors=True)


def _bring_down(newcomer: Newcomer) -> None:
    bastion = newcomer.clone / ".venv" / "bin" / "bastion"
    if bastion.exists():
        down = newcomer.run([str(bastion), "lab", "down"], timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
    assert processes_mentioning(newcomer.lab_dir) == []


def assert_demo_ran_on_three_nodes(
    demo: subprocess.CompletedProcess[str], hostnames: list[str]
) -> None:
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output[-4000:]
    assert "bastion: 3 hosts in" in demo.stderr, output[-4000:]
    assert "3 ok" in demo.stderr
    for node, hostname in zip(("node1", "node2", "node3"), hostnames, strict=True):
        assert f"{node}: {hostname}\n" in demo.stdout, demo.stdout


def test_the_readme_first_command_in_a_fresh_clone_as_root(root_newcomer: Newcomer) -> None:
    demo = root_newcomer.run(first_command(), timeout=600)
    assert_demo_ran_on_three_nodes(demo, ["node1", "node2", "node3"])
    assert (root_newcomer.lab_dir / "state.json").exists()
    # The clone's own kube tests, from a checkout under /tmp: their stand-ins must reach the
    # nodes (each has its own /tmp).
    kube = root_newcomer.run(
        [
            ".venv/bin/pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_kube_playbooks.py",
            "-k",
            "standins_come_first",
        ],
        timeout=300,
        extra={"BASTION_TEST_NET": TEST_NET},
    )
    assert kube.returncode == 0, kube.stdout[-4000:] + kube.stderr[-2000:]
    assert "1 passed" in kube.stdout


def test_the_readme_first_command_in_a_fresh_clone_as_a_new_user(
    user_newcomer: Newcomer,
) -> None:
    assert user_newcomer.account.pw_uid != 0
    demo = user_newcomer.run(first_command(), timeout=600)
    # User mode: one sshd per node on 127.0.0.1, all with this machine's hostname.
    assert_demo_ran_on_three_nodes(demo, [socket.gethostname()] * 3)
    state = json.loads((user_newcomer.lab_dir / "state.json").read_text())
    assert state["mode"] == "user"


def test_a_lab_recorded_in_the_default_state_directory_is_left_alone(tmp_path: Path) -> None:
    someone = pwd.struct_passwd(("ann", "x", 4242, 4242, "", str(tmp_path), "/bin/sh"))
    newcomer = Newcomer(someone, tmp_path / "clone")
    assert newcomer.lab_dir == tmp_path / ".local" / "state" / "bastion" / "lab"
    newcomer.lab_dir.mkdir(parents=True)
    (newcomer.lab_dir / "state.json").write_text("{}")
    with pytest.raises(pytest.skip.Exception, match="not touching someone's lab"):
        refuse_to_touch_a_users_lab(newcomer)
    assert not newcomer.clone.exists()
