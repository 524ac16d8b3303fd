"""``-o quiet``: no per-host output; the summary alone tells how the run went."""

from __future__ import annotations

from collections.abc import Sequence

from bastion.models import Event, HostResult


class QuietRenderer:
    """Shows nothing; the closing summary is written for every mode by the CLI."""

    def handle(self, event: Event) -> None:
        """Output is deliberately not shown."""

    def finish(self, results: Sequence[HostResult]) -> None:
        """Nothing to add to the summary."""
