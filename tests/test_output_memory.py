"""A host printing a lot does not make bastion hold it all when the output mode streams it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli

BIG_BYTES = 30_000_000
PRINT_BIG = f"yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c {BIG_BYTES}"

RUN_AND_REPORT_PEAK_RSS = """
import resource, runpy, sys
sys.argv = ["bastion", *sys.argv[1:]]
try:
    runpy.run_module("bastion", run_name="__main__")
finally:
    print(f"peak-rss-kib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
"""


def _run_with_peak_rss(lab: Cli, *args: str) -> tuple[subprocess.CompletedProcess[str], int]:
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT_PEAK_RSS, *args],
        env=lab.env,
        cwd=lab.cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    peak = [line for line in done.stderr.splitlines() if line.startswith("peak-rss-kib ")]
    return done, int(peak[-1].split()[1])


@pytest.mark.lab
def test_out_dir_gets_every_byte_while_memory_stays_bounded(lab: Cli, tmp_path: Path) -> None:
    small, small_rss = _run_with_peak_rss(
        lab, "run", "-i", "lab", "-H", "node1", "-o", "quiet", "--out-dir", str(tmp_path / "a"),
        "echo small",
    )  # fmt: skip
    assert small.returncode == 0, small.stderr
    big, big_rss = _run_with_peak_rss(
        lab, "run", "-i", "lab", "-H", "node1", "-o", "quiet", "--out-dir", str(tmp_path / "b"),
        PRINT_BIG,
    )  # fmt: skip
    assert big.returncode == 0, big.stderr
    assert (tmp_path / "b" / "node1.out").stat().st_size == BIG_BYTES
    # Holding the output would cost several times its 30 MB (chunks, joined text, lines).
    assert (big_rss - small_rss) * 1024 < BIG_BYTES / 3, (small_rss, big_rss)


@pytest.mark.lab
def test_json_still_carries_the_whole_output(lab: Cli) -> None:
    done = lab(
        "run", "-i", "lab", "-H", "node1", "-o", "json", "head -c 200000 /dev/zero | tr '\\0' x"
    )
    assert done.returncode == 0, done.stderr
    assert '"stdout": "' + "x" * 200000 + '"' in done.stdout
