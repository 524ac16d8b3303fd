"""The error tree: exceptions are for bad input and bugs, never for a host's outcome.

A host that fails, times out or cannot be reached is data (`HostResult.status`). The CLI maps
every `BastionError` to a one-line message and its `exit_code`, in one place.
"""

from __future__ import annotations

from pathlib import Path


class BastionError(Exception):
    """Root of every error bastion raises on purpose."""

    exit_code = 2


class InputError(BastionError):
    """Bad input from the user: a file, an option or an argument.

    Rendered as ``source:line: message`` when the source (a file path or an option name) and
    the line are known.
    """

    def __init__(
        self, message: str, *, source: str | Path | None = None, line: int | None = None
    ) -> None:
        self.message = message
        self.source = str(source) if source is not None else None
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.source is None:
            return self.message
        if self.line is None:
            return f"{self.source}: {self.message}"
        return f"{self.source}:{self.line}: {self.message}"


class InventoryError(InputError):
    """The inventory file is missing, unreadable or invalid."""


class SelectionError(InputError):
    """A selection names an unknown host or group, is malformed, or selects nothing."""


class UsageError(InputError):
    """An option or argument is invalid or options contradict each other."""


class CommandFailed(BastionError):
    """A command that reports one answer could not get it (``cluster status``: the control
    plane unreachable, kubectl failing); one line and the exit code that command documents."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class LabError(BastionError):
    """The local lab cannot be started, inspected or stopped."""

    exit_code = 1


class EnvironmentProblem(BastionError):
    """Something bastion needs on this machine is missing (a binary, a permission)."""

    exit_code = 1


MESSAGE_LIMIT = 1000
"""Characters of a message printed at most: an input echoed back is cut, never 100 KB."""
WORD_LIMIT = 200
"""Characters of one unbroken word (a pattern, a value, a path) kept in a message."""


def cut(text: str, limit: int) -> str:
    """``text`` with its middle replaced by a count when it is longer than ``limit``."""
    if len(text) <= limit:
        return text
    head, tail = limit * 3 // 4, limit // 5
    return f"{text[:head]}…[{len(text) - head - tail} characters cut]…{text[len(text) - tail :]}"


def one_line(message: str) -> str:
    """A message as one line on stderr: line breaks and control characters shown as spaces
    (never interpreted by the terminal), long words and long messages cut."""
    flat = "".join(" " if ch < " " or ch == "\x7f" else ch for ch in message.strip())
    words = [cut(word, WORD_LIMIT) for word in flat.split(" ")]
    return cut(" ".join(words), MESSAGE_LIMIT)
