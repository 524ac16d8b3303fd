"""Who can do what in a cluster, from RBAC objects as `kubectl get ... -o json` prints them.

Pure: the input is kubectl's JSON (a ``List`` of ClusterRoles, Roles, ClusterRoleBindings and
RoleBindings, as ``kubectl get clusterroles,roles,clusterrolebindings,rolebindings -A -o json``
prints them); the output is one `RbacGrant` per (binding, subject) whose role is powerful.
Aggregated ClusterRoles (``aggregationRule.clusterRoleSelectors``) are resolved here, the way
the clusterrole-aggregation controller fills them (pkg/controller/clusterroleaggregation), so
a freshly created aggregate is judged by what it will hold. What counts as powerful follows
kubectl-who-can / rakkess questions and the CIS Kubernetes benchmark 5.1 (5.1.1 cluster-admin,
5.1.2 secrets, 5.1.3 wildcards, 5.1.8 bind/escalate/impersonate).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ADMIN_ROLES = ("cluster-admin", "admin", "edit")
DANGEROUS_VERBS = ("escalate", "bind", "impersonate")
SECRET_READ_VERBS = ("get", "list", "watch", "*")
DEFAULTS_LABEL = "kubernetes.io/bootstrapping"
"""ClusterRoles/Bindings the API server creates itself carry ``kubernetes.io/bootstrapping:
rbac-defaults`` (plugin/pkg/auth/authorizer/rbac/bootstrappolicy)."""
KUBEADM_DEFAULT_BINDINGS = frozenset({"kubeadm:cluster-admins"})
"""kubeadm >= 1.29 binds group kubeadm:cluster-admins (admin.conf's group) to cluster-admin."""


class RbacInputError(ValueError):
    """The text is not kubectl's JSON for RBAC objects."""


@dataclass(frozen=True, slots=True)
class Rule:
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    non_resource_urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Role:
    kind: str  # ClusterRole | Role
    name: str
    namespace: str | None
    labels: Mapping[str, str]
    rules: tuple[Rule, ...]
    selectors: tuple[Mapping[str, Any], ...] = ()
    """aggregationRule.clusterRoleSelectors (label selectors), when aggregated."""


@dataclass(frozen=True, slots=True)
class RbacGrant:
    """A subject bound to a powerful role."""

    subject_kind: str  # User | Group | ServiceAccount
    subject: str  # the name; service accounts as system:serviceaccount:NS:NAME
    role: str  # ClusterRole/NAME or Role/NS/NAME
    binding: str  # ClusterRoleBinding/NAME or RoleBinding/NS/NAME
    scope: str  # "cluster" or the namespace the binding gives it in
    reasons: tuple[str, ...]  # cluster-admin, admin, edit, wildcard, secrets, escalate, ...
    default: bool
    """A binding Kubernetes or kubeadm makes itself (expected, reported as such)."""

    @property
    def cluster_admin(self) -> bool:
        return self.scope == "cluster" and (
            "cluster-admin" in self.reasons or "wildcard" in self.reasons
        )


def _items(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, dict):
        raise RbacInputError("expected a JSON object (kubectl -o json)")
    if document.get("kind") in ("List",) or str(document.get("kind", "")).endswith("List"):
        items = document.get("items")
        if not isinstance(items, list):
            raise RbacInputError(f"{document.get('kind')} without items")
        return [i for i in items if isinstance(i, dict)]
    return [document]


def load_objects(*texts: str) -> list[dict[str, Any]]:
    """Every object of one or more ``kubectl get ... -o json`` outputs."""
    objects: list[dict[str, Any]] = []
    for text in texts:
        try:
            objects += _items(json.loads(text))
        except json.JSONDecodeError as exc:
            raise RbacInputError(f"not JSON: {exc.msg} (line {exc.lineno})") from None
    return objects


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _rule(raw: Mapping[str, Any]) -> Rule:
    return Rule(
        api_groups=_strings(raw.get("apiGroups")),
        resources=_strings(raw.get("resources")),
        verbs=_strings(raw.get("verbs")),
        non_resource_urls=_strings(raw.get("nonResourceURLs")),
    )


def roles_of(objects: Iterable[Mapping[str, Any]]) -> dict[str, Role]:
    """ClusterRoles and Roles by key (``ClusterRole/NAME``, ``Role/NS/NAME``)."""
    found: dict[str, Role] = {}
    for obj in objects:
        kind = obj.get("kind")
        if kind not in ("ClusterRole", "Role"):
            continue
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") if kind == "Role" else None
        selectors = (obj.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
        role = Role(
            kind=str(kind),
            name=str(meta.get("name", "")),
            namespace=namespace,
            labels=dict(meta.get("labels") or {}),
            rules=tuple(_rule(r) for r in obj.get("rules") or [] if isinstance(r, dict)),
            selectors=tuple(s for s in selectors if isinstance(s, dict)),
        )
        found[role_key(role.kind, role.name, namespace)] = role
    return found


def role_key(kind: str, name: str, namespace: str | None) -> str:
    return f"Role/{namespace}/{name}" if kind == "Role" else f"ClusterRole/{name}"


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels and matchExpressions) against ``labels``."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = set(expression.get("values") or [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def effective_rules(
    role: Role, roles: Mapping[str, Role], seen: frozenset[str] = frozenset()
) -> tuple[Rule, ...]:
    """The role's rules, with an aggregated ClusterRole's selected roles' rules added
    (recursively; aggregation cycles are cut)."""
    rules = list(role.rules)
    key = role_key(role.kind, role.name, role.namespace)
    for selector in role.selectors:
        for other_key, other in roles.items():
            if other.kind != "ClusterRole" or other_key == key or other_key in seen:
                continue
            if selector_matches(selector, other.labels):
                for rule in effective_rules(other, roles, seen | {key}):
                    if rule not in rules:
                        rules.append(rule)
    return tuple(rules)


def powers(role_name: str, rules: Sequence[Rule]) -> tuple[str, ...]:
    """Why a role is powerful, in a fixed order (empty: it is not)."""
    reasons: list[str] = []
    if role_name in ADMIN_ROLES:
        reasons.append(role_name)
    for rule in rules:
        if "*" in rule.verbs and ("*" in rule.resources or "*" in rule.non_resource_urls):
            reasons.append("wildcard")
        elif "*" in rule.verbs:
            reasons.append("wildcard-verbs")
        if ("secrets" in rule.resources or "*" in rule.resources) and any(
            v in SECRET_READ_VERBS for v in rule.verbs
        ):
            reasons.append("secrets")
        reasons += [v for v in DANGEROUS_VERBS if v in rule.verbs]
        if "*" in rule.verbs:
            # "*" includes escalate and bind (meaningful on roles) and impersonate (on users,
            # groups, service accounts): the RBAC authorizer's verb matching (rbac/v1 helpers
            # VerbMatches) treats "*" as every verb.
            if {"*", "roles", "clusterroles"} & set(rule.resources):
                reasons += ["escalate", "bind"]
            if {"*", "users", "groups", "serviceaccounts"} & set(rule.resources):
                reasons.append("impersonate")
    return tuple(dict.fromkeys(reasons))


def _subject_name(subject: Mapping[str, Any], binding_namespace: str | None) -> tuple[str, str]:
    kind = str(subject.get("kind", ""))
    name = str(subject.get("name", ""))
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace or "default"
        return kind, f"system:serviceaccount:{namespace}:{name}"
    return kind, name


def powerful_grants(objects: Sequence[Mapping[str, Any]]) -> list[RbacGrant]:
    """Every (binding, subject) whose role is cluster-admin, admin, edit, has ``*`` verbs, or
    reads secrets, escalates, binds or impersonates; bindings to a missing role are skipped
    (the API server grants nothing through them)."""
    roles = roles_of(objects)
    grants: list[RbacGrant] = []
    for obj in objects:
        kind = obj.get("kind")
        if kind not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") if kind == "RoleBinding" else None
        ref = obj.get("roleRef") or {}
        ref_kind = str(ref.get("kind", ""))
        role = roles.get(role_key(ref_kind, str(ref.get("name", "")), namespace))
        if role is None:
            continue
        reasons = powers(role.name, effective_rules(role, roles))
        if not reasons:
            continue
        name = str(meta.get("name", ""))
        default = (meta.get("labels") or {}).get(DEFAULTS_LABEL) == "rbac-defaults" or (
            kind == "ClusterRoleBinding" and name in KUBEADM_DEFAULT_BINDINGS
        )
        binding = f"RoleBinding/{namespace}/{name}" if namespace else f"ClusterRoleBinding/{name}"
        for subject in obj.get("subjects") or []:
            subject_kind, subject_name = _subject_name(subject, namespace)
            grants.append(
                RbacGrant(
                    subject_kind=subject_kind,
                    subject=subject_name,
                    role=role_key(role.kind, role.name, role.namespace),
                    binding=binding,
                    scope=namespace or "cluster",
                    reasons=reasons,
                    default=default,
                )
            )
    return grants


@dataclass(frozen=True, slots=True)
class CanIRow:
    resources: str
    non_resource_urls: tuple[str, ...]
    resource_names: tuple[str, ...]
    verbs: tuple[str, ...]


def _bracketed(text: str) -> tuple[str, ...]:
    inner = text.strip().removeprefix("[").removesuffix("]")
    return tuple(word for word in inner.split() if word)


def parse_can_i_list(text: str) -> list[CanIRow]:
    """``kubectl auth can-i --list`` (its table: Resources, Non-Resource URLs, Resource
    Names, Verbs; staging/src/k8s.io/kubectl/pkg/cmd/auth/cani.go printTable)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].split()[:1] == ["Resources"]:
        raise RbacInputError("not the table of kubectl auth can-i --list")
    header = lines[0]
    starts = [header.index(h) for h in ("Non-Resource URLs", "Resource Names", "Verbs")]
    rows = []
    for line in lines[1:]:
        cut = [
            line[: starts[0]],
            line[starts[0] : starts[1]],
            line[starts[1] : starts[2]],
            line[starts[2] :],
        ]
        rows.append(
            CanIRow(
                resources=cut[0].strip(),
                non_resource_urls=_bracketed(cut[1]),
                resource_names=_bracketed(cut[2]),
                verbs=_bracketed(cut[3]),
            )
        )
    return rows


def can_i_is_cluster_admin(rows: Sequence[CanIRow]) -> bool:
    """``*.*`` with every verb: what cluster-admin's rule prints."""
    return any(r.resources == "*.*" and "*" in r.verbs and not r.resource_names for r in rows)
