"""``-o json``: one JSON object per host as it finishes, and nothing else on stdout."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

from bastion.models import Event, HostFinished, HostOutput, HostResult
from bastion.result_record import result_to_json
from bastion.spool import SpoolSet


def write_json_line(
    out: TextIO, record: Mapping[str, object], streamed: Mapping[str, Iterable[str]]
) -> None:
    """Write ``record`` as one line of JSON, the strings of ``streamed`` keys piece by piece.

    The same text as ``json.dumps(record, ensure_ascii=False)`` with those values joined, but
    a 100 MB output is never one string in memory.
    """
    out.write("{")
    for index, (key, value) in enumerate(record.items()):
        out.write(", " if index else "")
        out.write(json.dumps(key) + ": ")
        if key in streamed:
            out.write('"')
            for piece in streamed[key]:
                out.write(json.dumps(piece, ensure_ascii=False)[1:-1])
            out.write('"')
        else:
            out.write(json.dumps(value, ensure_ascii=False))
    out.write("}\n")


class JsonLinesRenderer:
    """Writes each finished host as one line of JSON, flushed at once for streaming readers.

    A host's output is kept in a `SpoolSet` (on disk once large) until the host finishes.
    """

    def __init__(self, out: TextIO, spools: SpoolSet | None = None) -> None:
        self._out = out
        self._spools = spools if spools is not None else SpoolSet()

    def handle(self, event: Event) -> None:
        if isinstance(event, HostOutput):
            self._spools.add(event)
        elif isinstance(event, HostFinished):
            result = event.result
            streamed: dict[str, Iterable[str]] = {}
            for stream in ("stdout", "stderr"):
                spool = self._spools.get(result.host, stream)
                if spool is not None:  # the whole output; the result keeps only its start
                    streamed[stream] = spool.chunks()
            try:
                write_json_line(self._out, result_to_json(result), streamed)
                self._out.flush()
            finally:
                self._spools.discard(result.host)

    def finish(self, results: Sequence[HostResult]) -> None:
        """Every host was written when it finished; remove what is left on disk."""
        self._spools.close()
