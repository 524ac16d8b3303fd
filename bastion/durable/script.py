"""The commands that call the durable-job wrapper on a node (`wrapper.sh`, POSIX sh)."""

from __future__ import annotations

import math
import re
import shlex
from functools import cache
from importlib.resources import files

JOB_ID = re.compile(r"[A-Za-z0-9_:-][A-Za-z0-9._:-]*")
"""What the wrapper accepts as a job id: a file name, never a path."""

ALREADY_STARTED = 75
NO_SUCH_JOB = 76
NOT_FINISHED = 77


@cache
def wrapper_text() -> str:
    """The wrapper script, as shipped in the package."""
    return files("bastion.durable").joinpath("wrapper.sh").read_text(encoding="utf-8")


def wrapper_command(action: str, *args: str) -> str:
    """``sh -c WRAPPER bastion-job ACTION ARGS...``, quoted for the remote login shell."""
    words = ["sh", "-c", wrapper_text(), "bastion-job", action, *args]
    return " ".join(shlex.quote(word) for word in words)


def start(job: str, command: str) -> str:
    """Claim the job directory and start ``command`` detached; exit 75 if already claimed."""
    return wrapper_command("start", _checked(job), command)


def attach(job: str, stdout_offset: int, stderr_offset: int) -> str:
    """Stream the spools from these byte offsets until the job is done (exit 0), or 76."""
    return wrapper_command("attach", _checked(job), str(stdout_offset), str(stderr_offset))


def result(job: str) -> str:
    """Print the job's exit code; exit 76 without the job, 77 while it runs."""
    return wrapper_command("result", _checked(job))


def kill(job: str, grace_s: float = 1.0) -> str:
    """TERM the job's process group, wait ``grace_s``, then KILL it."""
    return wrapper_command("kill", _checked(job), f"{grace_s:g}")


def clean(job: str) -> str:
    """Remove the job directory (idempotent)."""
    return wrapper_command("clean", _checked(job))


def list_jobs() -> str:
    """One line per job directory: id, state, exit code, start time, command's first line."""
    return wrapper_command("list")


def clean_finished(*, unseen_too: bool = False) -> str:
    """Remove finished jobs whose output was shown (all finished ones with ``unseen_too``),
    printing ``removed ID`` or ``kept ID`` per job."""
    return wrapper_command("clean-finished", "-", "all" if unseen_too else "seen")


def show(job: str) -> str:
    """Print the job's output so far (stdout, then stderr) and exit with its status (77 while
    it runs, 76 without it); the job is marked seen."""
    return wrapper_command("show", _checked(job))


def _checked(job: str) -> str:
    if not JOB_ID.fullmatch(job):
        raise ValueError(f"invalid job id {job!r}")
    return job


def serve(
    job: str,
    command: str,
    timeout_s: float | None,
    offsets: tuple[int, int],
    page: tuple[int, int],
) -> list[str]:
    """Start the job (or find it started) and page its output on the screen, as argv words.

    For a mosh session, which runs its command itself (no login shell in between): the node
    shows the spools from ``offsets`` (stdout, stderr) as pages of ``page`` (data lines,
    characters a line), then the exit code, for `bastion.transport.mosh_screen` to read. The
    node stops the job ``timeout_s`` after it started, on its own, as the client may have no
    link then (whole seconds: the job gets between ``timeout_s`` and one second more).
    """
    limit = "0" if timeout_s is None else str(max(1, math.ceil(timeout_s)))
    numbers = [limit, *(str(n) for n in offsets), *(str(n) for n in page)]
    return ["sh", "-c", wrapper_text(), "bastion-job", "serve", _checked(job), *numbers, command]
