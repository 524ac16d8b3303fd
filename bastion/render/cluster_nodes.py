"""`bastion cluster status` in the terminal: nodes, roles, Ready, versions, capacity."""

from __future__ import annotations

import io
from collections.abc import Sequence

from bastion.cluster.nodes import CAPACITY_KEYS, NodeStatus


def render_nodes(
    nodes: Sequence[NodeStatus], control_plane: str, *, width: int = 120, color: bool = False
) -> str:
    """The node table and a one-line verdict, as text (ANSI colours only when ``color``)."""
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        highlight=False,
        soft_wrap=False,
    )
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("NODE", "ROLES", "READY", "VERSION", "INTERNAL-IP"):
        table.add_column(column, no_wrap=True)
    for key in CAPACITY_KEYS:
        table.add_column(key.upper(), justify="right", no_wrap=True)
    for node in nodes:
        ready = "[green]Ready[/]" if node.ready else "[red]NotReady[/]"
        table.add_row(
            node.name,
            ",".join(node.roles) or "<none>",
            ready,
            node.version,
            node.internal_ip,
            *(node.capacity.get(key, "-") for key in CAPACITY_KEYS),
        )
    console.print(table)
    ready_count = sum(node.ready for node in nodes)
    console.print(
        f"{ready_count}/{len(nodes)} nodes Ready (control plane {control_plane})", markup=False
    )
    return buffer.getvalue()
