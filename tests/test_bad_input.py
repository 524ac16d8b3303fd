"""Every minimised bad input of tests/data/bad-input/, through the real command line.

Each file is handed to the CLI entry point that reads it (``-i``, ``play``, ``-e @file``,
``audit --access``), as a user would type it. Whatever the file, bastion must answer with
exactly one ``bastion: error:`` line and exit 2: no traceback, within 10 s of CPU and 512 MiB
of address space (the billion-laughs files took 18 s and 1.1 GB before the safe loader).
The inventory's only host is on loopback at a closed port, and every file is refused before
any host would be contacted.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "data" / "bad-input"
CPU_SECONDS = 10
ADDRESS_SPACE = 512 * 1024 * 1024
SPECIAL = ("/dev/zero", "FIFO", "DIRECTORY")
"""Non-regular files, made per test (a FIFO cannot live in git)."""


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _corpus(kind: str) -> list[str]:
    return [*sorted(p.name for p in (CORPUS / kind).iterdir()), *SPECIAL]


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    net = os.environ.get("BASTION_TEST_NET", "1")
    (tmp_path / "inventory.yaml").write_text(
        f"hosts:\n  n1: {{address: 127.{net}.9.9, port: 1, connect_timeout: 1}}\n"
    )
    (tmp_path / "play.yaml").write_text(
        "name: ok\nhosts: --all\nsteps:\n  - {name: a, run: \"echo {{ k | default('') }}\"}\n"
    )
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "directory.yaml").mkdir()
    yield tmp_path


def _target(kind: str, name: str, workdir: Path) -> str:
    if name == "/dev/zero":
        return name
    if name in SPECIAL:
        return str(workdir / f"{name.lower()}.yaml")
    return str(CORPUS / kind / name)


def _bastion(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BASTION_HISTORY_FILE": str(workdir / "history.jsonl")}
    env.pop("BASTION_INVENTORY", None)
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limits,  # the child sets its own limits before exec
        check=False,
    )


def _assert_one_line_error(result: subprocess.CompletedProcess[str], named: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("bastion: error: "), lines[0]
    assert named in lines[0] or "/dev/zero" in lines[0], lines[0]
    assert len(lines[0]) < 400, f"message not cut: {len(lines[0])} characters"
    assert result.returncode == 2, (result.returncode, lines[0])
    assert result.stdout == ""


@pytest.mark.parametrize("name", _corpus("inventory"))
def test_bad_inventory(workdir: Path, name: str) -> None:
    target = _target("inventory", name, workdir)
    result = _bastion(workdir, "inventory", "list", "-i", target)
    _assert_one_line_error(result, Path(target).name)


@pytest.mark.parametrize("name", _corpus("playbook"))
def test_bad_playbook(workdir: Path, name: str) -> None:
    target = _target("playbook", name, workdir)
    result = _bastion(workdir, "play", target, "-i", "inventory.yaml", "--check")
    _assert_one_line_error(result, Path(target).name)


@pytest.mark.parametrize("name", _corpus("extra-vars"))
def test_bad_extra_vars_file(workdir: Path, name: str) -> None:
    target = _target("extra-vars", name, workdir)
    result = _bastion(
        workdir, "play", "play.yaml", "-i", "inventory.yaml", "--check", "-e", f"@{target}"
    )
    _assert_one_line_error(result, Path(target).name)


@pytest.mark.parametrize("name", _corpus("access"))
def test_bad_access_list(workdir: Path, name: str) -> None:
    target = _target("access", name, workdir)
    result = _bastion(workdir, "audit", "-i", "inventory.yaml", "--access", target)
    _assert_one_line_error(result, Path(target).name)


ENTRY_POINTS = {
    "run": ["run", "-i", "{}", "--all", "true"],
    "play": ["play", "play.yaml", "-i", "{}", "--check"],
    "audit": ["audit", "-i", "{}"],
    "copy": ["copy", "-i", "{}", "--all", "play.yaml", "/tmp/x"],
}


@pytest.mark.parametrize("command", sorted(ENTRY_POINTS))
@pytest.mark.parametrize(
    "name", ["billion-laughs.yaml", "nested-1000.yaml", "ansible-ini-range-bomb.ini", "/dev/zero"]
)
def test_every_entry_point_refuses_a_bad_inventory_alike(
    workdir: Path, command: str, name: str
) -> None:
    """`-i` reads through the same loader for every command: the same one line, exit 2."""
    target = _target("inventory", name, workdir)
    args = [arg.format(target) for arg in ENTRY_POINTS[command]]
    result = _bastion(workdir, *args)
    _assert_one_line_error(result, Path(target).name)
    listed = _bastion(workdir, "inventory", "list", "-i", target)
    assert result.stderr == listed.stderr
