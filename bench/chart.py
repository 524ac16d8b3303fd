"""The fan-out benchmark as a picture: wall time and client CPU per host against host count.

Drawn by ``bench/fanout.py --sweep 10,50,100 --chart FILE.png``, or afterwards from its JSON:

    .venv/bin/python bench/chart.py bench-sweep.json docs/performance-fanout.png

Left: median wall time per tool (the bars span the fastest and slowest counted run). Right:
median client CPU per host (the tool's whole process tree). One line per tool; a tool that
failed a run at some count has no point there. matplotlib with the Agg backend (no display).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STYLE = {
    "bastion": ("#d62728", "o", 2.6, "-"),
    "bastion-warm": ("#ff7f0e", "o", 2.2, "--"),
    "bastion-first": ("#e377c2", "o", 2.2, ":"),
    "pdsh": ("#1f77b4", "s", 1.4, "-"),
    "pssh": ("#2ca02c", "^", 1.4, "-"),
    "clush": ("#9467bd", "v", 1.4, "-"),
    "bare-asyncssh": ("#7f7f7f", "x", 1.2, ":"),
    "pssh-library": ("#17becf", "D", 1.4, "-"),
    "ansible": ("#8c564b", "P", 1.4, "-"),
}
"""Colour, marker, line width and line style per tool: every tool of ``bench/fanout.py`` has
its own colour (bastion red and thick, the warm run orange and dashed)."""

FALLBACK_STYLE = ("#444444", "*", 1.2, "-.")
"""For a tool missing from ``STYLE``: dark grey, stars, dash-dot, which no listed tool uses
(rather than matplotlib's colour cycle, whose first colours are the listed tools' own)."""

Points = Sequence[tuple[int, Sequence[dict[str, Any]]]]
"""(host count, the summaries of fanout.py at that count as dicts)."""


def draw(points: Points, out: Path, subtitle: str, cheap: Sequence[int] = ()) -> None:
    """Write the two-panel PNG for ``points`` to ``out``; ``cheap``: the host counts served by
    bench/scale.py's in-process hosts instead of sshd."""
    cheap_note = f" ({', '.join(map(str, cheap))}: cheap in-process hosts)" if cheap else ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tools: list[str] = []
    for _, summaries in points:
        tools += [s["tool"] for s in summaries if s["tool"] not in tools]
    figure, (wall_axes, cpu_axes) = plt.subplots(1, 2, figsize=(12, 5), dpi=110)
    for tool in tools:
        rows = [
            (hosts, s)
            for hosts, summaries in points
            for s in summaries
            if s["tool"] == tool and s.get("wall_s") is not None
        ]
        if not rows:
            continue
        color, marker, width, line = STYLE.get(tool, FALLBACK_STYLE)
        counts = [hosts for hosts, _ in rows]
        walls = [s["wall_s"] for _, s in rows]
        spread = [
            [s["wall_s"] - s["wall_min_s"] for _, s in rows],
            [s["wall_max_s"] - s["wall_s"] for _, s in rows],
        ]
        wall_axes.errorbar(
            counts, walls, yerr=spread, label=tool, color=color, marker=marker,
            linewidth=width, linestyle=line, capsize=3,
        )  # fmt: skip
        cpu_axes.plot(
            counts, [s["cpu_ms_per_host"] for _, s in rows], label=tool, color=color,
            marker=marker, linewidth=width, linestyle=line,
        )  # fmt: skip
    wall_axes.set(title="wall time (median; bars: min-max)", xlabel="hosts", ylabel="seconds (log)")
    cpu_axes.set(
        title="client CPU per host (median)", xlabel="hosts", ylabel="ms of CPU per host (log)"
    )
    from matplotlib.ticker import ScalarFormatter

    for axes in (wall_axes, cpu_axes):
        axes.set_yscale("log")  # Ansible is ten times the others
        axes.yaxis.set_major_formatter(ScalarFormatter())
        axes.grid(True, which="both", alpha=0.3)
        counts = sorted({hosts for hosts, _ in points})
        if counts and counts[-1] >= 100 * counts[0]:
            axes.set_xscale("log")  # 1 to 1,000 hosts
        axes.set_xticks(counts)
        axes.xaxis.set_major_formatter(ScalarFormatter())
        axes.xaxis.set_minor_formatter("")
    wall_axes.legend(fontsize=8)
    figure.suptitle(
        f"`true` on N OpenSSH lab hosts{cheap_note} (bastion: cold, --no-agent; bastion-first: "
        "a session's first run, warm by default;\nbastion-warm: through the agent's live "
        f"connections; every other tool cold)\n{subtitle}",
        fontsize=10,
    )
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)


def from_json(path: Path) -> tuple[Points, str]:
    """The points and subtitle of a ``fanout.py --json`` file (one count or a sweep)."""
    record = json.loads(path.read_text(encoding="utf-8"))
    context = record["context"]
    if "points" in record:
        points = [(p["hosts"], p["summary"]) for p in record["points"]]
    else:  # written before --sweep existed: one host count
        points = [(record["config"]["hosts"], record["summary"])]
    subtitle = (
        f"{context['date']}, {context['nproc']} cores, load {context['load_before']} -> "
        f"{context.get('load_after', '?')}, {record['config']['rounds']} rounds, "
        f"{record['config']['fanout']} at once"
    )
    return points, subtitle


def cheap_counts(path: Path) -> list[int]:
    """The host counts of a ``fanout.py --json`` file served by cheap in-process hosts."""
    record = json.loads(path.read_text(encoding="utf-8"))
    return [p["hosts"] for p in record.get("points", []) if "in-process" in p.get("servers", "")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a bench/fanout.py --json file")
    parser.add_argument("out", type=Path, help="the PNG to write")
    args = parser.parse_args(argv)
    points, subtitle = from_json(args.results)
    draw(points, args.out, subtitle, cheap_counts(args.results))
    print(f"chart: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
