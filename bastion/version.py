"""``bastion --version``: the semantic version, plus commit and date when run from a checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bastion import __version__


def version_string() -> str:
    """``0.1.0`` from an install; ``0.1.0 (git abc1234, 2026-11-27)`` from a git checkout."""
    checkout = Path(__file__).resolve().parent.parent
    if not (checkout / ".git").exists():
        return __version__
    try:
        described = subprocess.run(
            ["git", "-C", str(checkout), "log", "-1", "--format=%h %cs"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return __version__
    if len(described) != 2:
        return __version__
    commit, date = described
    return f"{__version__} (git {commit}, {date})"
