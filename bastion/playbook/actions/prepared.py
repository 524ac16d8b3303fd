"""What an action becomes for one host, ready to perform: a command, an upload or a download."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.command import with_sudo
from bastion.playbook.secret_delivery import staged_body, stdin_form

if TYPE_CHECKING:
    from bastion.playbook.model import Step
    from bastion.playbook.template import Masker


@dataclass(frozen=True, slots=True)
class Command:
    """A shell command to run (run, script, wait_for); ``stdin`` for scripts.

    ``staged``: the command holds a secret, so ``text`` only reads it from stdin; a durable
    job (which has no stdin) runs this script from a 0600 file instead (`secret_delivery`).
    """

    text: str
    display: str
    stdin: bytes | None = None
    timeout: float | None = None
    staged: bytes | None = None
    sudo: bool = False


@dataclass(frozen=True, slots=True)
class Upload:
    """copy or template: a local file, or text to write, to ``dest`` on the host."""

    dest: str
    src: Path | None
    content: str | None
    mode: int | None
    owner: str | None


@dataclass(frozen=True, slots=True)
class Download:
    """fetch: ``src`` on the host to ``dest`` here (a directory if it ends with /)."""

    src: str
    dest: str
    mode: int = 0o600


Prepared = Command | Upload | Download


def shell_command(
    script: str, display: str, step: Step, masker: Masker | None, timeout: float | None
) -> Command:
    """``script`` as given to the login shell, or, holding a secret, on stdin."""
    if masker is None or not masker.reveals(script):
        return Command(with_sudo(script) if step.sudo else script, display, timeout=timeout)
    text, stdin = stdin_form(script, sudo=step.sudo)
    return Command(text, display, stdin, timeout, staged_body(script), step.sudo)
