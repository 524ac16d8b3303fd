"""Renderer cost: the inline renderer over 100 MB of short lines, with and without `visible`.

A benchmark, not a test: run it by hand.

    .venv/bin/python bench/render_inline.py

Every host line passes through `bastion.render.visible.visible` (control characters shown as
`cat -v` does) unless `--raw`; this prints the CPU seconds the inline renderer spends on
100 MB of 41-byte lines in 64 KiB chunks both ways, and on text with a control character in
every chunk (the slow path).
"""

from __future__ import annotations

import io
import time

from bastion.models import HostOutput
from bastion.render.inline import InlineRenderer

LINE = "x" * 40 + "\n"
CHUNKS = 1600


class _Null(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


def measure(chunk: str, raw: bool) -> float:
    renderer = InlineRenderer(_Null(), _Null(), 5, raw=raw)
    event = HostOutput("node1", "stdout", chunk)
    started = time.process_time()
    for _ in range(CHUNKS):
        renderer.handle(event)
    return time.process_time() - started


def main() -> None:
    clean = LINE * 1600
    dirty = "\x1b[1m" + clean
    size = len(clean) * CHUNKS / 1e6
    print(f"{size:.0f} MB of short lines, inline renderer, CPU seconds:")
    print(f"  --raw                       {measure(clean, True):.2f}")
    print(f"  visible, no control chars   {measure(clean, False):.2f}")
    print(f"  visible, one ESC per chunk  {measure(dirty, False):.2f}")


if __name__ == "__main__":
    main()
