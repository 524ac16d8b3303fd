"""The sudo options shared by run and fetch (``--sudo``, ``--sudo-user``, ``-K``), and the prompt.

They follow Ansible's ``--become``, ``--become-user`` and ``-K/--ask-become-pass``: the password
is asked once, on the terminal, and sent to each host on stdin for ``sudo -S -p ''`` (see
`bastion.command`); it is never in a command line, the environment, a record or the output.
"""

from __future__ import annotations

import contextlib
import getpass
import os
from dataclasses import dataclass
from typing import Annotated

import typer

from bastion.command import SudoPassword, with_sudo
from bastion.errors import UsageError

AskSudoPassOption = Annotated[
    bool,
    typer.Option(
        "--ask-sudo-pass",
        "-K",
        help="Ask once for the sudo password (on the terminal) and send it to each host on "
        "stdin; implies --sudo.",
    ),
]
SudoUserOption = Annotated[
    str | None,
    typer.Option(
        "--sudo-user",
        metavar="USER",
        help="Run as USER through sudo -u (default root); implies --sudo.",
        show_default=False,
    ),
]

PROMPT = "sudo password: "


@dataclass(frozen=True, slots=True)
class SudoChoice:
    """What the sudo options asked for: nothing, or sudo as ``user`` with an optional password."""

    enabled: bool
    user: str | None = None
    password: SudoPassword | None = None

    def wrap(self, command: str) -> str:
        """``command`` as it runs on a host: through the sudo guard when sudo is on."""
        if not self.enabled:
            return command
        return with_sudo(command, user=self.user, password=self.password)

    def stdin(self, rest: bytes | None) -> bytes | None:
        """A host's stdin: the password lines first when there is a password."""
        return self.password.stdin(rest) if self.password else rest

    def recorded(self) -> dict[str, object]:
        """What run records and history keep of it (never the password)."""
        return {"sudo": self.enabled, "sudo_user": self.user, "ask_sudo_pass": bool(self.password)}


def sudo_choice(sudo: bool, sudo_user: str | None, ask_pass: bool) -> SudoChoice:
    """The options checked, and the password asked when ``-K`` was given."""
    if sudo_user is not None and (not sudo_user or sudo_user.startswith("-")):
        raise UsageError(f"bad user name {sudo_user!r}", source="--sudo-user")
    enabled = sudo or ask_pass or sudo_user is not None
    return SudoChoice(enabled, sudo_user, ask_password() if ask_pass else None)


def ask_password() -> SudoPassword:
    """Ask for the password on the controlling terminal (never on stdin, which is data)."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        raise UsageError(
            "-K/--ask-sudo-pass needs a terminal to ask on (none here)", source="--ask-sudo-pass"
        ) from None
    with contextlib.closing(os.fdopen(tty, "w", encoding="utf-8", errors="replace")) as stream:
        try:
            typed = getpass.getpass(PROMPT, stream=stream)
        except EOFError:
            raise UsageError("no sudo password was typed", source="--ask-sudo-pass") from None
    try:
        return SudoPassword.typed(typed)
    except ValueError as exc:
        raise UsageError(str(exc), source="--ask-sudo-pass") from None
