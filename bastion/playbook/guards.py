"""Guards: creates, removes, unless, only_if, checked on the host in one command.

They are checked in that order and the first that says "skip" names itself in the result,
e.g. ``creates /etc/kubernetes/admin.conf exists``. The check is read-only (a ``test -e``, or
the user's own ``unless``/``only_if`` command), so it also runs in ``--check`` mode.

A guarded command step sends its guards and its command in one remote command
(`guarded_command`), so it costs one SSH connection, not two: the guards run first and print
their verdict as the first line of stdout, which `VerdictSplitter` takes off the output.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass

from bastion.models import Stream
from bastion.transport.base import OutputSink

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
        lines.append(f"if {_inline(guards.unless)} {quiet}; then echo '{MARK} unless'; exit 0; fi")
    if guards.only_if is not None:
        only_if = _inline(guards.only_if)
        lines.append(f"if ! {only_if} {quiet}; then echo '{MARK} only_if'; exit 0; fi")
    lines.append(f"echo '{MARK} run'")
    return "\n".join(lines)


def _inline(command: str) -> str:
    """A guard command in a subshell of the guard script: not a second ``sh -c`` whose argv
    would show it (it may hold a secret), and its ``exit`` ends only the subshell."""
    return f"(\n{command}\n)"


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


GUARD_FAILED_EXIT = 125
"""The exit status of a `guarded_command` whose guards could not be checked."""


def guard_command(guards: Guards, *, sudo: bool) -> str:
    """The guard check as one remote command (with ``sudo -n`` for a sudo step)."""
    script = shlex.quote(guard_script(guards))
    return f"sudo -n sh -c {script}" if sudo else f"sh -c {script}"


def guard_command_on_stdin(guards: Guards, *, sudo: bool) -> tuple[str, bytes]:
    """The guard check with its script on stdin (guards that hold a secret): never argv."""
    return ("sudo -n sh -s" if sudo else "sh -s"), guard_script(guards).encode()


def guarded_command(guards: Guards, command: str, *, sudo: bool, guard_timeout: float) -> str:
    """One remote command: the guards, their verdict line, then ``command`` if they say run.

    ``command`` runs as it would alone: by the login shell (``$SHELL -c``), with the
    connection's stdin (a script step's body), after the guards (which never read stdin).
    The guards get at most ``guard_timeout`` seconds where coreutils' ``timeout`` exists.
    """
    limit = math.ceil(guard_timeout)
    script = "\n".join(
        [
            f"t=; if command -v timeout >/dev/null 2>&1; then t='timeout {limit}'; fi",
            f"verdict=$($t {guard_command(guards, sudo=sudo)} </dev/null) "
            f"|| {{ printf '%s\\n' \"$verdict\"; exit {GUARD_FAILED_EXIT}; }}",
            "printf '%s\\n' \"$verdict\"",
            f"case $verdict in '{MARK} run') ;; *) exit 0 ;; esac",
            f'exec "${{SHELL:-/bin/sh}}" -c {shlex.quote(command)}',
        ]
    )
    return f"sh -c {shlex.quote(script)}"


class VerdictSplitter:
    """An output sink that takes the guards' verdict line off the front of stdout."""

    def __init__(self, sink: OutputSink) -> None:
        self._sink = sink
        self._head = ""
        self._split = False
        self.verdict: str | None = None

    def __call__(self, stream: Stream, text: str) -> None:
        if stream != "stdout" or self._split:
            self._sink(stream, text)
            return
        self._head += text
        if "\n" not in self._head:
            return
        self._split = True
        line, rest = self._head.split("\n", 1)
        self.verdict = guard_verdict(line)
        if self.verdict is None:
            rest = self._head  # not a verdict: nothing to take off
        self._head = ""
        if rest:
            self._sink(stream, rest)

    def flush(self) -> None:
        """Pass on a partial first line that never ended (not a verdict)."""
        if not self._split and self._head:
            self._split = True
            self.verdict = guard_verdict(self._head)
            if self.verdict is None:
                self._sink("stdout", self._head)
            self._head = ""


def without_verdict(stdout: str) -> str:
    """``stdout`` of a `guarded_command` without its verdict line."""
    line, _, rest = stdout.partition("\n")
    return rest if guard_verdict(line) is not None else stdout
