"""Building the command a host runs: passed as given, anything bastion adds is quoted."""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass
from functools import cache
from importlib.resources import files


@cache
def sudo_guard_text() -> str:
    """The guard sudo runs around the command (`sudo_guard.sh`, POSIX sh), without comments.

    It travels in the command line of every sudo'd command (and shows in ``ps``): its
    whole-line comments and indentation stay in the shipped file.
    """
    text = files("bastion").joinpath("sudo_guard.sh").read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("#")) + "\n"


@dataclass(frozen=True, slots=True)
class SudoPassword:
    """A sudo password typed once, sent to each host on stdin; masked wherever it is shown."""

    value: str
    mark: str

    @classmethod
    def typed(cls, value: str) -> SudoPassword:
        """The password, with a fresh (not secret) marker for the line that follows it."""
        if "\n" in value or "\r" in value or "\0" in value:
            raise ValueError("a sudo password cannot contain a line break or NUL")
        return cls(value, "bastion-sudo-" + secrets.token_hex(8))

    def __repr__(self) -> str:
        return "SudoPassword(****)"

    __str__ = __repr__

    def stdin(self, rest: bytes | None) -> bytes:
        """What the host's stdin gets: the password line, the marker line, then ``rest``.

        sudo reads only the first line (and only when it needs a password); the guard reads
        on to the marker, so the command sees exactly ``rest``.
        """
        head = f"{self.value}\n{self.mark}\n".encode()
        return head + (rest or b"")


def with_sudo(
    command: str, *, user: str | None = None, password: SudoPassword | None = None
) -> str:
    """Run ``command`` through sudo, as root or ``user``, inside the guard that stops it.

    Without a password, ``sudo -n`` fails at once rather than prompt. With one, ``sudo -S -p ''``
    reads it from stdin (see `SudoPassword.stdin`); it is never in the command line.
    """
    words = ["sudo", "-S", "-p", ""] if password else ["sudo", "-n"]
    if user is not None:
        words += ["-u", user]
    guard = ["sh", "-c", sudo_guard_text(), "bastion-sudo"]
    mark = password.mark if password else ""
    # "$$": the shell that runs sudo is the one the group kill ends; the guard watches it.
    return " ".join(
        [*map(shlex.quote, [*words, "--", *guard]), '"$$"', *map(shlex.quote, [mark, command])]
    )


def quote(value: str) -> str:
    """Quote one value for a POSIX shell."""
    return shlex.quote(value)
