"""Jump hosts (ProxyJump): which host a target is reached through."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from bastion.errors import InventoryError
from bastion.models import Host

_SPEC = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?P<address>\[[^\]]+\]|[^:@\s]+)(?::(?P<port>\d+))?$")


def resolve_jump(host: Host, inventory_hosts: Mapping[str, Host]) -> Host:
    """The host that ``host.jump`` names: an inventory host, or an ad-hoc ``[user@]addr[:port]``.

    An ad-hoc jump host inherits the target's identity file, known_hosts and timeout, as
    OpenSSH's ProxyJump does with the options given on the command line.
    """
    if host.jump is None:
        raise ValueError(f"{host.name} has no jump host")
    named = inventory_hosts.get(host.jump)
    if named is not None:
        return named
    match = _SPEC.match(host.jump)
    if match is None:
        raise InventoryError(f"host {host.name}: jump {host.jump!r} is not [user@]host[:port]")
    address = match["address"].strip("[]")
    return replace(
        host,
        name=host.jump,
        address=address,
        port=int(match["port"] or 22),
        user=match["user"] or host.user,
        jump=None,
        labels={},
        vars={},
        groups=(),
    )


def check_jump_chains(targets: list[Host], inventory_hosts: Mapping[str, Host]) -> None:
    """Refuse a jump chain that loops back on itself, before any connection is tried."""
    for target in targets:
        seen = [target.name]
        current = target
        while current.jump:
            current = resolve_jump(current, inventory_hosts)
            if current.name in seen:
                chain = " -> ".join([*seen, current.name])
                raise InventoryError(f"jump hosts form a loop: {chain}")
            seen.append(current.name)
