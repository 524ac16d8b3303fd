"""Shared fixtures: a real OpenSSH lab for integration tests, and a way to run the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """A 3-node lab of real sshd on 127.0.3.1-3 for the whole session, torn down at the end."""
    reason = lab_available()
    if reason:
        pytest.fail(f"integration tests need the lab: {reason}")
    tmp = tmp_path_factory.mktemp("lab")
    cli = Cli(cli_env(tmp, tmp / "lab"), cwd=tmp)
    up = cli("lab", "up", "--nodes", "3", "--subnet", LAB_SUBNET, timeout=120)
    assert up.returncode == 0, up.stderr
    try:
        yield cli
    finally:
        down = cli("lab", "down", timeout=120)
        assert down.returncode == 0, down.stderr


def is_root() -> bool:
    return os.geteuid() == 0
