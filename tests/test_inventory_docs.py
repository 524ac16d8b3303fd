"""docs/inventory.md and docs/limits.md stay true: commands run, limits are the code's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from bastion.document_file import MAX_DOCUMENT_BYTES
from bastion.formats.ansible_ranges import MAX_HOSTS
from bastion.formats.ansible_vars_dirs import MAX_FILES
from bastion.located_yaml import MAX_ALIASES, MAX_DEPTH, MAX_TEXT, MAX_VALUES
from bastion.yaml_core import MAX_INTEGER_DIGITS

REPO = Path(__file__).resolve().parent.parent
INVENTORY_DOC = (REPO / "docs" / "inventory.md").read_text()
LIMITS_DOC = (REPO / "docs" / "limits.md").read_text()
SECTION = INVENTORY_DOC.split("## Inventories you already have", 1)[1].split(
    "## Which inventory", 1
)[0]


def test_the_formats_section_commands_run(tmp_path: Path) -> None:
    """Every ``$ bastion inventory ...`` line of the section, as written, in a fresh directory
    where ``tests/`` is the checkout's (they read files and contact nothing)."""
    (tmp_path / "tests").symlink_to(REPO / "tests")
    commands = [line[2:] for line in SECTION.splitlines() if line.startswith("$ ")]
    assert len(commands) >= 6
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for command in commands:
        if (
            command.startswith("ansible-inventory")
            and not (Path(sys.executable).parent / "ansible-inventory").exists()
        ):
            continue
        env["ANSIBLE_HOME"] = str(tmp_path / "ansible")
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        # `| head` may close the pipe early: 141 is SIGPIPE, as in any shell.
        assert result.returncode in (0, 141), (command, result.stderr)
        assert "Traceback" not in result.stderr
    assert (tmp_path / "kubespray.yaml").stat().st_mode & 0o777 == 0o600


def test_dev_zero_example_is_real() -> None:
    shown = re.search(r"\$ bastion inventory list -i /dev/zero\n(.*)\n", LIMITS_DOC)
    assert shown is not None
    result = subprocess.run(
        [sys.executable, "-m", "bastion", "inventory", "list", "-i", "/dev/zero"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stderr.strip()) == (2, shown.group(1))


def test_limits_table_is_the_code() -> None:
    mib = 1024 * 1024
    for row, value in [
        ("| size of one file |", f"{MAX_DOCUMENT_BYTES // mib} MiB"),
        ("| nesting |", f"{MAX_DEPTH} levels"),
        ("| aliases (`*name`) |", f"{MAX_ALIASES:,} per document"),
        ("| values, aliases expanded |", f"{MAX_VALUES:,} keys"),
        ("| text, aliases expanded |", f"{MAX_TEXT // mib} MiB"),
        ("| integer literals |", f"{MAX_INTEGER_DIGITS} digits"),
        ("| hosts of one Ansible range pattern", f"{MAX_HOSTS:,}"),
        ("| vars files", f"{MAX_FILES:,}"),
    ]:
        line = next(line for line in LIMITS_DOC.splitlines() if line.startswith(row))
        assert value in line, (row, value)
