"""Records never cost the run: a record that cannot be written is one warning line.

``--out-dir``, the spool, the history and stored copies (the audit's) are records of a run, not
the run. When the disk is full or a directory vanished, the hosts' results, the streamed output,
the summary and the exit code stay those of the hosts; the user gets one line per record saying
what was not written and why (docs/output.md, "When a record cannot be written").
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from bastion.errors import InputError


def describe(error: BaseException) -> str:
    """A short reason for a failed write: ``No space left on device``, the path if known."""
    if isinstance(error, InputError):
        return str(error)
    if isinstance(error, OSError):
        reason = error.strerror or str(error)
        return f"{error.filename}: {reason}" if error.filename else reason
    return str(error) or type(error).__name__


def warn_unrecorded(what: str, error: BaseException) -> None:
    """Say on stderr, in one line, that ``what`` could not be written; the run goes on."""
    sys.stderr.write(f"bastion: warning: cannot write {what} ({describe(error)}); continuing\n")
    sys.stderr.flush()


class RecordGuard:
    """Writes of one record: the first failure is warned about once, later ones are silent.

    >>> guard = RecordGuard("the stored audit copy")
    >>> with guard:
    ...     write_private(path, text)   # an OSError here becomes one warning line
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.failed: BaseException | None = None
        """The first error, once a write failed."""

    def __enter__(self) -> RecordGuard:
        return self

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> bool:
        if not isinstance(error, (OSError, InputError)):
            return False
        if self.failed is None:
            self.failed = error
            warn_unrecorded(self.what, error)
        return True


@contextmanager
def best_effort(what: str) -> Iterator[RecordGuard]:
    """One guarded write: ``with best_effort("history"): append(...)``."""
    guard = RecordGuard(what)
    with guard:
        yield guard
