"""The tables of docs/performance.md from a `bench/fanout.py --json` file: per host count, each
tool's median wall time against the fastest of pdsh, pssh and clush and against cold pdsh.

    .venv/bin/python bench/sweep_table.py bench/results/sweep-issue16.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PEERS = ("pdsh", "pssh", "clush")


def tables(record: dict[str, Any]) -> str:
    """Markdown: one table per host count."""
    out = []
    for point in record["points"]:
        hosts = point["hosts"]
        by_tool = {s["tool"]: s for s in point["summary"] if s.get("wall_s") is not None}
        peers = [by_tool[p] for p in PEERS if p in by_tool]
        fastest = min(peers, key=lambda s: s["wall_s"])
        pdsh = by_tool.get("pdsh")
        servers = point.get("servers", "OpenSSH sshd")
        out.append(f"\n#### {hosts} host{'s' if hosts != 1 else ''} ({servers})\n")
        out.append(
            "| tool | wall s, median (min-max) | client CPU ms (per host) "
            f"| wall / fastest peer ({fastest['tool']}) | wall / cold pdsh |"
        )
        out.append("| --- | ---: | ---: | ---: | ---: |")
        for s in point["summary"]:
            if s.get("wall_s") is None:
                out.append(f"| {s['tool']} | failed | | | |")
                continue
            cpu_ms = s["cpu_ms_per_host"] * hosts
            vs_pdsh = f"{s['wall_s'] / pdsh['wall_s']:.2f}" if pdsh else "-"
            out.append(
                f"| {s['tool']} | {s['wall_s']:.2f} ({s['wall_min_s']:.2f}-{s['wall_max_s']:.2f}) "
                f"| {cpu_ms:.0f} ({s['cpu_ms_per_host']:.1f}) "
                f"| {s['wall_s'] / fastest['wall_s']:.2f} | {vs_pdsh} |"
            )
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    record = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    sys.stdout.write(tables(record))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
