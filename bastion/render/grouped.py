"""``-o grouped``: each distinct output once, under the folded set of hosts that printed it.

Like ``clush -b`` (``dshbak -c``). With ``lines`` (``-L``, like ``clush -bL``) there is no
header block: each line of a distinct output is prefixed with its folded hosts,
``node[1,3]: line``. Without ``prefix`` (``-N``, like ``clush -bN``) the outputs follow each
other with no header at all. A host's text is shown through `visible` unless ``raw``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TextIO

from bastion.gather import group_by_output
from bastion.models import Event, HostFinished, HostOutput, HostResult, Stream
from bastion.render.base import CYAN, RED, paint
from bastion.render.visible import split_lines, visible_pieces
from bastion.spool import SpoolSet

RULE = "-" * 15


class GroupedRenderer:
    """Prints nothing while hosts run, then stdout groups on stdout and stderr groups on stderr."""

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        *,
        color: bool = False,
        spools: SpoolSet | None = None,
        lines: bool = False,
        prefix: bool = True,
        raw: bool = False,
    ) -> None:
        self._out = out
        self._err = err
        self._color = color
        self._lines = lines
        self._prefix = prefix
        self._raw = raw
        self._spools = spools if spools is not None else SpoolSet(hashed=True)

    def handle(self, event: Event) -> None:
        """Grouping needs every host's whole output: kept (on disk once large) until the end."""
        if isinstance(event, HostOutput):
            self._spools.add(event)
        elif isinstance(event, HostFinished):
            self._spools.seal(event.result.host)

    def finish(self, results: Sequence[HostResult]) -> None:
        try:
            self._write_groups(results, "stdout", self._out, "", CYAN)
            self._write_groups(results, "stderr", self._err, " [stderr]", RED)
        finally:
            self._spools.close()

    def _write_groups(
        self, results: Sequence[HostResult], stream: Stream, target: TextIO, suffix: str, code: str
    ) -> None:
        by_host = {r.host: r for r in results}

        def key_of(result: HostResult) -> str:
            return self._key(result, stream)

        for group in group_by_output(results, key_of):
            if not group.text.startswith("0:"):  # the key: length, then the digest
                pieces = self._pieces(by_host[group.hosts[0]], stream)
                if not self._raw:
                    pieces = visible_pieces(pieces)
                header = f"{group.folded}{suffix}"
                if self._lines and self._prefix:
                    self._write_lines(target, header, pieces, code)
                else:
                    self._write_block(target, header, len(group.hosts), pieces, code)

    def _key(self, result: HostResult, stream: Stream) -> str:
        """Equal for hosts whose whole output on ``stream`` is equal: length and SHA-256."""
        spool = self._spools.get(result.host, stream)
        if spool is not None:
            return f"{spool.chars}:{spool.digest}"
        text = result.stdout if stream == "stdout" else result.stderr
        return f"{len(text)}:{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()}"

    def _pieces(self, result: HostResult, stream: Stream) -> Iterable[str]:
        spool = self._spools.get(result.host, stream)
        if spool is not None:
            return spool.chunks()
        return [result.stdout if stream == "stdout" else result.stderr]

    def _write_block(
        self, stream: TextIO, header: str, count: int, pieces: Iterable[str], code: str
    ) -> None:
        if self._prefix:
            title = paint(f"{header} ({count})", code, self._color)
            stream.write(f"{RULE}\n{title}\n{RULE}\n")
        last = ""
        for piece in pieces:
            if piece:
                stream.write(piece)
                last = piece
        if not last.endswith("\n"):
            stream.write("\n")
        stream.flush()

    def _write_lines(self, stream: TextIO, header: str, pieces: Iterable[str], code: str) -> None:
        lead = paint(f"{header}:", code, self._color) + " "
        for line in split_lines(pieces):
            stream.write(f"{lead}{line}\n")
        stream.flush()
