"""The lab's state file, ``<lab dir>/state.json``: which sshd processes the lab started.

It is what lets `up` be idempotent and `down` stop exactly the processes the lab started.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from bastion.errors import LabError
from bastion.private_files import write_private

STATE_NAME = "state.json"
STATE_SCHEMA = 1


class LabMode(StrEnum):
    """How the lab runs its nodes."""

    ROOT = "root"
    """One UTS + mount namespace per node, on 127.0.x.N port 22, with private /etc, /root."""
    USER = "user"
    """Plain sshd processes as the current user on 127.0.0.1 high ports; no isolation."""


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """One node as `up` started it."""

    name: str
    address: str
    port: int
    pid: int | None
    """The sshd listener's pid (the namespace wrapper execs sshd, so it is the same process)."""
    config: Path
    """The node's sshd_config; its path in /proc/PID/cmdline proves the pid is still ours."""
    mode: LabMode


@dataclass(frozen=True, slots=True)
class LabState:
    """Everything `up` recorded about the running lab."""

    subnet: str
    mode: LabMode
    nodes: tuple[NodeRecord, ...]

    def node(self, name: str) -> NodeRecord | None:
        """The record of node ``name``, if the lab has one."""
        return next((n for n in self.nodes if n.name == name), None)


def state_path(lab_dir: Path) -> Path:
    """Where the state file of the lab in ``lab_dir`` lives."""
    return lab_dir / STATE_NAME


def save_state(lab_dir: Path, state: LabState) -> None:
    """Write the state file atomically, 0600."""
    document = {
        "schema": STATE_SCHEMA,
        "subnet": state.subnet,
        "mode": str(state.mode),
        "nodes": [
            {
                "name": n.name,
                "address": n.address,
                "port": n.port,
                "pid": n.pid,
                "config": str(n.config),
                "mode": str(n.mode),
            }
            for n in state.nodes
        ],
    }
    write_private(state_path(lab_dir), json.dumps(document, indent=2) + "\n")


def load_state(lab_dir: Path) -> LabState | None:
    """The recorded state, or None when there is no lab; `LabError` when the file is invalid."""
    path = state_path(lab_dir)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LabError(f"{path}: unreadable lab state: {exc}") from exc
    try:
        return _parse(document)
    except (KeyError, TypeError, ValueError) as exc:
        raise LabError(
            f"{path}: invalid lab state ({exc!r}); `bastion lab down` resets it"
        ) from exc


def remove_state(lab_dir: Path) -> None:
    """Forget the lab (after `down`)."""
    state_path(lab_dir).unlink(missing_ok=True)


def _parse(document: Any) -> LabState:
    if document["schema"] != STATE_SCHEMA:
        raise ValueError(f"schema {document['schema']!r}, expected {STATE_SCHEMA}")
    nodes = tuple(
        NodeRecord(
            name=str(n["name"]),
            address=str(n["address"]),
            port=int(n["port"]),
            pid=None if n["pid"] is None else int(n["pid"]),
            config=Path(n["config"]),
            mode=LabMode(n["mode"]),
        )
        for n in document["nodes"]
    )
    return LabState(subnet=str(document["subnet"]), mode=LabMode(document["mode"]), nodes=nodes)
