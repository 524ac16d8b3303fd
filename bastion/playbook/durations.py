"""Durations as playbooks write them: ``90``, ``1.5``, ``500ms``, ``5s``, ``10m``, ``1h``.

The grammar is the command line's (`bastion.durations`), so ``timeout: 5m`` in a playbook and
``-t 5m`` on the command line mean the same.
"""

from __future__ import annotations

from bastion.durations import parse_duration

__all__ = ["parse_duration"]
