"""Byte-compile bastion before a benchmark, as installing it would.

``pip install`` writes every module's ``.pyc``; an editable install leaves that to the first
import, which does not happen when ``PYTHONDONTWRITEBYTECODE`` is set (it is on the development
machine). Then every ``bastion`` run compiles its ~100 modules from source again: about 100 ms
of CPU per run that no installed copy pays. Each benchmark calls `compile_bastion` first.
"""

from __future__ import annotations

import compileall
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def compile_bastion() -> None:
    """Write the ``.pyc`` of every module of the package and of the benchmark scripts."""
    for directory in (REPO / "bastion", REPO / "bench"):
        if not compileall.compile_dir(directory, quiet=1):
            raise SystemExit(f"could not byte-compile {directory}")
