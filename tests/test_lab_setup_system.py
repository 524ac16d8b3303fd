"""scripts/setup-system installs every system program the lab, the tests and `make` run.

CI (.ci/run) starts from a fresh Debian machine and relies on `make test` running
scripts/setup-system, so each program the tests call must come from a package in its list or
from an Essential package (always there). dpkg itself is the oracle: `dpkg-query -S` names the
package that owns each program found here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bastion.lab.tools import FALLBACK_DIRS
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(
    shutil.which("dpkg-query") is None, reason="not a Debian/Ubuntu host (no dpkg-query)"
)

SETUP = REPO / "scripts" / "setup-system"

PROGRAMS = (
    *("sshd", "ssh", "ssh-keygen", "ssh-add", "ssh-agent"),  # the lab, and the tests' oracle
    *("unshare", "mount", "setsid", "setpriv", "runuser"),  # root-mode nodes, other users
    *("iptables", "sudo", "tmux", "mosh", "mosh-server"),  # faults, sudo, terminals, mosh
    *("pdsh", "parallel-ssh", "clush", "shellcheck", "chromium"),  # peers, lint, HTML report
    *("git", "useradd", "userdel", "pkill", "pgrep", "ss", "openssl", "make"),
)
# Files rather than programs: `python3 -m venv` (make setup) and the kube stand-ins' yaml.
FILES = ("/usr/lib/python3/dist-packages/yaml/__init__.py",)


def listed_packages() -> set[str]:
    """The packages scripts/setup-system installs, and those .ci/run installs before it."""
    words: set[str] = set()
    for line in re.findall(r'^packages="([^"]*)"', SETUP.read_text(), flags=re.M):
        words |= {w for w in line.split() if not w.startswith("$")}
    for line in re.findall(r"apt-get install -y -qq ([^;}]+)", (REPO / ".ci" / "run").read_text()):
        words |= set(line.split())
    return words


def owner(path: str) -> str:
    """The package owning ``path`` (dpkg may know it under / rather than /usr: usrmerge)."""
    real = os.path.realpath(path)
    candidates = dict.fromkeys([real, real.removeprefix("/usr"), path, path.removeprefix("/usr")])
    for candidate in candidates:
        done = subprocess.run(
            ["dpkg-query", "-S", candidate], capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            return done.stdout.split(":")[0].split(",")[0].strip()
    raise AssertionError(f"{path}: no package owns it")


def essential(package: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Essential}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() == "yes"


def find(program: str) -> str | None:
    found = shutil.which(program)
    if found:
        return found
    for directory in FALLBACK_DIRS:
        candidate = Path(directory) / program
        if candidate.exists():
            return str(candidate)
    return None


def test_every_program_the_tests_run_comes_from_setup_system_or_an_essential_package() -> None:
    listed = listed_packages()
    assert {"openssh-server", "git", "python3-venv"} <= listed
    missing, unlisted = [], []
    for path in [*(find(p) or p for p in PROGRAMS), *FILES]:
        if not os.path.exists(path):
            missing.append(path)
            continue
        package = owner(path)
        if package not in listed and not essential(package):
            unlisted.append(f"{path} ({package})")
    assert unlisted == [], f"add to scripts/setup-system: {unlisted}"
    if missing and os.geteuid() == 0:
        pytest.fail(f"not installed (run scripts/setup-system): {missing}")


def test_make_setup_can_make_a_venv() -> None:
    # Debian splits ensurepip out of python3: without python3-venv, `python3 -m venv` fails.
    assert "python3-venv" in listed_packages()
    done = subprocess.run(
        ["python3", "-c", "import ensurepip"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
