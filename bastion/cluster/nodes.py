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
NODES_OUTPUT_CHARS = 32 * 1024 * 1024
"""What `cluster status` keeps of kubectl's output: a node's JSON is 5-40 KB (its image list),
so the 64 KiB every other run keeps would cut a three-node cluster's list."""
MAX_NUMBER_DIGITS = 64
MAX_DEPTH = 200


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
    when it is not that. Total: any text gives nodes or that error, never another exception
    (numbers are length-checked before conversion, nesting is bounded, wrong types are
    skipped or named)."""
    if _too_deep(text):
        raise NodesOutputError(f"nested deeper than {MAX_DEPTH} levels")
    try:
        document = json.loads(text, parse_int=_bounded_int, parse_float=_bounded_float)
    except json.JSONDecodeError as exc:
        raise NodesOutputError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    except (ValueError, RecursionError) as exc:
        raise NodesOutputError(f"not JSON kubectl prints ({exc})") from None
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
    metadata = _mapping(item.get("metadata"))
    status = _mapping(item.get("status"))
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise NodesOutputError(f"item {index} has no metadata.name")
    labels = _mapping(metadata.get("labels"))
    roles = tuple(
        sorted(
            key.removeprefix(_ROLE_PREFIX)
            for key in labels
            if isinstance(key, str) and key.startswith(_ROLE_PREFIX)
        )
    )
    conditions = [c for c in _sequence(status.get("conditions")) if isinstance(c, dict)]
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    addresses = [a for a in _sequence(status.get("addresses")) if isinstance(a, dict)]
    internal = next((a.get("address", "") for a in addresses if a.get("type") == "InternalIP"), "")
    capacity = {
        str(k): str(v)
        for k, v in _mapping(status.get("capacity")).items()
        if isinstance(v, str | int | float)
    }
    version = _mapping(status.get("nodeInfo")).get("kubeletVersion", "")
    return NodeStatus(
        name=name,
        roles=roles,
        ready=ready,
        version=version if isinstance(version, str) else "",
        internal_ip=internal if isinstance(internal, str) else "",
        capacity=capacity,
    )


def _mapping(value: object) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _sequence(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a number of {len(text)} digits")
    return int(text)


def _bounded_float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a number of {len(text)} characters")
    return float(text)


def _too_deep(text: str) -> bool:
    """Whether brackets nest deeper than `MAX_DEPTH` (checked before the recursive parser)."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False
