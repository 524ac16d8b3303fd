"""How a command that holds a secret reaches the node without entering any process table.

A command line is visible to every user of the node (``/proc/PID/cmdline``, ``ps``), and with
mosh to every user of the bastion host too (mosh-client's argv). So a command whose text holds
a secret value is never given as a command line:

- a plain step sends it on **stdin** to the login shell (``exec "$SHELL" -s``, or
  ``sudo -n -- sh -s``): argv holds only that;
- a durable step (or a host on mosh, whose commands are durable jobs) first writes it, over
  stdin, to a 0600 file (``mktemp``), and the job runs ``sh FILE``; the script's first line
  removes the file, so it is gone as soon as the job starts (the durable job's own files then
  hold only ``sh FILE``, and are removed when the job is collected).

Secret values are never put in the environment either.
"""

from __future__ import annotations

import shlex

LOGIN_SHELL_FROM_STDIN = 'exec "${SHELL:-/bin/sh}" -s'
"""The remote command that runs a script given on stdin with the login shell, as ``-c`` would."""
ROOT_SHELL_FROM_STDIN = "sudo -n -- sh -s"

STAGE = (
    'umask 077 && f=$(mktemp "${TMPDIR:-/tmp}/bastion-secret.XXXXXXXXXX") '
    '&& cat >"$f" && printf \'%s\\n\' "$f"'
)
"""Writes stdin to a new 0600 file and prints its path (a durable step's secret script)."""


def stdin_form(script: str, *, sudo: bool) -> tuple[str, bytes]:
    """The remote command and the stdin that run ``script`` with no secret in argv.

    The script runs in a brace group with its stdin from /dev/null, so a command in it that
    reads stdin gets end-of-file (as it would under ``sh -c``), not the rest of the script.
    """
    body = f"{{\n{script}\n}} </dev/null\n"
    return (ROOT_SHELL_FROM_STDIN if sudo else LOGIN_SHELL_FROM_STDIN), body.encode()


def staged_body(script: str) -> bytes:
    """The content of a durable step's 0600 script file: it removes itself first."""
    return f'rm -f -- "$0"\n{script}\n'.encode()


def launcher(path: str, *, sudo: bool) -> str:
    """The durable job's command: run the staged file (which removes itself)."""
    words = ["sudo", "-n", "--", "sh", path] if sudo else ["sh", path]
    return shlex.join(words)


def script_with_args(body: bytes, args: list[str]) -> bytes:
    """A script step's body with its arguments set inside it (``set --``), not on argv."""
    return f"set -- {shlex.join(args)}\n".encode() + body
