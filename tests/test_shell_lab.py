"""`bastion shell` driven as a person would, in a real terminal: tmux send-keys, capture-pane."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.models import Host
from bastion.shell import ssh_argv
from tests.conftest import REPO, Cli, is_root, user_mode_terminal_problem

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Terminal:
    """A detached tmux session on a private server socket, running one command."""

    def __init__(self, socket: Path, env: dict[str, str]) -> None:
        self.socket = socket
        self.env = env

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def start(self, command: list[str]) -> None:
        started = self.tmux(
            "new-session", "-d", "-x", "120", "-y", "40", "-s", "shell", shlex.join(command)
        )
        assert started.returncode == 0, started.stderr

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "shell", text, "Enter")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "shell", "-S", "-100").stdout

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen:\n{screen}")
            time.sleep(0.2)

    def alive(self) -> bool:
        return self.tmux("has-session", "-t", "shell").returncode == 0


@pytest.fixture
def terminal(lab: Cli, tmp_path: Path) -> Iterator[Terminal]:
    if reason := user_mode_terminal_problem():
        pytest.skip(reason)
    env = dict(lab.env, TERM="xterm", LANG="C.UTF-8", SHELL="/bin/sh")
    term = Terminal(tmp_path / "tmux.sock", env)
    try:
        yield term
    finally:
        term.tmux("kill-server")


def bastion_shell(*args: str) -> list[str]:
    # The pane's command; `; sleep` keeps the pane open to read what bastion printed last.
    return [
        "sh",
        "-c",
        f"cd {shlex.quote(str(REPO))}; {shlex.join(args)}; echo exited=$?; sleep 30",
    ]


SHELL = [sys.executable, "-m", "bastion", "shell", "-i", "lab"]


@pytest.mark.parametrize("via", ["ssh", "mosh"])
def test_shell_is_interactive_on_the_right_host(terminal: Terminal, via: str) -> None:
    if via == "mosh" and shutil.which("mosh") is None:
        pytest.skip("mosh is not installed")
    node = "node2"
    terminal.start(bastion_shell(*SHELL, node, *(["--mosh"] if via == "mosh" else [])))
    terminal.type("echo marker-$((6 * 7)) on $(hostname)")
    screen = terminal.wait_for("marker-42 on ")
    if is_root():
        assert f"marker-42 on {node}" in screen
    terminal.type("exit")
    screen = terminal.wait_for("exited=")
    assert "exited=0" in screen
    assert "using ssh" not in screen


def test_shell_falls_back_to_ssh_when_mosh_server_is_missing(terminal: Terminal) -> None:
    terminal.env["BASTION_MOSH_SERVER"] = "/nonexistent/mosh-server"
    terminal.start(bastion_shell(*SHELL, "node1", "--mosh"))
    terminal.wait_for("using ssh")
    terminal.type("echo marker-$((6 * 7))")
    screen = terminal.wait_for("marker-42")
    assert "bastion: could not start mosh (mosh exited with status" in screen
    terminal.type("exit")
    assert "exited=0" in terminal.wait_for("exited=")


def test_an_unknown_host_is_one_line_and_exit_2(lab: Cli) -> None:
    done = lab("shell", "-i", "lab", "node9")
    assert done.returncode == 2
    assert done.stderr == "bastion: error: HOST: unknown host 'node9' (inventory has node[1-3])\n"


def test_ssh_reaches_a_host_through_its_jump_host_with_strict_keys(lab: Cli) -> None:
    from bastion.inventory import load_inventory

    inventory = load_inventory(Path(lab.env["BASTION_LAB_DIR"]) / "inventory.yaml")
    hosts = dict(inventory.hosts)
    target = Host(**{**_fields(hosts["node3"]), "jump": "node1"})
    argv = ssh_argv(target, hosts, command="hostname")
    assert "StrictHostKeyChecking=yes" in argv
    done = subprocess.run(
        [*argv[:1], "-o", "BatchMode=yes", *argv[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    if is_root():
        assert done.stdout == "node3\n"


def _fields(host: Host) -> dict[str, object]:
    return {name: getattr(host, name) for name in host.__dataclass_fields__}
