"""The few shell fragments a transport wraps around a user's command.

The command itself is passed as given. The only addition is a first line that reports the
remote shell's process id: sshd makes each session's shell a process-group leader, so that id
is the group to signal when a command times out or the run is interrupted, and nothing the
command started is left running.
"""

from __future__ import annotations

PID_MARKER = b"\x1fbastion-pid:"

PID_PREAMBLE = "printf '\\037bastion-pid:%s\\n' \"$$\"\n"


def with_pid_preamble(command: str) -> str:
    """The command to send: report the shell's pid on the first stdout line, then run it."""
    return PID_PREAMBLE + command


def kill_group_command(pid: int, grace_s: float = 1.0) -> str:
    """A command that stops process group ``pid``: TERM, a grace period, then KILL."""
    # `kill -s SIG -- -PGID` is the spelling dash's builtin accepts as well as bash's.
    return (
        f"kill -s TERM -- -{pid} 2>/dev/null; sleep {grace_s:g}; "
        f"kill -s KILL -- -{pid} 2>/dev/null; true"
    )


class PidPreamble:
    """Takes the pid line off the front of a command's stdout (it may arrive in pieces)."""

    def __init__(self) -> None:
        self._buffer: bytes | None = b""
        self.pid: int | None = None

    def feed(self, data: bytes) -> bytes:
        """The stdout bytes that belong to the command, once the pid line is off."""
        if self._buffer is None:
            return data
        buffered = self._buffer + data
        if not PID_MARKER.startswith(buffered[: len(PID_MARKER)]):
            self._buffer = None
            return buffered
        newline = buffered.find(b"\n")
        if newline < 0:
            self._buffer = buffered
            return b""
        digits = buffered[len(PID_MARKER) : newline]
        self.pid = int(digits) if digits.isdigit() else None
        self._buffer = None
        return buffered[newline + 1 :]
