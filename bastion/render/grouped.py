"""``-o grouped``: each distinct output once, under the folded set of hosts that printed it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from bastion.gather import group_by_output
from bastion.models import Event, HostResult
from bastion.render.base import CYAN, RED, paint

RULE = "-" * 15


class GroupedRenderer:
    """Prints nothing while hosts run, then stdout groups on stdout and stderr groups on stderr."""

    def __init__(self, out: TextIO, err: TextIO, *, color: bool = False) -> None:
        self._out = out
        self._err = err
        self._color = color

    def handle(self, event: Event) -> None:
        """Grouping needs every host's whole output, so events are not shown one by one."""

    def finish(self, results: Sequence[HostResult]) -> None:
        for group in group_by_output(results, lambda r: r.stdout):
            if group.text:
                self._write_block(self._out, group.folded, len(group.hosts), group.text, CYAN)
        for group in group_by_output(results, lambda r: r.stderr):
            if group.text:
                header = f"{group.folded} [stderr]"
                self._write_block(self._err, header, len(group.hosts), group.text, RED)

    def _write_block(self, stream: TextIO, header: str, count: int, text: str, code: str) -> None:
        title = paint(f"{header} ({count})", code, self._color)
        body = text if text.endswith("\n") else text + "\n"
        stream.write(f"{RULE}\n{title}\n{RULE}\n{body}")
        stream.flush()
