"""Durations as users write them, on the command line and in playbooks: ``30``, ``1.5``,
``500ms``, ``30s``, ``5m``, ``1h`` (a bare number is seconds, as in ``timeout(1)`` and
``sleep``; the units are those of systemd's and Ansible's shorter forms)."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"\s*([0-9]{1,12}(?:\.[0-9]{1,9})?)\s*(ms|s|m|h)?\s*", re.ASCII)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float | None:
    """Seconds (finite, >= 0), or None when ``value`` is not a duration (the caller says where).

    ASCII digits only, at most 12 before the point: ``nan``, ``inf``, ``1e400``, ``²`` and a
    5,000-digit number are refused before any conversion.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        found = _DURATION.fullmatch(value)
        if found is None:
            return None
        seconds = float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    else:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
