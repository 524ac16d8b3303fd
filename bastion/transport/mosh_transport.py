"""mosh: SSH only to start ``mosh-server`` on the host, then UDP that survives a bad link.

This is the only module that runs mosh. mosh synchronises a screen, not a byte stream, and
does not report the remote command's exit code (mosh issue #1010), so no byte stream is
scraped off its screen: the session runs the durable-job wrapper's pager (``serve``: start the
job once, then show its spools page by page with checksums), and a `ScreenDriver`
(`bastion.transport.mosh_screen.PageReader`) reads the verified pages off the screen and
types the key for the next one (`bastion.durable.jobs`).

The real ``mosh`` client runs in a pseudo-terminal with a window size (mosh-client aborts
without one). Host keys stay strict: the SSH it starts with is given the inventory's
known_hosts with ``StrictHostKeyChecking=yes``, and ``BatchMode`` so it never prompts.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import shlex
import shutil
import signal
import struct
import termios
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bastion.hostkeys import known_hosts_files
from bastion.models import Host

WINDOW = (24, 80)
TAIL_BYTES = 4096
STOP_WAIT_S = 5.0
TICK_S = 0.5
QUIT_WAIT_S = 20.0
"""How long a session may take to end once its driver is finished with it."""


class ScreenDriver(Protocol):
    """Reads mosh-client's terminal output and answers with keystrokes."""

    def feed(self, data: bytes) -> bytes:
        """Take terminal output; return the keys to type (may be empty)."""
        ...

    def tick(self) -> bytes:
        """Called every `TICK_S`; return the keys to type (may be empty)."""
        ...

    @property
    def finished(self) -> bool:
        """Nothing more is wanted from the session: it should end."""
        ...


@dataclass(frozen=True, slots=True)
class MoshOutcome:
    """How a mosh session ended: its exit status and the end of what it printed."""

    exit_status: int | None
    """None when it was stopped (the deadline passed, or the run was interrupted)."""
    tail: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def reason(self) -> str:
        """The last meaningful line mosh printed, for an error message."""
        for line in reversed(self.tail.splitlines()):
            text = "".join(ch for ch in line if ch.isprintable()).strip()
            if text and "mosh is exiting" not in text and not text.startswith("\x1b"):
                return text
        return f"mosh exited with status {self.exit_status}"


def mosh_missing() -> str | None:
    """Why mosh cannot run from here, or None when it can."""
    for program in ("mosh", "mosh-client"):
        if shutil.which(program) is None:
            return f"{program} is not installed here (apt-get install mosh)"
    return None


def ssh_option(host: Host, connect_timeout: float | None = None) -> str:
    """The ``--ssh=`` value: the inventory's port, user, key and known_hosts, strictly."""
    files = [str(path) for path in known_hosts_files(host.known_hosts)]
    words = ["ssh", "-p", str(host.port), "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]
    words += ["-o", f"UserKnownHostsFile={' '.join(files)}"]
    words += ["-o", f"ConnectTimeout={max(1, round(connect_timeout or host.connect_timeout))}"]
    if host.user:
        words += ["-l", host.user]
    if host.identity_file:
        words += ["-i", host.identity_file, "-o", "IdentitiesOnly=yes"]
    return " ".join(shlex.quote(word) for word in words)


def mosh_argv(host: Host, remote: list[str], connect_timeout: float | None = None) -> list[str]:
    """The mosh command line that runs ``remote`` (argv words; none: a login shell)."""
    if host.jump:
        # mosh needs direct UDP to the host: there is no ProxyJump (mosh issue #970).
        raise ValueError(f"host {host.name} is behind jump host {host.jump}; mosh cannot pass it")
    argv = ["mosh", f"--ssh={ssh_option(host, connect_timeout)}", "--predict=never"]
    server = os.environ.get("BASTION_MOSH_SERVER")
    if server:  # mosh-server somewhere the host's PATH does not look (/usr/local/bin, ...)
        argv.append(f"--server={server}")
    return [*argv, host.address, "--", *remote] if remote else [*argv, host.address]


async def run_mosh(
    host: Host,
    remote: list[str],
    *,
    timeout: float | None,
    connect_timeout: float | None = None,
    window: tuple[int, int] = WINDOW,
    driver: ScreenDriver | None = None,
) -> MoshOutcome:
    """Run ``remote`` on ``host`` in a mosh session; wait for it to end (or ``timeout``).

    With a ``driver``, the screen goes to it and its keys to the session; once it is
    finished, the session gets `QUIT_WAIT_S` to end on its own before it is stopped.
    """
    process, master = await _spawn(mosh_argv(host, remote, connect_timeout), window)
    tail = bytearray()
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()

    def readable() -> None:
        # The screen is drained (mosh-client blocks when its terminal is full) and only its
        # end is kept, for error messages.
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(master)
            closed.set()
            return
        tail.extend(data)
        del tail[:-TAIL_BYTES]
        if driver is not None:
            type_keys(driver.feed(data))

    def type_keys(keys: bytes) -> None:
        if keys and not closed.is_set():
            with contextlib.suppress(OSError):  # the client is gone: its exit tells
                os.write(master, keys)

    loop.add_reader(master, readable)
    ticker = None if driver is None else asyncio.create_task(_tick(driver, type_keys, process))
    try:
        status: int | None = await asyncio.wait_for(process.wait(), timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closed.wait(), 1.0)
    except TimeoutError:
        await _stop(process)
        status = None
    except asyncio.CancelledError:
        await asyncio.shield(_stop(process))
        raise
    finally:
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        loop.remove_reader(master)
        os.close(master)
    return MoshOutcome(status, tail.decode(errors="replace"))


async def _spawn(
    argv: list[str], window: tuple[int, int]
) -> tuple[asyncio.subprocess.Process, int]:
    """Start mosh in a new pseudo-terminal of ``window`` size; the process and the pty master."""
    master, slave = pty.openpty()
    rows, cols = window
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = dict(os.environ, LANG=os.environ.get("LANG") or "C.UTF-8", TERM="xterm")
    env["LC_ALL"] = env.get("LC_ALL") or "C.UTF-8"
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
    except OSError:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return process, master


async def _tick(
    driver: ScreenDriver, type_keys: Callable[[bytes], None], process: asyncio.subprocess.Process
) -> None:
    """Give the driver its ticks; stop the session when it lingers after the driver is done."""
    finished_at: float | None = None
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(TICK_S)
        type_keys(driver.tick())
        if not driver.finished:
            continue
        if finished_at is None:
            finished_at = loop.time()
        elif loop.time() - finished_at > QUIT_WAIT_S:
            await _stop(process)
            return


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_WAIT_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
