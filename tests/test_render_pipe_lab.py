"""Output into a pipe is pdsh's ``host: line``, byte for byte: dshbak and clubak are the oracles.

The same outputs are written in pdsh's format from the JSON records (the exact text each host
sent) and both streams are given to ``dshbak -c``, ``clubak -b`` / ``-bL`` and
``cut -d: -f2- | sort | uniq -c``; what those tools print must not differ.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import LAB_SUBNET, Cli

pytestmark = pytest.mark.lab

NAMES = {"db1": 1, "frontend-web-02": 2, "node3": 3}
"""Host names of different lengths, on the lab's nodes: padding would show."""
COMMAND = (
    "set -- $SSH_CONNECTION; echo 'kernel 6.1.0'; echo 'a: b: c'; echo; "
    f'case "$3" in {LAB_SUBNET}.3) echo drifted;; *) echo same;; esac'
)


@pytest.fixture
def named(lab: Cli, tmp_path: Path) -> Path:
    """An inventory giving the lab's nodes names of different lengths."""
    lab_dir = Path(lab.env["BASTION_LAB_DIR"])
    hosts = "".join(f"  {name}: {{address: {LAB_SUBNET}.{n}}}\n" for name, n in NAMES.items())
    path = tmp_path / "named.yaml"
    path.write_text(
        f"defaults:\n  user: root\n  identity_file: {lab_dir / 'id_ed25519'}\n"
        f"  known_hosts: {lab_dir / 'known_hosts'}\nhosts:\n{hosts}"
    )
    return path


def pdsh_format(lab: Cli, inventory: Path) -> str:
    """What pdsh would print for the same run: ``host: line`` from each host's exact stdout."""
    done = lab("run", "-i", str(inventory), "--all", "-o", "json", COMMAND)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    return "".join(f"{r['host']}: {line}\n" for r in records for line in r["stdout"].splitlines())


def through(tool: list[str], text: str) -> str:
    return subprocess.run(tool, input=text, capture_output=True, text=True, check=True).stdout


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(
            f"{tool} is not installed (scripts/setup-system installs pdsh and clustershell)"
        )


def test_piped_inline_output_is_pdsh_format(lab: Cli, named: Path) -> None:
    need("dshbak")
    need("clubak")
    expected = pdsh_format(lab, named)
    done = lab("run", "-i", str(named), "--all", COMMAND)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == sorted(expected.splitlines())  # no padding
    assert "frontend-web-02: kernel 6.1.0\n" in done.stdout
    assert "db1: kernel 6.1.0\n" in done.stdout
    assert "db1: \n" in done.stdout  # pdsh's empty line: the colon and one space
    for tool in (["dshbak", "-c"], ["clubak", "-b", "-S", ": "]):
        assert through(tool, done.stdout) == through(tool, expected), tool
    counted = ["sh", "-c", "cut -d: -f2- | sort | uniq -c"]
    assert through(counted, done.stdout) == through(counted, expected)
    assert "      3  kernel 6.1.0\n" in through(counted, done.stdout)


def test_line_mode_is_clubak_bl(lab: Cli, named: Path) -> None:
    need("clubak")
    expected = through(["clubak", "-bL", "-S", ": "], pdsh_format(lab, named))
    for flags in (["-L"], ["-o", "lines"]):
        done = lab("run", "-i", str(named), "--all", *flags, COMMAND)
        assert done.returncode == 0, done.stderr
        assert done.stdout == expected, flags


def test_no_prefix_is_pdsh_n(lab: Cli, named: Path) -> None:
    expected = pdsh_format(lab, named)
    done = lab("run", "-i", str(named), "--all", "-N", COMMAND)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == sorted(
        line.split(": ", 1)[1] for line in expected.splitlines()
    )
    grouped = lab("run", "-i", str(named), "--all", "-o", "grouped", "-N", COMMAND)
    assert grouped.stdout == through(["clubak", "-bN", "-S", ": "], expected)


def test_diff_compares_with_the_majority_not_the_first_host(lab: Cli, tmp_path: Path) -> None:
    lab_dir = Path(lab.env["BASTION_LAB_DIR"])
    inventory = tmp_path / "drifted-first.yaml"
    inventory.write_text(  # the drifted node (127.x.3.3) comes first
        f"defaults:\n  user: root\n  identity_file: {lab_dir / 'id_ed25519'}\n"
        f"  known_hosts: {lab_dir / 'known_hosts'}\nhosts:\n"
        f"  aa: {{address: {LAB_SUBNET}.3}}\n  bb: {{address: {LAB_SUBNET}.1}}\n"
        f"  cc: {{address: {LAB_SUBNET}.2}}\n"
    )
    done = lab("run", "-i", str(inventory), "--all", "-o", "diff", COMMAND)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "--- bb,cc (2 of 3 hosts)\n"
        "+++ aa (1)\n"
        "@@ -1,4 +1,4 @@\n"
        " kernel 6.1.0\n"
        " a: b: c\n"
        " \n"
        "-same\n"
        "+drifted\n"
    )
