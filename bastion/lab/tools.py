"""Finding the system programs the lab runs (sshd, ssh-keygen, unshare, mount)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from bastion.errors import EnvironmentProblem

# sshd and friends live in sbin, which is often not on a normal user's PATH.
FALLBACK_DIRS: tuple[str, ...] = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")

_INSTALL_HINTS = {
    "sshd": "install openssh-server (apt-get install openssh-server)",
    "ssh-keygen": "install openssh-client (apt-get install openssh-client)",
    "unshare": "install util-linux (apt-get install util-linux)",
    "mount": "install mount (apt-get install mount)",
}


def find_program(name: str) -> str:
    """The absolute path of program ``name``: from ``$PATH``, then the sbin/bin fallbacks.

    Raises `EnvironmentProblem` naming the package to install when it is nowhere.
    """
    found = shutil.which(name)
    if found:
        return os.path.abspath(found)
    for directory in FALLBACK_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    hint = _INSTALL_HINTS.get(name, f"install the package that provides {name}")
    raise EnvironmentProblem(f"{name} not found: {hint}")


@dataclass(frozen=True, slots=True)
class LabPrograms:
    """The absolute paths of the programs a lab in a given mode runs."""

    sshd: str
    ssh_keygen: str
    unshare: str | None
    """Root mode only: the node's namespaces."""
    mount: str | None
    """Root mode only: the node's overlays."""


def find_lab_programs(*, namespaces: bool) -> LabPrograms:
    """Find every program the lab needs, before it changes anything; `EnvironmentProblem` if not."""
    return LabPrograms(
        sshd=find_program("sshd"),
        ssh_keygen=find_program("ssh-keygen"),
        unshare=find_program("unshare") if namespaces else None,
        mount=find_program("mount") if namespaces else None,
    )
