"""Durations as playbooks write them: ``90``, ``1.5``, ``500ms``, ``5s``, ``10m``, ``1h``."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float | None:
    """Seconds, or None when ``value`` is not a duration (the caller names the line)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    found = _DURATION.match(value)
    if found is None:
        return None
    return float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
