"""Guards: creates, removes, unless, only_if, checked on the host in one command.

They are checked in that order and the first that says "skip" names itself in the result,
e.g. ``creates /etc/kubernetes/admin.conf exists``. The check is read-only (a ``test -e``, or
the user's own ``unless``/``only_if`` command), so it also runs in ``--check`` mode.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

MARK = "bastion-guard:"


@dataclass(frozen=True, slots=True)
class Guards:
    """A step's guards, rendered for one host."""

    creates: str | None = None
    removes: str | None = None
    unless: str | None = None
    only_if: str | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.creates, self.removes, self.unless, self.only_if))


def guard_script(guards: Guards) -> str:
    """A POSIX sh script that prints ``bastion-guard: NAME`` for the first guard that skips."""
    lines: list[str] = []
    if guards.creates is not None:
        lines.append(
            f"if test -e {shlex.quote(guards.creates)}; then echo '{MARK} creates'; exit 0; fi"
        )
    if guards.removes is not None:
        lines.append(
            f"if ! test -e {shlex.quote(guards.removes)}; then echo '{MARK} removes'; exit 0; fi"
        )
    quiet = ">/dev/null 2>&1 </dev/null"
    if guards.unless is not None:
        lines.append(
            f"if sh -c {shlex.quote(guards.unless)} {quiet}; then echo '{MARK} unless'; exit 0; fi"
        )
    if guards.only_if is not None:
        only_if = shlex.quote(guards.only_if)
        lines.append(f"if ! sh -c {only_if} {quiet}; then echo '{MARK} only_if'; exit 0; fi")
    lines.append(f"echo '{MARK} run'")
    return "\n".join(lines)


def guard_verdict(stdout: str) -> str | None:
    """The name of the guard that skipped (``creates``...), ``run``, or None if no verdict."""
    for line in stdout.splitlines():
        if line.startswith(MARK):
            return line[len(MARK) :].strip()
    return None


def skip_reason(guards: Guards, verdict: str) -> str:
    """What the result says about the guard that skipped the step."""
    if verdict == "creates":
        return f"creates {guards.creates} exists"
    if verdict == "removes":
        return f"removes {guards.removes} does not exist"
    if verdict == "unless":
        return f"unless: {guards.unless} succeeded"
    return f"only_if: {guards.only_if} failed"
