"""Which inventory host is the control plane, and the playbook variables of a bootstrap."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bastion.errors import UsageError
from bastion.inventory import Inventory
from bastion.models import Host

MASTERS_GROUP = "masters"
CONTROL_PLANE_LABEL = ("role", "control-plane")
CNIS = ("weave", "calico", "flannel")
DEFAULT_POD_CIDR = "10.244.0.0/16"
_MINOR_VERSION = re.compile(r"1\.[0-9]{1,2}")


def control_plane(inventory: Inventory) -> Host:
    """The control plane: the first host of group ``masters``, else the first host labelled
    ``role=control-plane``; a `UsageError` naming the inventory when there is neither."""
    members = inventory.groups.get(MASTERS_GROUP, ())
    if members:
        return inventory.hosts[members[0]]
    key, value = CONTROL_PLANE_LABEL
    for host in inventory.hosts.values():
        if host.labels.get(key) == value:
            return host
    raise UsageError(
        f"no control plane: give the inventory a group {MASTERS_GROUP!r} "
        f"or label a host {key}={value}",
        source=inventory.path,
    )


@dataclass(frozen=True, slots=True)
class BootstrapSettings:
    """What `bastion cluster bootstrap` was asked for."""

    cni: str
    k8s_version: str
    pod_cidr: str = DEFAULT_POD_CIDR


def bootstrap_vars(settings: BootstrapSettings, inventory: Inventory) -> dict[str, str]:
    """The extra variables site.yaml runs with; checks them first (`UsageError`).

    The pod CIDR must be a network that contains none of the inventory's addresses: a pod
    range over the nodes' own network (Calico's example 192.168.0.0/16 over Vagrant's
    192.168.56.0/24) breaks routing to the nodes.
    """
    if settings.cni not in CNIS:
        raise UsageError(f"must be one of {', '.join(CNIS)}, got {settings.cni!r}", source="--cni")
    if not _MINOR_VERSION.fullmatch(settings.k8s_version):
        raise UsageError(
            f"must be a minor version like 1.33, got {settings.k8s_version!r}",
            source="--k8s-version",
        )
    try:
        network = ipaddress.ip_network(settings.pod_cidr)
    except ValueError as exc:
        raise UsageError(str(exc), source="--pod-cidr") from None
    for host in inventory.hosts.values():
        try:
            address = ipaddress.ip_address(host.address)
        except ValueError:
            continue  # a DNS name: nothing to compare
        if address in network:
            raise UsageError(
                f"{network} contains {host.name}'s address {address}: choose a pod range "
                "that does not overlap the nodes' network",
                source="--pod-cidr",
            )
    return {
        "cni": settings.cni,
        "k8s_version": settings.k8s_version,
        "pod_cidr": str(network),
        "control_plane": control_plane(inventory).name,
    }


def control_plane_vars(
    inventory: Inventory, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The variables every cluster playbook needs: ``control_plane`` plus ``extra``."""
    return {"control_plane": control_plane(inventory).name, **(extra or {})}
