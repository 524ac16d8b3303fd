"""The ``bastion>`` prompt (``bastion run`` with no command on a terminal), in a real pty.

The session follows clush's interactive mode: ``?`` shows the host set, ``@``/``+``/``-``
change it, ``=`` toggles gathered output, ``!`` runs locally, ``quit`` or Ctrl-D leaves.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BASTION, Cli

pytestmark = pytest.mark.lab


class Terminal:
    """A process on a pty, read until a text appears."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.fd, child = pty.openpty()
        self.process = subprocess.Popen(
            args, stdin=child, stdout=child, stderr=child, env=env, cwd=cwd, close_fds=True
        )
        os.close(child)
        self.seen = ""

    def expect(self, text: str, within_s: float = 30.0) -> str:
        """Everything read up to and including ``text``; fails after ``within_s``."""
        deadline = time.monotonic() + within_s
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {text!r}; got:\n{self.seen}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536).decode(errors="replace")
                except OSError:
                    chunk = ""
                assert chunk, f"the session ended before {text!r}; got:\n{self.seen}"
                self.seen += chunk
        head, _, self.seen = self.seen.partition(text)
        return head + text

    def send(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\r")

    def close(self) -> int:
        code = self.process.wait(timeout=30)
        os.close(self.fd)
        return code


def test_a_session_like_clush(lab: Cli, tmp_path: Path) -> None:
    env = {**lab.env, "BASTION_SESSION_HISTORY": str(tmp_path / "session"), "TERM": "xterm"}
    term = Terminal([*BASTION, "run", "-i", "lab", "--all"], env, tmp_path)
    try:
        assert "bastion: node[1-3] (3 hosts)" in term.expect("bastion> ")
        term.send("cat /etc/hostname")
        shown = term.expect("bastion> ")
        for name in ("node1", "node2", "node3"):
            assert re.search(rf"{name}: +{name}\r\n", shown), repr(shown)
        term.send("-node3")
        assert "node[1-2] (2 hosts)" in term.expect("bastion> ")
        term.send("=")
        assert "output: gathered" in term.expect("bastion> ")
        term.send("echo same")
        gathered = term.expect("bastion> ")
        assert "node[1-2]" in gathered and "same" in gathered
        assert not re.search(r"node1: +same", gathered)
        term.send("@node3")
        assert "node3 (1 hosts)" in term.expect("bastion> ")
        term.send("+@masters")
        assert "node[1,3] (2 hosts)" in term.expect("bastion> ")
        term.send("-node[1,3]")
        assert "leaves no host" in term.expect("bastion> ")
        term.send("?")
        assert "node[1,3] (2 hosts)" in term.expect("bastion> ")
        term.send("!echo on-the-bastion-$((6*7))")
        assert "on-the-bastion-42" in term.expect("bastion> ")
        term.send("@nosuchhost")
        assert "unknown host 'nosuchhost'" in term.expect("bastion> ")
        term.send("quit")
        assert term.close() == 0
    finally:
        if term.process.poll() is None:
            term.process.kill()
    history = (tmp_path / "session").read_text().splitlines()
    assert history[0] == "cat /etc/hostname" and history[-1] == "quit"
    assert oct((tmp_path / "session").stat().st_mode & 0o777) == "0o600"


def test_ctrl_d_leaves_and_a_command_line_runs_as_before(lab: Cli, tmp_path: Path) -> None:
    env = {**lab.env, "BASTION_SESSION_HISTORY": str(tmp_path / "session"), "TERM": "xterm"}
    term = Terminal([*BASTION, "run", "-i", "lab", "-H", "node2"], env, tmp_path)
    try:
        term.expect("bastion> ")
        os.write(term.fd, b"\x04")
        assert term.close() == 0
    finally:
        if term.process.poll() is None:
            term.process.kill()
    # Not a terminal: no prompt, the old one-line error.
    done = lab("run", "-i", "lab", "--all")
    assert done.returncode == 2
    assert "the command is empty" in done.stderr
