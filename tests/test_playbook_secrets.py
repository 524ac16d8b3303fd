"""Secret delivery's pure parts (issue 11 item 7); the process-table scan is in
tests/test_play_lab.py (test_secrets_never_reach_a_process_table_or_a_file_left_behind)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bastion.playbook.model import Text
from bastion.playbook.secret_delivery import STAGE, launcher, staged_body, stdin_form
from bastion.playbook.template import Masker, render

SECRET = 's3cr\'et "value" $x'


@pytest.mark.parametrize(
    "source",
    [
        "echo {{ s }}",
        "echo 'a {{ s }} b'",
        'echo "a {{ s }} b"',
        "cat <<EOF\n{{ s }}\nEOF",
        "echo {{ 'Bearer ' ~ s }}",
        "echo \"{{ 'Bearer ' ~ s ~ '!' }}\"",
        "echo {{ s | raw }}",
    ],
)
def test_a_secret_is_seen_in_a_command_whatever_its_quoting(source: str) -> None:
    command = render(Text(source, 1), {"s": SECRET}, Path("b.yaml"), quoted=True)
    assert Masker([SECRET]).reveals(command), command
    assert not Masker(["other-secret"]).reveals(command)


def test_a_command_on_stdin_runs_as_under_sh_c_and_its_commands_read_end_of_file() -> None:
    text, stdin = stdin_form('read -r line || echo eof; echo "$0 ran"', sudo=False)
    assert text == 'exec "${SHELL:-/bin/sh}" -s'
    done = subprocess.run(
        ["sh", "-c", text], input=stdin, capture_output=True, env={"SHELL": "/bin/sh"}, check=True
    )
    assert done.stdout == b"eof\n/bin/sh ran\n"
    assert stdin_form("true", sudo=True)[0] == "sudo -n -- sh -s"


def test_a_staged_script_is_0600_and_removes_itself(tmp_path: Path) -> None:
    staged = subprocess.run(
        ["sh", "-c", STAGE],
        input=staged_body("echo staged"),
        capture_output=True,
        env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    path = Path(staged.stdout.decode().strip())
    assert path.parent == tmp_path
    assert path.stat().st_mode & 0o777 == 0o600
    ran = subprocess.run(
        ["sh", "-c", launcher(str(path), sudo=False)], capture_output=True, check=True
    )
    assert ran.stdout == b"staged\n"
    assert not path.exists()
