"""Running the CLI on a real pseudo-terminal, and reading what the operator sees with pyte.

A pyte screen is the oracle for "what is on the screen": it interprets the bytes bastion
wrote to the terminal (escape sequences, carriage returns, cursor moves) as a VT100-like
terminal would, so a test can assert on the final picture instead of on bytes.
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import termios
import threading
from dataclasses import dataclass

import pyte

from tests.conftest import BASTION, Cli


@dataclass(frozen=True)
class TerminalRun:
    """What a command wrote to its terminal, and how it ended."""

    returncode: int
    data: bytes
    columns: int

    def screen(self, rows: int = 200) -> pyte.Screen:
        """The bytes fed to a ``columns`` x ``rows`` pyte screen (tall: nothing scrolls off)."""
        screen = pyte.Screen(self.columns, rows)
        stream = pyte.ByteStream(screen)
        stream.feed(self.data)
        return screen

    def lines(self, rows: int = 200) -> list[str]:
        """The screen's rows, trailing blanks removed, trailing empty rows dropped."""
        shown = [row.rstrip() for row in self.screen(rows).display]
        while shown and not shown[-1]:
            shown.pop()
        return shown


def run_in_pty(
    cli: Cli,
    *args: str,
    columns: int = 80,
    env: dict[str, str] | None = None,
    stdout_pipe: bool = False,
    timeout: float = 60,
) -> tuple[TerminalRun, str]:
    """Run ``bastion ARGS`` with stderr (and stdout, unless ``stdout_pipe``) on a pty."""
    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO once the last writer closed the secondary
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        done = subprocess.run(
            [*BASTION, *args],
            env={**cli.env, "TERM": "xterm", **(env or {})},
            cwd=cli.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else secondary,
            stderr=secondary,
            check=False,
            timeout=timeout,
        )
    finally:
        os.close(secondary)
        reader.join(timeout=10)
        os.close(primary)
    piped = done.stdout.decode() if stdout_pipe and done.stdout else ""
    return TerminalRun(done.returncode, b"".join(chunks), columns), piped
