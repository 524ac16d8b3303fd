"""Golden-file comparison for the audit's pure parsers: input file in, expected JSON beside it.

Run with ``BASTION_REGEN_GOLDEN=1`` to rewrite the expected files after a deliberate change,
then review the diff like any other code change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "audit"


def check_golden(actual: object, expected_file: Path) -> None:
    """Compare ``actual`` (JSON-able) with ``expected_file``; regenerate it on request."""
    text = json.dumps(actual, indent=2, sort_keys=True) + "\n"
    if os.environ.get("BASTION_REGEN_GOLDEN"):
        expected_file.write_text(text, encoding="utf-8")
    expected = json.loads(expected_file.read_text(encoding="utf-8"))
    # Compared as JSON sees them (tuples are lists there).
    assert json.loads(text) == expected, f"{expected_file.name} differs; see the diff above"
