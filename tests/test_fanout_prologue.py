"""One fan-out prologue (issue 13 item 4): every command that fans out fits --forks to the
open-files limit, takes the shared connection flags, and stops cleanly on Ctrl-C and SIGTERM.

No SSH server is needed: the hosts are loopback addresses of this test's own where nothing
listens (connection refused at once), or a listener that accepts and never speaks.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import BASTION, TEST_NET, cli_env

REFUSING = f"127.{TEST_NET}.98"
HOSTS = 40
LIMIT = 50
"""RLIMIT_NOFILE for the child: 40 hosts at once need 40 + 32 descriptors, more than 50."""

LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv.pop(1)),) * 2)
sys.argv = ["bastion", *sys.argv[1:]]
from bastion.cli.main import entry
entry()
"""


def inventory(tmp_path: Path, addresses: list[str], port: int = 9) -> Path:
    path = tmp_path / "inventory.yaml"
    lines = [f"  h{n}: {{address: {address}, port: {port}}}" for n, address in enumerate(addresses)]
    path.write_text("defaults:\n  connect_timeout: 30\nhosts:\n" + "\n".join(lines) + "\n")
    return path


def limited(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LIMITED, str(LIMIT), *args],
        env=cli_env(tmp_path, tmp_path / "lab"),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--all", "--retries", "0", "true"],
        ["copy", "--all", "--retries", "0", "missing-source", "/tmp/x"],
        ["fetch", "--all", "--retries", "0", "/etc/hostname", "fetched"],
        ["audit"],
        ["jobs", "--all"],
        ["play", "PLAYBOOK"],
    ],
    ids=lambda c: c[0],
)
def test_every_fan_out_fits_its_forks_to_the_open_files_limit(
    tmp_path: Path, command: list[str]
) -> None:
    path = inventory(tmp_path, [f"{REFUSING}.{n}" for n in range(1, HOSTS + 1)])
    book = tmp_path / "book.yaml"
    book.write_text("name: b\nhosts: --all\nsteps:\n  - name: t\n    run: 'true'\n")
    args = [str(book) if word == "PLAYBOOK" else word for word in command]
    done = limited(tmp_path, args[0], "-i", str(path), "-f", str(HOSTS), *args[1:])
    assert "Traceback" not in done.stderr
    assert (
        f"bastion: warning: the open-files limit (ulimit -Hn) is {LIMIT}, too low for {HOSTS} "
        "hosts at once; running 18 at a time" in done.stderr
    ), done.stderr


@pytest.mark.parametrize(
    ("sent", "code", "said"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
)
@pytest.mark.parametrize("command", [["audit"], ["jobs", "--all"]], ids=lambda c: c[0])
def test_commands_outside_run_stoppable_stop_cleanly_on_ctrl_c_and_sigterm(
    tmp_path: Path, command: list[str], sent: signal.Signals, code: int, said: str
) -> None:
    # A server that accepts and never sends its banner: the probe waits (30 s connect timeout).
    with socket.socket() as silent:
        silent.bind((f"{REFUSING}.200", 0))
        silent.listen(8)
        path = inventory(tmp_path, [f"{REFUSING}.200"], port=silent.getsockname()[1])
        process = subprocess.Popen(
            [*BASTION, command[0], "-i", str(path), *command[1:]],
            env=cli_env(tmp_path, tmp_path / "lab"),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        silent.settimeout(60)
        connection, _ = silent.accept()  # bastion is past start-up, waiting for the banner
        try:
            started = time.monotonic()
            process.send_signal(sent)
            _, err = process.communicate(timeout=30)
        finally:
            connection.close()
    assert process.returncode == code, err
    assert err.endswith(f"bastion: {said}\n"), err
    assert "Traceback" not in err
    assert time.monotonic() - started < 20  # not the 30 s connect timeout
