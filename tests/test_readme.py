"""The README is a working tutorial: every command in it is run here."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import README_SUBNET, REPO, cli_env, is_root, lab_dir_for

pytestmark = pytest.mark.lab

README = (REPO / "README.md").read_text()


def shell_blocks() -> list[list[str]]:
    """The commands of each ```sh block, comments stripped."""
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    return [
        [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
        for block in blocks
    ]


ROOT_LAB_ONLY = "(root lab only)"
"""A README comment marking a command a user-mode lab cannot do (the nodes have no sudo)."""


def root_lab_only() -> set[str]:
    """The README commands marked ``(root lab only)``."""
    marked = re.findall(r"^(bastion [^#\n]*?)\s+#.*" + re.escape(ROOT_LAB_ONLY), README, flags=re.M)
    return {line.strip() for line in marked}


def test_readme_has_the_two_commands_first() -> None:
    assert shell_blocks()[0] == ["make demo", "make test"]


def test_the_root_only_marks_name_readme_commands() -> None:
    assert "bastion access apply -i lab --access access.yaml --check" in root_lab_only()


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M)
    plan = subprocess.run(
        ["make", "-n", "-W", "pyproject.toml", "test"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for step in ("scripts/setup-system", "ruff check", "ruff format --check", "mypy", "pytest"):
        assert step in plan, f"`make test` does not run {step}"


def test_make_demo_then_every_readme_command(tmp_path: Path) -> None:
    lab_dir = lab_dir_for(tmp_path)
    env = cli_env(tmp_path, lab_dir)
    env["BASTION_LAB_SUBNET"] = README_SUBNET
    venv_bin = REPO / ".venv" / "bin"
    env["PATH"] = f"{venv_bin}{os.pathsep}{env['PATH']}"
    demo = subprocess.run(
        ["make", "demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "bastion: 3 hosts in" in demo.stderr
        for node in ("node1", "node2", "node3"):
            assert f"{node}: " in demo.stdout
        env["BASTION_INVENTORY"] = str(lab_dir / "inventory.yaml")
        # The tutorial runs in the checkout; here in a scratch copy of what it reads.
        shutil.copytree(REPO / "playbooks", tmp_path / "playbooks")
        lines = [line for block in shell_blocks()[1:] for line in block]
        commands = [line for line in lines if line.startswith("bastion ")]
        assert "bastion lab down" in commands
        # `lab down` is where the tutorial ends; the inventory example after it needs the lab.
        commands.sort(key=lambda line: line == "bastion lab down")
        failures = []
        for line in commands:
            done = subprocess.run(
                shlex.split(line),
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            if line in root_lab_only() and not is_root():
                # Refused with its reason on every host, never a traceback.
                if done.returncode == 0 or "Traceback" in done.stderr or "node3" not in done.stdout:
                    failures.append(f"{line} (user mode) -> {done.returncode}\n{done.stdout}")
            elif done.returncode != 0 or "Traceback" in done.stderr:
                failures.append(f"{line} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
        assert not failures, "\n".join(failures)
    finally:
        subprocess.run(
            [str(venv_bin / "bastion"), "lab", "down"],
            env=env,
            capture_output=True,
            check=False,
            timeout=120,
        )
