"""A closed standard output (``bastion play ... | head -1``) never stops a command early.

Nor does a stdout redirected to a full disk: that is one warning line, then the same.

Python ignores SIGPIPE, so a write to a pipe whose reader is gone raises BrokenPipeError
wherever it happens: inside a renderer in the middle of a playbook step, in rich's console
during an audit, in typer's echo. Left alone it unwinds through the run and kills it with no
recap, no record and no history. `install` puts a guard in front of ``sys.stdout`` for every
command: the first broken write points file descriptor 1 at /dev/null (Python's recipe for
this), and that write and every later one succeed silently. The work goes on to its end, as
``bastion run`` always did: remote commands finish, the summary on stderr has every host, and
the record and the history are written. `closed_early` tells a command to say so.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable
from typing import Any, TextIO, cast


class GuardedStdout:
    """``sys.stdout`` with broken-pipe writes turned into writes to /dev/null."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.closed_early = False
        """The reader of stdout went away; everything since went to /dev/null."""

    def write(self, text: str) -> int:
        if not self.closed_early:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
            except OSError as exc:  # stdout on a full disk: one warning, the run goes on
                self._unwritable(exc)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_gone()
        except OSError as exc:
            self._unwritable(exc)

    def _unwritable(self, error: OSError) -> None:
        """stdout is a file on a full (or failing) disk: say so once, then as a closed pipe."""
        from bastion.record_guard import warn_unrecorded

        warn_unrecorded("stdout", error)
        self._reader_gone()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _reader_gone(self) -> None:
        self.closed_early = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # no descriptor (a test's StringIO): nothing to point
            pass
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()  # what was buffered goes to /dev/null now


_guards: list[GuardedStdout] = []
"""The guard installed (at most one): rich's live display may stand in front of it in
``sys.stdout`` meanwhile, so the guard itself is asked."""


def install() -> None:
    """Guard ``sys.stdout`` (once)."""
    if not _guards and sys.stdout is not None:
        _guards.append(GuardedStdout(sys.stdout))
        sys.stdout = cast(TextIO, _guards[0])


def closed_early() -> bool:
    """Whether the reader of stdout went away during this command."""
    return any(guard.closed_early for guard in _guards)
