"""Shell completion (real bash runs the script) and the generated manual page (groff, man)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BASTION, REPO

INVENTORY = (
    "hosts:\n  node[1-3]: {address: '192.0.2.[1-3]'}\n  db1: {address: 192.0.2.9}\n"
    "groups:\n  workers: [node2, node3]\n  dbs: [db1]\n"
)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # `bastion` on PATH, as the installed console script is.
    launcher = bin_dir / "bastion"
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m bastion "$@"\n')
    launcher.chmod(0o755)
    return tmp_path


def env_for(workdir: Path) -> dict[str, str]:
    return {
        "PATH": f"{workdir / 'bin'}:/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "HOME": str(workdir),
        "BASTION_CONFIG": "none",
    }


def bash_complete(workdir: Path, *words: str) -> list[str]:
    script = subprocess.run(
        [*BASTION, "completion", "bash"], env=env_for(workdir), cwd=workdir,
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    (workdir / "completion.bash").write_text(script)
    quoted = " ".join(f"'{word}'" for word in words)
    probe = (
        f"source {workdir / 'completion.bash'}; COMP_WORDS=({quoted}); "
        f"COMP_CWORD={len(words) - 1}; _bastion_completion bastion; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(
        ["bash", "-c", probe], env=env_for(workdir), cwd=workdir,
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return [line for line in done.stdout.splitlines() if line]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (("bastion", "ru"), ["run"]),
        (("bastion", "run", "--connect-t"), ["--connect-timeout"]),
        (("bastion", "run", "-H", "no"), ["node1", "node2", "node3"]),
        (("bastion", "run", "-H", "@"), ["@workers", "@dbs"]),
        (("bastion", "run", "-x", "d"), ["db1"]),
        (("bastion", "copy", "-g", ""), ["workers", "dbs"]),
        (("bastion", "inventory", "list", "-g", "w"), ["workers"]),
    ],
)
def test_bash_completes_commands_options_hosts_and_groups(
    workdir: Path, words: tuple[str, ...], expected: list[str]
) -> None:
    assert bash_complete(workdir, *words) == expected


def test_a_broken_inventory_completes_nothing_and_says_nothing(workdir: Path) -> None:
    (workdir / "inventory.yaml").write_text("hosts: [")
    assert bash_complete(workdir, "bastion", "run", "-H", "n") == []


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_and_their_protocol(workdir: Path, shell: str) -> None:
    script = subprocess.run(
        [*BASTION, "completion", shell], env=env_for(workdir), cwd=workdir,
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"_BASTION_COMPLETE=complete_{shell}" in script
    extra = {"_TYPER_COMPLETE_FISH_ACTION": "get-args"} if shell == "fish" else {}
    done = subprocess.run(
        [*BASTION],
        env={**env_for(workdir), "_BASTION_COMPLETE": f"complete_{shell}",
             "_TYPER_COMPLETE_ARGS": "bastion run -H node", **extra},
        cwd=workdir, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    for name in ("node1", "node2", "node3"):
        assert name in done.stdout


def test_the_man_page_is_generated_from_the_commands_and_renders_cleanly(workdir: Path) -> None:
    page = subprocess.run(
        [*BASTION, "man"], env=env_for(workdir), cwd=workdir,
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    help_text = subprocess.run(
        [*BASTION, "run", "--help"], env={**env_for(workdir), "COLUMNS": "200"}, cwd=workdir,
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for option in ("--hosts", "--connect-timeout", "--out-dir", "--list-hosts", "--pick"):
        assert option in help_text
        assert option.replace("-", r"\-") in page
    for command in ("run", "copy", "fetch", "play", "facts", "audit", "lab up", "agent start"):
        assert f'.SS "bastion {command}"' in page
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed")
    lint = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z"], input=page, capture_output=True, text=True,
        env={**os.environ, "LC_ALL": "C.UTF-8"}, check=False,
    )  # fmt: skip
    assert lint.returncode == 0 and lint.stderr == ""
