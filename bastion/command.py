"""Building the command a host runs: passed as given, anything bastion adds is quoted."""

from __future__ import annotations

import shlex


def with_sudo(command: str) -> str:
    """Run ``command`` as root through ``sudo -n``, which fails rather than prompt."""
    return f"sudo -n -- sh -c {shlex.quote(command)}"


def quote(value: str) -> str:
    """Quote one value for a POSIX shell."""
    return shlex.quote(value)
