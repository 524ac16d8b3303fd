"""`bastion facts` as a table: one row per host, only the columns some host has a value for.

Rows are never cut or wrapped (the terminal wraps a long one); every value a host sent is
shown through `visible`, so a node's facts cannot write terminal sequences.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bastion.facts.collect import HostFactsResult
from bastion.facts.parse import HostFacts
from bastion.render.visible import visible


def render_facts_table(results: Sequence[HostFactsResult]) -> str:
    """The table, header first; hosts without facts get their status in the OS column."""
    rows = []
    for entry in results:
        if entry.facts is None:
            reason = entry.result.error or entry.result.status.value
            rows.append([entry.result.host, f"({entry.result.status.value}: {reason})"])
            continue
        cells = [get(entry.facts) for _, get in _COLUMNS]
        if not entry.facts.complete:
            cells[0] = f"{cells[0]} (incomplete)".strip()
        rows.append([entry.result.host, *cells])
    used = [0] + [
        index + 1
        for index in range(len(_COLUMNS))
        if any(len(row) > index + 1 and row[index + 1] for row in rows)
    ]
    header = ["HOST", *(name for name, _ in _COLUMNS)]
    table = [[header[i] for i in used]] + [
        [visible(row[i]) if i < len(row) else "" for i in used] for row in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(used))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in table]  # fmt: skip
    return "\n".join(lines) + "\n"


def _size(kb: int) -> str:
    for unit, scale in (("T", 1024**3), ("G", 1024**2), ("M", 1024)):
        if kb >= scale:
            return f"{kb / scale:.1f}{unit}"
    return f"{kb}K"


def _root(facts: HostFacts) -> str:
    for disk in facts.disks:
        if disk.mount == "/":
            percent = 100 * disk.used_kb // disk.size_kb if disk.size_kb else 0
            return f"{_size(disk.used_kb)}/{_size(disk.size_kb)} ({percent}%)"
    return ""


def _addresses(facts: HostFacts) -> list[str]:
    """The host's IPv4 addresses off loopback, without their prefix length."""
    return [
        entry.address.split("/", 1)[0]
        for entry in facts.addresses
        if entry.family == "inet" and entry.interface != "lo"
    ]


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days}d{hours}h"
    return f"{hours}h{rest // 60}m" if hours else f"{rest // 60}m"


_COLUMNS: list[tuple[str, Callable[[HostFacts], str]]] = [
    ("OS", lambda f: f.os_name or " ".join(filter(None, (f.os_id, f.os_version)))),
    ("KERNEL", lambda f: f.kernel or ""),
    ("ARCH", lambda f: f.arch or ""),
    ("CPUS", lambda f: "" if f.cpus is None else str(f.cpus)),
    ("MEMORY", lambda f: "" if f.memory_kb is None else _size(f.memory_kb)),
    ("ROOT", _root),
    ("ADDRESSES", lambda f: ",".join(_addresses(f))),
    ("UPTIME", lambda f: "" if f.uptime_s is None else _duration(f.uptime_s)),
    ("RUNTIME", lambda f: ",".join(f.runtimes)),
    ("KUBELET", lambda f: f.kubelet or ""),
]
