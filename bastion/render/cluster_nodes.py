"""`bastion cluster status` in the terminal: nodes, roles, Ready, versions, capacity.

Every cell comes from the cluster's API (a node can name itself anything): shown through
`visible`, and never read as rich markup.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from bastion.cluster.nodes import CAPACITY_KEYS, NodeStatus
from bastion.render.visible import visible


def render_nodes(
    nodes: Sequence[NodeStatus], control_plane: str, *, width: int = 120, color: bool = False
) -> str:
    """The node table and a one-line verdict, as text (ANSI colours only when ``color``)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

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
        ready = Text("Ready", "green") if node.ready else Text("NotReady", "red")
        cells = (
            node.name,
            ",".join(node.roles) or "<none>",
            node.version,
            node.internal_ip,
            *(node.capacity.get(key, "-") for key in CAPACITY_KEYS),
        )
        shown = [Text(visible(str(cell))) for cell in cells]
        table.add_row(*shown[:2], ready, *shown[2:])
    console.print(table)
    ready_count = sum(node.ready for node in nodes)
    console.print(
        visible(f"{ready_count}/{len(nodes)} nodes Ready (control plane {control_plane})"),
        markup=False,
    )
    return buffer.getvalue()
