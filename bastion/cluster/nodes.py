"""The nodes of a cluster, from `kubectl get nodes -o json`, as rows and as JSON.

`capacity_rows` is the seed's ``jq '.items[] | {name: .metadata.name} + .status.capacity'``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

STATUS_COMMAND = "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o json"
"""Run (with sudo) on the control plane by `bastion cluster status`."""
CAPACITY_KEYS = ("cpu", "memory", "pods", "ephemeral-storage")
"""The capacity columns of the table, in order (JSON keeps every key the node reports)."""
_ROLE_PREFIX = "node-role.kubernetes.io/"


class NodesOutputError(ValueError):
    """The control plane's output is not the node list kubectl prints."""


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """One node as the API server reports it."""

    name: str
    roles: tuple[str, ...]
    ready: bool
    version: str
    internal_ip: str
    capacity: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The node for ``-o json``."""
        return {
            "name": self.name,
            "roles": list(self.roles),
            "ready": self.ready,
            "version": self.version,
            "internal_ip": self.internal_ip,
            "capacity": dict(self.capacity),
        }


def parse_nodes(text: str) -> list[NodeStatus]:
    """The nodes in ``kubectl get nodes -o json`` output, in its order; `NodesOutputError`
    when it is not that."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NodesOutputError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise NodesOutputError("not a node list (no 'items')")
    return [_node(item, index) for index, item in enumerate(items)]


def capacity_rows(nodes: Sequence[NodeStatus]) -> list[dict[str, str]]:
    """``{name} + .status.capacity`` per node, as the seed's jq prints it."""
    return [{"name": node.name, **node.capacity} for node in nodes]


def status_document(nodes: Sequence[NodeStatus], control_plane: str) -> dict[str, Any]:
    """The whole ``bastion cluster status -o json`` document."""
    return {
        "control_plane": control_plane,
        "ready": sum(node.ready for node in nodes),
        "total": len(nodes),
        "nodes": [node.as_json() for node in nodes],
    }


def _node(item: object, index: int) -> NodeStatus:
    if not isinstance(item, dict):
        raise NodesOutputError(f"item {index} is not an object")
    metadata = item.get("metadata") or {}
    status = item.get("status") or {}
    name = metadata.get("name")
    if not isinstance(name, str):
        raise NodesOutputError(f"item {index} has no metadata.name")
    labels = metadata.get("labels") or {}
    roles = tuple(
        sorted(key.removeprefix(_ROLE_PREFIX) for key in labels if key.startswith(_ROLE_PREFIX))
    )
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    addresses = status.get("addresses") or []
    internal = next((a.get("address", "") for a in addresses if a.get("type") == "InternalIP"), "")
    capacity = {str(k): str(v) for k, v in (status.get("capacity") or {}).items()}
    version = (status.get("nodeInfo") or {}).get("kubeletVersion", "")
    return NodeStatus(
        name=name,
        roles=roles,
        ready=ready,
        version=str(version),
        internal_ip=str(internal),
        capacity=capacity,
    )
