"""Where the lab keeps its state; shared by the lab and by `-i lab` resolution."""

from __future__ import annotations

import os
import re
from pathlib import Path

from bastion.errors import UsageError

LAB_INVENTORY_NAME = "lab"


def state_home() -> Path:
    """The user's XDG state directory for bastion (history, lab, run records)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bastion"


def lab_dir() -> Path:
    """The lab's directory: ``$BASTION_LAB_DIR`` or ``<state home>/lab``."""
    override = os.environ.get("BASTION_LAB_DIR")
    return Path(override) if override else state_home() / "lab"


def lab_inventory_path() -> Path:
    """The inventory `bastion lab up` writes, which `-i lab` names."""
    return lab_dir() / "inventory.yaml"


_PLAIN_PATH = re.compile(r"[A-Za-z0-9._/@+=~-]+")
PATH_PREFIX_ENV = "BASTION_LAB_PATH_PREFIX"
NODE_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The PATH sshd gives root's sessions, and sudo's ``secure_path`` on Debian."""


def lab_path_prefix() -> str | None:
    """``$BASTION_LAB_PATH_PREFIX``: a directory put first on the nodes' PATH (tests' stand-ins).

    Raises `UsageError` unless it is an absolute path of plain characters: it goes into
    sshd_config and sudoers.
    """
    prefix = os.environ.get(PATH_PREFIX_ENV) or None
    if prefix is not None and not (prefix.startswith("/") and _PLAIN_PATH.fullmatch(prefix)):
        raise UsageError(
            f"must be an absolute path of letters, digits and ._/@+=~-, got {prefix!r}",
            source=PATH_PREFIX_ENV,
        )
    return prefix


def node_path(prefix: str | None) -> str | None:
    """The PATH of the nodes' sessions with ``prefix`` first, or None to keep sshd's default."""
    return f"{prefix}:{NODE_DEFAULT_PATH}" if prefix else None
