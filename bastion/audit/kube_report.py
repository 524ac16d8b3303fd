"""The cluster access audit joined to a host audit report: which nodes get the kube probe, its
findings added to the report's, and the access matrix's cluster column.

`bastion audit --kube` probes every selected node; a plain `bastion audit` probes only the
inventory's control-plane nodes (group ``masters`` or label ``role=control-plane``) whose host
probe saw an admin kubeconfig, so an audit of hosts without Kubernetes costs nothing more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bastion.audit.access import AccessRow
from bastion.audit.checks import sort_findings
from bastion.audit.kube_audit import KubeAudit, KubeObservation, audit_kube
from bastion.audit.report import AuditReport
from bastion.cluster.topology import CONTROL_PLANE_LABEL, MASTERS_GROUP
from bastion.models import Host


def is_control_plane(host: Host) -> bool:
    key, value = CONTROL_PLANE_LABEL
    return MASTERS_GROUP in host.groups or host.labels.get(key) == value


def kube_targets(targets: Sequence[Host], report: AuditReport, everything: bool) -> list[Host]:
    """The nodes the kube probe runs on (see the module docstring)."""
    if everything:
        return list(targets)
    admin_hosts = {o.host for o in report.observations if o.kubeconfigs}
    return [h for h in targets if is_control_plane(h) and h.name in admin_hosts]


def default_cluster(targets: Sequence[Host]) -> str:
    """The cluster of hosts without a ``cluster`` label: the first control plane's name."""
    return next((h.name for h in targets if is_control_plane(h)), "cluster")


def cluster_cells(
    rows: Sequence[AccessRow], kube: KubeAudit, observations: Sequence[KubeObservation]
) -> dict[str, tuple[str, ...]]:
    """Matrix cells of the cluster column, by who: RBAC subjects and system:masters
    certificates (``user:alice``), and host rows (by ``host/account``) that reach
    cluster-admin through root on a control plane."""
    cells: dict[str, list[str]] = {}
    for admin in kube.admins:
        cells.setdefault(admin.subject, []).append(
            f"{admin.cluster}:cluster-admin{'' if admin.default else '*'}"
        )
    for grant in kube.grants:
        if grant.cluster_admin:
            continue
        cluster = next((o.cluster for o in observations if o.rbac is not None), "cluster")
        scope = "" if grant.scope == "cluster" else f"@{grant.scope}"
        who = f"{grant.subject_kind.lower()}:{grant.subject.removeprefix('system:serviceaccount:')}"
        cells.setdefault(who, []).append(f"{cluster}:{'+'.join(grant.reasons)}{scope}")
    clusters = {o.host: o.cluster for o in observations if o.control_plane}
    for row in rows:
        if row.cluster_admin and row.host in clusters:
            entry = f"{clusters[row.host]}:cluster-admin (root@{row.host})"
            cells.setdefault(f"{row.host}/{row.account}", [])
            if entry not in cells[f"{row.host}/{row.account}"]:
                cells[f"{row.host}/{row.account}"].append(entry)
    return {who: tuple(dict.fromkeys(entries)) for who, entries in cells.items()}


def with_kube(
    report: AuditReport,
    observations: Sequence[KubeObservation],
    now: dt.datetime,
    access_file: Path | None,
) -> AuditReport:
    """``report`` with the cluster findings added and the cluster column filled."""
    from bastion.audit.kube_audit import declared_cluster_admins

    declared = declared_cluster_admins(access_file) if access_file is not None else None
    kube = audit_kube(observations, now, declared)
    findings = sort_findings([*report.findings, *kube.findings])
    return replace(
        report,
        findings=tuple(findings),
        cluster=cluster_cells(report.rows, kube, observations),
    )
