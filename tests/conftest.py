"""Shared fixtures: a real OpenSSH lab for integration tests, and a way to run the CLI."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BASTION = [sys.executable, "-m", "bastion"]
TEST_NET = os.environ.get("BASTION_TEST_NET", "0")
"""Second octet of every test lab's addresses, so test runs in several checkouts never collide."""
LAB_SUBNET = f"127.{TEST_NET}.3"
"""The integration lab's addresses; distinct from a user's lab (127.0.1) and other test labs."""
README_SUBNET = f"127.{TEST_NET}.4"
LAB_UNIT_SUBNET = f"127.{TEST_NET}.9"
# Runs in this process (and the commands tests start from its environment) start no bastion
# agent on their own (warm by default, docs/agent.md); the tests of that set it themselves.
os.environ["BASTION_PERSIST"] = "off"


@dataclass(frozen=True)
class Cli:
    """Runs ``bastion`` as a user would, in an environment pointing at a private lab."""

    env: dict[str, str]
    cwd: Path

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*BASTION, *args],
            env=self.env,
            cwd=self.cwd,
            input=input,
            # bastion run reads a stdin that is not a terminal: give it an empty one, not ours.
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def is_root() -> bool:
    return os.geteuid() == 0


def lab_nodes(cli: Cli) -> dict[str, tuple[str, int]]:
    """Each node of ``cli``'s lab: (address, port), from the lab's state file."""
    state = json.loads((Path(cli.env["BASTION_LAB_DIR"]) / "state.json").read_text())
    return {node["name"]: (node["address"], node["port"]) for node in state["nodes"]}


def known_hosts_name(address: str, port: int) -> str:
    """How known_hosts names a server: ``address``, or ``[address]:port`` off port 22."""
    return address if port == 22 else f"[{address}]:{port}"


def lab_login() -> str:
    """The user the lab's inventory logs in as: root, or in user mode the current user."""
    return "root" if is_root() else pwd.getpwuid(os.geteuid()).pw_name


def lab_address(node: int) -> str:
    """The address of the integration lab's node ``node``: its own as root, else 127.0.0.1."""
    return f"{LAB_SUBNET}.{node}" if is_root() else "127.0.0.1"


def lab_hostname(node: str) -> str:
    """What ``hostname`` prints on a lab node: its name as root, this host's in user mode."""
    return node if is_root() else socket.gethostname()


def user_mode_terminal_problem() -> str | None:
    """Why a user-mode lab node cannot give a session a terminal on this host, or None.

    sshd hands a session's pty to the tty group (OpenSSH's pty_setowner) and ends the session
    when that chown fails ("chown(/dev/pts/0, 1000, 5) failed"). A non-root sshd cannot chown,
    so it only works where devpts already gives new ptys that group (mount option gid=5, as
    on a standard Debian host).
    """
    if is_root():
        return None
    try:
        tty_gid = grp.getgrnam("tty").gr_gid
    except KeyError:
        return None  # no tty group: sshd keeps the user's own group
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[1] == "/dev/pts" and fields[2] == "devpts":
            if f"gid={tty_gid}" in fields[3].split(","):
                return None
            return (
                "a user-mode sshd cannot open terminals here: /dev/pts is mounted without "
                f"gid={tty_gid} (tty), and only root may chown a pty to that group"
            )
    return None


def cli_env(tmp: Path, lab_dir: Path) -> dict[str, str]:
    """An environment with private state, history and lab directories, and no colour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update(
        {
            "BASTION_LAB_DIR": str(lab_dir),
            "XDG_STATE_HOME": str(tmp / "state"),
            "BASTION_HISTORY_FILE": str(tmp / "state" / "history.jsonl"),
            "NO_COLOR": "1",
            "PYTHONPATH": str(REPO),
            # No bastion agent of the user's (docs/agent.md) serves the tests' runs.
            "XDG_RUNTIME_DIR": str(tmp / "run"),
            # ... and no run starts one on its own (warm by default), unless a test says so.
            "BASTION_PERSIST": "off",
        }
    )
    return env


def lab_available() -> str | None:
    """Why the real-sshd lab cannot run here, or None when it can."""
    if not (shutil.which("sshd") or Path("/usr/sbin/sshd").exists()):
        return "sshd is not installed (apt-get install openssh-server)"
    return None


USER_LABS = Path.home() / ".cache" / "bastion-test-labs"
"""Where the user-mode labs of a non-root test run live (removed when the session ends)."""
_user_labs: list[Path] = []


def lab_dir_for(tmp: Path) -> Path:
    """The lab directory for a test whose scratch directory is ``tmp``.

    As root, ``tmp/lab``. Without root the lab runs in user mode, where sshd's StrictModes
    refuses an authorized_keys file below a world-writable directory such as /tmp (pytest's
    tmp_path is there), so the lab lives under the home instead: ~/.cache/bastion-test-labs/.
    """
    if is_root():
        return tmp / "lab"
    USER_LABS.mkdir(mode=0o700, parents=True, exist_ok=True)
    parent = Path(tempfile.mkdtemp(prefix=f"{tmp.name}-", dir=USER_LABS))
    _user_labs.append(parent)
    return parent / "lab"


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Remove the user-mode labs' directories (their nodes were stopped by their fixtures)."""
    for parent in _user_labs:
        shutil.rmtree(parent, ignore_errors=True)


def skip_unless_strict_modes_allow(up: subprocess.CompletedProcess[str]) -> None:
    """Skip, saying why, when a user-mode lab is refused because of where this home is."""
    if not is_root() and up.returncode != 0 and "StrictModes" in up.stderr:
        pytest.skip(up.stderr.strip().removeprefix("bastion: error: "))


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """A 3-node lab of real sshd for the whole session, torn down at the end.

    As root on 127.$BASTION_TEST_NET.3.1-3, port 22; otherwise in user mode (127.0.0.1, one
    high port per node; docs/lab.md).
    """
    reason = lab_available()
    if reason:
        pytest.fail(f"integration tests need the lab: {reason}")
    tmp = tmp_path_factory.mktemp("lab")
    cli = Cli(cli_env(tmp, lab_dir_for(tmp)), cwd=tmp)
    up = cli("lab", "up", "--nodes", "3", "--subnet", LAB_SUBNET, timeout=120)
    skip_unless_strict_modes_allow(up)
    assert up.returncode == 0, up.stderr
    try:
        yield cli
    finally:
        down = cli("lab", "down", timeout=120)
        assert down.returncode == 0, down.stderr
