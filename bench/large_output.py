"""Large-output benchmark: one host printing ``--mb`` MB, through bastion and through ssh alone.

A benchmark, not a test. It starts a one-node lab (see bench/startup.py) and runs, ``--rounds``
times each:

- ``ssh host 'CMD' > /dev/null``: the floor, OpenSSH's client writing nowhere;
- ``bastion run --out-dir DIR -o quiet 'CMD'``: every byte written to ``DIR/node1.out``;
- ``bastion run -o inline 'CMD' > /dev/null``: every line prefixed with the host name;
- ``bastion run -o json`` and ``-o grouped`` ``> /dev/null``: the whole output at the host's end,
  from a spool that moves to a private temporary file past 1 MiB (``bastion/spool.py``).

For each it reports throughput (MB/s of wall time), client CPU and bastion's peak RSS
(``ru_maxrss`` of the children, read after each tool's first run):

    .venv/bin/python bench/large_output.py --mb 100 --rounds 3 [--subnet 127.0.8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from precompile import compile_bastion
from startup import VENV_BIN, one_node_lab, tool_env

LINE = "0123456789abcdefghijklmnopqrstuvwxyz" * 2 + "0123456789abcdefghijklmnopqrstu"
"""A 103-character line, so the output is 104-byte lines as a log or a listing would be."""


def measure(argv: list[str], env: dict[str, str], rounds: int) -> tuple[float, float, int, bool]:
    """(median wall s, mean CPU s, peak RSS KiB of this tool's process, all ok)."""
    walls: list[float] = []
    ok = True
    # ru_maxrss of children is the largest child so far: measure each tool in its own process.
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(time.perf_counter() - t, u.ru_utime + u.ru_stime, u.ru_maxrss, rc)\n"
    )
    cpu: list[float] = []
    peak = 0
    for _ in range(rounds):
        done = subprocess.run(
            [sys.executable, "-c", probe, *argv],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        wall, used, rss, rc = done.stdout.split()
        walls.append(float(wall))
        cpu.append(float(used))
        peak = max(peak, int(rss))
        ok = ok and rc == "0"
    return statistics.median(walls), statistics.mean(cpu), peak, ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="megabytes printed (default 100)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--subnet", default="127.0.8", help="the lab node's /24 (default 127.0.8)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/large_output.py needs root: the lab node listens on port 22", file=sys.stderr)
        return 2
    compile_bastion()  # bench/precompile.py: as an installed copy would be
    size = args.mb * 1_000_000
    command = f"yes {LINE} | head -c {size}"
    load_before = os.getloadavg()[0]
    with one_node_lab(args.subnet) as (lab_dir, address), tempfile.TemporaryDirectory() as out:
        env = tool_env(lab_dir, lab_dir.parent / "state")
        bastion = str(VENV_BIN / "bastion")
        inventory = str(lab_dir / "inventory.yaml")
        ssh = [
            "ssh", "-F", "/dev/null", "-i", str(lab_dir / "id_ed25519"),
            "-o", f"UserKnownHostsFile={lab_dir / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"root@{address}", command,
        ]  # fmt: skip
        cases = [
            ("ssh host CMD > /dev/null", ssh),
            (
                "bastion --out-dir -o quiet",
                [bastion, "run", "-i", inventory, "--all", "-o", "quiet",
                 "--out-dir", str(Path(out) / "record"), command],
            ),
            ("bastion -o inline > /dev/null", [bastion, "run", "-i", inventory, "--all", command]),
            ("bastion -o json > /dev/null",
             [bastion, "run", "-i", inventory, "--all", "-o", "json", command]),
            ("bastion -o grouped > /dev/null",
             [bastion, "run", "-i", inventory, "--all", "-o", "grouped", command]),
        ]  # fmt: skip
        rows = [(name, *measure(argv, env, args.rounds)) for name, argv in cases]
    print(f"{args.mb} MB from one host; load average {load_before:.1f} before the runs")
    print("| client | MB/s (median wall) | client CPU s | peak RSS MB | ok |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, wall, cpu, rss, ok in rows:
        mbps = size / 1e6 / wall
        print(f"| {name} | {mbps:.0f} | {cpu:.2f} | {rss / 1024:.0f} | {'yes' if ok else 'NO'} |")
    return 0 if all(row[-1] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
