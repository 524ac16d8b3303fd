"""A host printing a lot does not make bastion hold it all, in any mode but -o diff.

Modes that stream (inline, quiet, --out-dir) keep only the start of each stream in the result;
-o json and -o grouped print a host's whole output at its end from a spool that moves to a
private temporary file past 1 MiB (bastion/spool.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli

BIG_BYTES = 30_000_000
PRINT_BIG = f"yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c {BIG_BYTES}"

RUN_AND_REPORT_PEAK_RSS = """
import resource, sys
from bastion.cli.main import main
sys.argv = ["bastion", *sys.argv[1:]]
try:
    main()
finally:
    sys.stdout.flush()
    print(f"peak-rss-kib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
"""


def _run_with_peak_rss(
    lab: Cli, *args: str, stdout: Path | None = None
) -> tuple[subprocess.CompletedProcess[str], int]:
    with open(stdout or os.devnull, "w") as sink:
        done = subprocess.run(
            [sys.executable, "-c", RUN_AND_REPORT_PEAK_RSS, *args],
            env={
                **lab.env,
                "TMPDIR": str(stdout.parent) if stdout else lab.env.get("TMPDIR", "/tmp"),
            },
            cwd=lab.cwd,
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
            timeout=180,
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


@pytest.mark.lab
@pytest.mark.parametrize("mode", ["json", "grouped"])
def test_json_and_grouped_print_every_byte_while_memory_stays_bounded(
    lab: Cli, tmp_path: Path, mode: str
) -> None:
    small, small_rss = _run_with_peak_rss(
        lab, "run", "-i", "lab", "-H", "node1", "-o", mode, "echo small",
        stdout=tmp_path / "small.txt",
    )  # fmt: skip
    assert small.returncode == 0, small.stderr
    big_out = tmp_path / "big.txt"
    big, big_rss = _run_with_peak_rss(
        lab, "run", "-i", "lab", "-H", "node1", "-o", mode, PRINT_BIG, stdout=big_out
    )
    assert big.returncode == 0, big.stderr
    if mode == "json":
        (line,) = big_out.read_text().splitlines()
        record = json.loads(line)
        assert (record["host"], len(record["stdout"])) == ("node1", BIG_BYTES)
        assert record["stdout"].startswith("0123456789abcdefghijklmnopqrstuvwxyz\n01234")
    else:
        header = "-" * 15 + "\nnode1 (1)\n" + "-" * 15 + "\n"
        # The output ends mid-line (head -c), so the block gets a closing newline.
        assert big_out.stat().st_size == len(header) + BIG_BYTES + 1
    assert (big_rss - small_rss) * 1024 < BIG_BYTES / 3, (small_rss, big_rss)
    # The spool's private directory (under TMPDIR, here tmp_path) is gone with the run.
    assert not list(tmp_path.glob("bastion-spool-*"))
