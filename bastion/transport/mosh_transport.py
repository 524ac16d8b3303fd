"""mosh: SSH only to start ``mosh-server`` on the host, then UDP that survives a bad link.

This is the only module that runs mosh. mosh synchronises a screen, not a byte stream, and
does not report the remote command's exit code (mosh issue #1010), so nothing is read off its
screen: the session runs the durable-job wrapper (``run``: start the job once, wait for it on
the node) and the job's output and exit code are collected from the node's spool over SSH
once SSH answers again (`bastion.durable.jobs`). mosh's own exit only says the wait ended.

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
from dataclasses import dataclass

from bastion.hostkeys import known_hosts_files
from bastion.models import Host

WINDOW = (24, 80)
TAIL_BYTES = 4096
STOP_WAIT_S = 5.0


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
    host: Host, remote: list[str], *, timeout: float | None, connect_timeout: float | None = None
) -> MoshOutcome:
    """Run ``remote`` on ``host`` in a mosh session; wait for it to end (or ``timeout``)."""
    argv = mosh_argv(host, remote, connect_timeout)
    master, slave = pty.openpty()
    rows, cols = WINDOW
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = dict(os.environ, LANG=os.environ.get("LANG") or "C.UTF-8", TERM="xterm")
    env["LC_ALL"] = env.get("LC_ALL") or "C.UTF-8"
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
    finally:
        os.close(slave)
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

    loop.add_reader(master, readable)
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
        loop.remove_reader(master)
        os.close(master)
    return MoshOutcome(status, tail.decode(errors="replace"))


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
