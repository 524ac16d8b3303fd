"""What the agent and its clients say to each other: one JSON object per line.

A client connects to the socket and reads the server's ``hello``. Then it sends requests,
each with an ``id`` of its choosing, and may have many in flight at once on one socket:

- ``{"op": "run", "id": 7, "host": {...}, "options": {...}, "jumps": {...}, "command": "...",
  "timeout": 5.0, "stdin": "<base64>"}``: run a command on one host. The server answers with
  any number of ``{"id": 7, "stream": "stdout", "data": "..."}`` chunks, then exactly one
  ``{"id": 7, "result": {...}}`` (a `HostResult` without its output, which the chunks carried).
- ``{"op": "cancel", "id": 7}``: stop request 7 (its remote process group is signalled).
- ``{"op": "status", "id": 8}``: ``{"id": 8, "status": {...}}``.
- ``{"op": "stop", "id": 9}``: ``{"id": 9, "stopping": true}``, then the server exits.

A request the server cannot read gets ``{"id": ..., "error": "..."}``. Hosts carry only what
affects their connection (no labels or vars). Nothing here imports asyncssh.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from typing import Any

from bastion.hostkeys import HostKeyPolicy
from bastion.jumps import resolve_jump
from bastion.models import Host, HostResult, Reason, Status
from bastion.transport.base import ConnectOptions

VERSION = 1
LINE_LIMIT = 128 * 1024 * 1024
"""Longest line either side reads: a run's standard input (64 MiB at most) in base64 fits."""

Message = dict[str, Any]

_HOST_FIELDS = ("name", "address", "port", "user", "jump", "identity_file", "known_hosts")


def encode(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n"


def decode(line: bytes) -> Message:
    """One message; raises ValueError for anything that is not a JSON object (deep nesting
    and numbers of absurd length included: a message is data, never a crash)."""
    try:
        value = json.loads(line, parse_int=_bounded_int)
    except RecursionError:
        raise ValueError("a message nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError("a message must be a JSON object")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 32:
        raise ValueError(f"a number of {len(text)} digits")
    return int(text)


def host_to_wire(host: Host) -> Message:
    """Connection fields only; file paths made absolute here, as the agent's cwd is ``/``."""
    wire: Message = {name: getattr(host, name) for name in _HOST_FIELDS}
    for name in ("identity_file", "known_hosts"):
        if wire[name]:
            wire[name] = os.path.abspath(os.path.expanduser(wire[name]))
    wire["connect_timeout"] = host.connect_timeout
    return wire


def host_from_wire(wire: Mapping[str, Any]) -> Host:
    """A host from its wire form; raises ValueError (or TypeError, KeyError) when malformed."""
    host = Host(
        name=str(wire["name"]),
        address=str(wire["address"]),
        port=int(wire["port"]),
        user=_optional_str(wire.get("user")),
        jump=_optional_str(wire.get("jump")),
        identity_file=_optional_str(wire.get("identity_file")),
        known_hosts=_optional_str(wire.get("known_hosts")),
        connect_timeout=float(wire["connect_timeout"]),
    )
    return host


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def options_to_wire(options: ConnectOptions) -> Message:
    """The run's connection options, except the jump hosts (see `jumps_to_wire`)."""
    return {
        "connect_timeout": options.connect_timeout,
        "retries": options.retries,
        "retry_timeouts": options.retry_timeouts,
        "keepalive_interval": options.keepalive_interval,
        "keepalive_count_max": options.keepalive_count_max,
        "max_handshakes_per_server": options.max_handshakes_per_server,
        "max_handshakes": options.max_handshakes,
        "accept_new": options.host_keys.accept_new,
    }


def options_from_wire(wire: Mapping[str, Any], jumps: Mapping[str, Host]) -> ConnectOptions:
    timeout = wire.get("connect_timeout")
    return ConnectOptions(
        connect_timeout=None if timeout is None else float(timeout),
        retries=int(wire["retries"]),
        retry_timeouts=bool(wire.get("retry_timeouts", False)),
        keepalive_interval=float(wire["keepalive_interval"]),
        keepalive_count_max=int(wire["keepalive_count_max"]),
        max_handshakes_per_server=int(wire["max_handshakes_per_server"]),
        max_handshakes=int(wire["max_handshakes"]),
        host_keys=HostKeyPolicy(accept_new=bool(wire["accept_new"])),
        jump_hosts=dict(jumps),
    )


def jumps_to_wire(host: Host, inventory_hosts: Mapping[str, Host]) -> Message:
    """The inventory hosts on ``host``'s jump chain, by name (an ad-hoc jump needs none)."""
    chain: Message = {}
    current = host
    while current.jump and current.jump not in chain:
        jump = resolve_jump(current, inventory_hosts)
        if current.jump in inventory_hosts:
            chain[current.jump] = host_to_wire(jump)
        current = jump
    return chain


def jumps_from_wire(wire: Mapping[str, Any]) -> dict[str, Host]:
    return {str(name): host_from_wire(value) for name, value in wire.items()}


def stdin_to_wire(stdin: bytes | None) -> str | None:
    return None if stdin is None else base64.b64encode(stdin).decode("ascii")


def stdin_from_wire(wire: object) -> bytes | None:
    return None if wire is None else base64.b64decode(str(wire), validate=True)


def result_to_wire(result: HostResult) -> Message:
    """A result without its output: the client keeps the output from the streamed chunks."""
    return {
        "host": result.host,
        "address": result.address,
        "status": result.status.value,
        "exit_status": result.exit_status,
        "error": result.error,
        "duration_s": result.duration_s,
        "notes": list(result.notes),
        "reason": None if result.reason is None else result.reason.value,
    }


def result_from_wire(wire: Mapping[str, Any], stdout: str, stderr: str) -> HostResult:
    exit_status = wire.get("exit_status")
    error = wire.get("error")
    reason = wire.get("reason")
    return HostResult(
        host=str(wire["host"]),
        address=str(wire["address"]),
        status=Status(wire["status"]),
        exit_status=None if exit_status is None else int(exit_status),
        stdout=stdout,
        stderr=stderr,
        error=None if error is None else str(error),
        duration_s=float(wire["duration_s"]),
        notes=tuple(str(note) for note in wire.get("notes", ())),
        reason=_reason_from_wire(reason),
    )


def _reason_from_wire(value: object) -> Reason | None:
    """A result's reason; None for one this version does not know (another agent version)."""
    try:
        return Reason(str(value)) if value is not None else None
    except ValueError:
        return None
