"""The inventory `bastion lab up` writes for `bastion run -i lab` (format: docs/inventory.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.lab.keys import CLIENT_KEY_NAME, DEFAULT_SSH_PORT, KNOWN_HOSTS_NAME
from bastion.private_files import write_private

# Short enough for a lab on loopback, long enough for 200 nodes starting their handshakes.
LAB_CONNECT_TIMEOUT_S = 5

_PLAIN_SCALAR = re.compile(r"[A-Za-z_][A-Za-z0-9_.@-]*")
# Words YAML 1.1 reads as booleans or null rather than strings.
_YAML_SPECIAL = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


@dataclass(frozen=True, slots=True)
class InventoryHost:
    """One lab node as the inventory describes it."""

    name: str
    address: str
    port: int
    role: str


def node_role(index: int) -> str:
    """node1 is the control plane, the others are workers (as in the seed's kubeadm cluster)."""
    return "control-plane" if index == 1 else "worker"


def render_lab_inventory(hosts: Sequence[InventoryHost], *, user: str) -> str:
    """The lab inventory's YAML: paths relative to its directory, labels, two groups."""
    lines = [
        "# written by `bastion lab up`; rewritten on every `up`, removed by `bastion lab down`.",
        "# Paths are relative to this file's directory. Use it with `bastion run -i lab ...`.",
        "defaults:",
        f"  user: {_scalar(user)}",
        f"  identity_file: {CLIENT_KEY_NAME}",
        f"  known_hosts: {KNOWN_HOSTS_NAME}",
        f"  connect_timeout: {LAB_CONNECT_TIMEOUT_S}",
        "hosts:",
    ]
    for host in hosts:
        port = "" if host.port == DEFAULT_SSH_PORT else f", port: {host.port}"
        lines.append(
            f"  {host.name}: {{address: {host.address}{port}, "
            f"labels: {{role: {host.role}, env: lab}}}}"
        )
    masters = [h.name for h in hosts if h.role == "control-plane"]
    lines += [
        "groups:",
        f"  masters: [{', '.join(masters)}]",
        "  workers: {selector: role=worker}",
    ]
    return "\n".join(lines) + "\n"


def write_lab_inventory(path: Path, hosts: Sequence[InventoryHost], *, user: str) -> None:
    """Write the lab inventory atomically (0600: it names the lab's private key)."""
    write_private(path, render_lab_inventory(hosts, user=user))


def _scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain when that reads back as the same string, else quoted."""
    if _PLAIN_SCALAR.fullmatch(value) and value.lower() not in _YAML_SPECIAL:
        return value
    return json.dumps(value)  # a JSON string is a valid YAML double-quoted scalar
