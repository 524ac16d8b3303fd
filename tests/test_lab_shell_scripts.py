"""Every shell script bastion ships or runs is checked by shellcheck, as POSIX sh.

The scripts that run on nodes or on the bastion (package data: the audit probe, the durable
job wrapper, the lab's node launcher), the playbooks' scripts, and the repository's own
(scripts/setup-system, .ci/run). A script that is only a string in Python escapes this, so
each shipped one is a file, named in pyproject's package-data.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from bastion.lab.sshd import LAUNCHER_NAME, namespace_launcher
from tests.conftest import REPO

PACKAGE = REPO / "bastion"


def package_scripts() -> list[Path]:
    return sorted(PACKAGE.rglob("*.sh"))


def shipped_scripts() -> list[Path]:
    """Every shell script of the package, the playbooks and the repository."""
    return [
        *package_scripts(),
        *sorted((REPO / "playbooks").rglob("*.sh")),
        REPO / "scripts" / "setup-system",
        REPO / ".ci" / "run",
    ]


def test_every_script_of_the_package_is_package_data() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    data = set(pyproject["tool"]["setuptools"]["package-data"]["bastion"])
    found = {str(path.relative_to(PACKAGE)) for path in package_scripts()}
    assert {"audit/probe.sh", "durable/wrapper.sh", "lab/node_launcher.sh"} <= found
    assert found <= data, f"not shipped: {sorted(found - data)}"


def test_the_lab_runs_the_launcher_file_it_ships() -> None:
    assert namespace_launcher() == (PACKAGE / "lab" / LAUNCHER_NAME).read_text()
    # A POSIX sh script: the nodes' launcher runs under /bin/sh (dash on Debian).
    assert namespace_launcher().startswith("#!/bin/sh\n")
    sources = "\n".join(p.read_text() for p in (PACKAGE / "lab").glob("*.py"))
    assert not re.search(r'"""\s*\n\s*set -eu', sources), "a shell script left in a string"


def test_every_shipped_script_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        if os.geteuid() != 0:
            pytest.skip("shellcheck is not installed (scripts/setup-system installs it as root)")
        pytest.fail("shellcheck is not installed (apt-get install shellcheck)")
    scripts = shipped_scripts()
    checked = subprocess.run(
        [shellcheck, "--shell=sh", "--severity=style", "--format=gcc", *map(str, scripts)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout


def test_shellcheck_would_catch_a_bad_script(tmp_path: Path) -> None:
    # The check above can fail: an unquoted expansion, as in a careless launcher.
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/bin/sh\nnode_dir=$1\nmount --bind /proc/self/fd/3 $node_dir\n")
    checked = subprocess.run(
        ["shellcheck", "--shell=sh", str(bad)], capture_output=True, check=False
    )
    assert checked.returncode != 0
