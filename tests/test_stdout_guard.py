"""A closed stdout never stops a command (cli/stdout_guard.py), through a real pipe."""

from __future__ import annotations

import subprocess
import sys

from bastion.cli.stdout_guard import GuardedStdout

WRITE_AFTER_THE_READER_LEFT = """
import os, sys
from bastion.cli import stdout_guard
stdout_guard.install()
sys.stdout.write("first\\n"); sys.stdout.flush()
sys.stdin.readline()  # the test closes its end of the pipe, then says go
for n in range(10000):
    print("line", n)
sys.stdout.flush()
print("closed early:", stdout_guard.closed_early(), file=sys.stderr)
"""


def test_writes_after_the_reader_left_go_to_dev_null_and_the_program_goes_on() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", WRITE_AFTER_THE_READER_LEFT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    assert process.stdout.readline() == "first\n"
    process.stdout.close()  # `| head -1`
    _, err = process.communicate("go\n", timeout=60)
    assert process.returncode == 0, err
    assert err == "closed early: True\n"


def test_a_stream_without_a_descriptor_is_guarded_too() -> None:
    class Broken:
        def write(self, text: str) -> int:
            raise BrokenPipeError

        def flush(self) -> None:
            raise BrokenPipeError

        def fileno(self) -> int:
            raise OSError("no descriptor")

    guard = GuardedStdout(Broken())  # type: ignore[arg-type]
    assert guard.write("x") == 1
    guard.flush()
    assert guard.closed_early
    assert guard.write("more") == 4  # later writes are not even tried
