"""Where the lab keeps its state; shared by the lab and by `-i lab` resolution."""

from __future__ import annotations

import os
from pathlib import Path

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
