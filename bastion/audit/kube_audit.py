"""The cluster access audit as data: what one node showed (`KubeObservation`) -> findings,
who holds cluster-admin per cluster, and drift against ``access.yaml``'s ``clusters:``.

Pure: the observations come from bastion.audit.kube_collect (one read-only command per node);
the parsing is bastion.audit.kube_rbac (RBAC) and bastion.audit.kube_node (kubeconfigs,
certificates, flags, kubelet config). Findings use the catalogue's K8S-10..K8S-24 rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bastion.audit.findings import Finding, Severity, finding
from bastion.audit.kube_node import (
    ClientCert,
    apiserver_problems,
    bootstrap_tokens,
    command_flags,
    days_left,
    etcd_problems,
    kubeconfig_certs,
    kubelet_problems,
    parse_certificates,
    valid_tokens,
)
from bastion.audit.kube_rbac import RbacGrant, RbacInputError, load_objects, powerful_grants
from bastion.errors import InputError

EXPIRY_WARN_DAYS = 30
TOKEN_LONG_S = 24 * 3600


@dataclass(slots=True)
class KubeObservation:
    """What the kube probe read on one node (every field optional: a worker has no RBAC)."""

    host: str
    cluster: str
    control_plane: bool = False
    rbac: str | None = None
    """``kubectl get clusterroles,roles,clusterrolebindings,rolebindings -A -o json``."""
    tokens: str | None = None
    apiserver: str | None = None
    etcd: str | None = None
    kubelet_config: str | None = None
    kubeconfigs: dict[str, str] = field(default_factory=dict)
    """path -> the kubeconfig's ``client-certificate-data`` lines only (never a key)."""
    certs: dict[str, bytes] = field(default_factory=dict)
    """path -> PEM of a public certificate (pki/*.crt)."""
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ClusterAdmin:
    """One way to be cluster-admin on a cluster."""

    cluster: str
    subject: str  # "user:NAME", "group:NAME", "serviceaccount:NS:NAME"
    via: str  # ClusterRoleBinding/NAME, or the kubeconfig file host:path
    default: bool


def subject_id(kind: str, name: str) -> str:
    """How access.yaml names a subject: ``user:alice``, ``group:ops``,
    ``serviceaccount:NS:NAME`` (from system:serviceaccount:NS:NAME)."""
    if kind == "ServiceAccount":
        return "serviceaccount:" + name.removeprefix("system:serviceaccount:")
    return f"{kind.lower()}:{name}"


def _grant_finding(grant: RbacGrant, host: str, cluster: str) -> Finding | None:
    if grant.default:
        return None
    who = f"{grant.subject_kind} {grant.subject}"
    where = f"{grant.binding} -> {grant.role}"
    scope = "cluster-wide" if grant.scope == "cluster" else f"in namespace {grant.scope}"
    reasons = ", ".join(grant.reasons)
    if grant.cluster_admin:
        rule = "K8S-10"
    elif any(r in grant.reasons for r in ("escalate", "bind", "impersonate")):
        rule = "K8S-13"
    elif any(r in grant.reasons for r in ("admin", "edit", "wildcard", "wildcard-verbs")):
        rule = "K8S-11"
    else:
        rule = "K8S-12"
    message = f"cluster {cluster}: {who} {scope} ({reasons}) through {where}"
    return finding(
        rule,
        host,
        message,
        account=subject_id(grant.subject_kind, grant.subject),
        file=grant.binding,
    )


def rbac_findings(seen: KubeObservation) -> tuple[list[Finding], list[RbacGrant]]:
    if seen.rbac is None:
        return [], []
    try:
        grants = powerful_grants(load_objects(seen.rbac))
    except RbacInputError as exc:
        seen.errors.append(f"RBAC objects: {exc}")
        return [], []
    found = [f for g in grants if (f := _grant_finding(g, seen.host, seen.cluster)) is not None]
    return found, grants


def cert_findings(
    seen: KubeObservation, now: dt.datetime
) -> tuple[list[Finding], list[ClientCert]]:
    found: list[Finding] = []
    clients: list[ClientCert] = []
    for path, text in sorted(seen.kubeconfigs.items()):
        for cert in kubeconfig_certs(text, path):
            clients.append(cert)
            if cert.system_masters:
                found.append(finding(
                    "K8S-14", seen.host,
                    f"{path}: client certificate {cert.user!r} in group system:masters "
                    "(cluster-admin that RBAC cannot revoke)",
                    account=f"user:{cert.user}", file=path,
                ))  # fmt: skip
            found += _expiry(seen.host, path, cert, now)
    for path, pem in sorted(seen.certs.items()):
        for cert in parse_certificates(pem, path):
            found += _expiry(seen.host, path, cert, now)
    return found, clients


def _expiry(host: str, path: str, cert: ClientCert, now: dt.datetime) -> list[Finding]:
    left = days_left(cert.not_after, now)
    if left >= EXPIRY_WARN_DAYS:
        return []
    when = cert.not_after.strftime("%Y-%m-%d %H:%M UTC")
    if left < 0:
        return [
            finding(
                "K8S-16",
                host,
                f"{path}: certificate {cert.user!r} expired {when}",
                file=path,
                severity=Severity.HIGH,
            )
        ]
    return [
        finding(
            "K8S-16",
            host,
            f"{path}: certificate {cert.user!r} expires {when} ({left:.0f} days)",
            file=path,
        )
    ]


def token_findings(seen: KubeObservation, now: dt.datetime) -> list[Finding]:
    if seen.tokens is None:
        return []
    found = []
    for token in valid_tokens(bootstrap_tokens(seen.tokens), now):
        if token.expires is None:
            found.append(
                finding(
                    "K8S-15",
                    seen.host,
                    f"cluster {seen.cluster}: bootstrap token {token.token_id} never expires",
                    account=f"token:{token.token_id}",
                    severity=Severity.HIGH,
                )
            )
            continue
        left = (token.expires - now).total_seconds()
        severity = Severity.HIGH if left > TOKEN_LONG_S else None
        until = token.expires.strftime("%Y-%m-%d %H:%M UTC")
        found.append(
            finding(
                "K8S-15",
                seen.host,
                f"cluster {seen.cluster}: bootstrap token {token.token_id} valid until {until}",
                account=f"token:{token.token_id}",
                severity=severity,
            )
        )
    return found


def flag_findings(seen: KubeObservation) -> list[Finding]:
    problems = []
    if seen.apiserver is not None:
        problems += [
            (p, "/etc/kubernetes/manifests/kube-apiserver.yaml")
            for p in apiserver_problems(command_flags(seen.apiserver))
        ]
    if seen.etcd is not None:
        problems += [
            (p, "/etc/kubernetes/manifests/etcd.yaml")
            for p in etcd_problems(command_flags(seen.etcd))
        ]
    if seen.kubelet_config is not None:
        problems += [
            (p, "/var/lib/kubelet/config.yaml") for p in kubelet_problems(seen.kubelet_config)
        ]
    return [finding(p.rule, seen.host, p.message, file=path) for p, path in problems]


@dataclass(frozen=True, slots=True)
class KubeAudit:
    findings: tuple[Finding, ...]
    admins: tuple[ClusterAdmin, ...]
    grants: tuple[RbacGrant, ...]
    errors: tuple[tuple[str, str], ...]  # (host, message)


def audit_kube(
    observations: Sequence[KubeObservation],
    now: dt.datetime,
    declared: Mapping[str, frozenset[str]] | None = None,
) -> KubeAudit:
    """Findings for every node's observation; with ``declared`` (cluster -> subjects that may
    hold cluster-admin), K8S-23 for each undeclared holder and K8S-24 for each declared one
    that holds nothing."""
    findings: list[Finding] = []
    admins: list[ClusterAdmin] = []
    grants: list[RbacGrant] = []
    for seen in observations:
        found, host_grants = rbac_findings(seen)
        findings += found
        grants += host_grants
        admins += [
            ClusterAdmin(seen.cluster, subject_id(g.subject_kind, g.subject), g.binding, g.default)
            for g in host_grants
            if g.cluster_admin
        ]
        found, certs = cert_findings(seen, now)
        findings += found
        admins += [
            ClusterAdmin(seen.cluster, f"user:{c.user}", f"{seen.host}:{c.file}", False)
            for c in certs
            if c.system_masters
        ]
        findings += token_findings(seen, now) + flag_findings(seen)
    if declared is not None:
        findings += drift_findings(
            admins, declared, [o for o in observations if o.rbac is not None]
        )
    unique = list(dict.fromkeys(admins))
    errors = tuple((o.host, e) for o in observations for e in o.errors)
    return KubeAudit(tuple(findings), tuple(unique), tuple(grants), errors)


def drift_findings(
    admins: Iterable[ClusterAdmin],
    declared: Mapping[str, frozenset[str]],
    audited: Sequence[KubeObservation],
) -> list[Finding]:
    """Holders of cluster-admin against the declared ones; defaults (system:masters through
    the rbac-defaults binding, kubeadm:cluster-admins) count as declared."""
    hosts = {o.cluster: o.host for o in audited}
    found: list[Finding] = []
    held: dict[str, set[str]] = {}
    for admin in admins:
        held.setdefault(admin.cluster, set()).add(admin.subject)
        allowed = declared.get(admin.cluster)
        if allowed is None or admin.default or admin.subject in allowed:
            continue
        host = hosts.get(admin.cluster, admin.via.split(":", 1)[0])
        found.append(
            finding(
                "K8S-23",
                host,
                f"cluster {admin.cluster}: {admin.subject} holds cluster-admin through "
                f"{admin.via}, not declared",
                account=admin.subject,
            )
        )
    for cluster, allowed in declared.items():
        if cluster not in hosts:
            continue
        for subject in sorted(allowed - held.get(cluster, set())):
            found.append(
                finding(
                    "K8S-24",
                    hosts[cluster],
                    f"cluster {cluster}: {subject} is declared a cluster-admin "
                    "but holds no binding",
                    account=subject,
                )
            )
    return found


class ClusterDeclarationError(InputError):
    """A bad ``clusters:`` section in access.yaml."""


def declared_cluster_admins(path: Path) -> dict[str, frozenset[str]] | None:
    """``clusters: {NAME: {cluster_admins: [user:alice, group:ops, serviceaccount:ns:sa]}}``
    of an access list; None when the file declares no clusters."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ClusterDeclarationError(f"cannot read the access list: {exc}", source=path) from None
    clusters = (document or {}).get("clusters") if isinstance(document, dict) else None
    if clusters is None:
        return None
    if not isinstance(clusters, dict):
        raise ClusterDeclarationError(
            "clusters must be a mapping of cluster name -> {cluster_admins: [...]}", source=path
        )
    declared: dict[str, frozenset[str]] = {}
    for name, body in clusters.items():
        if not isinstance(body, dict) or set(body) - {"cluster_admins"}:
            raise ClusterDeclarationError(
                f"clusters.{name}: only cluster_admins is known", source=path
            )
        subjects = body.get("cluster_admins") or []
        if not isinstance(subjects, list) or not all(
            isinstance(s, str)
            and s.split(":", 1)[0] in ("user", "group", "serviceaccount")
            and ":" in s
            for s in subjects
        ):
            raise ClusterDeclarationError(
                f"clusters.{name}.cluster_admins: a list of user:NAME, group:NAME or "
                "serviceaccount:NS:NAME",
                source=path,
            )
        declared[str(name)] = frozenset(subjects)
    return declared
