# ruff: noqa: E501  (fixtures: kubectl tables and RBAC objects read best on one line)
"""The cluster access audit's pure parts (bastion/audit/kube_*.py) on kubectl-shaped input.

The oracle for the shapes is REAL kubectl (1.3x, when installed) talking to a minimal API
server on loopback (tests/kube_fake_apiserver.py): it prints the List of ``get
clusterroles,roles,clusterrolebindings,rolebindings -A -o json``, ``get nodes -o json`` and
the table of ``auth can-i --list`` exactly as it does against a cluster. Its RBAC output is
kept in tests/data/kube/rbac-list.json so the parsers are tested without kubectl too, and the
file is checked against kubectl whenever kubectl is there.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bastion.audit.findings import CATALOGUE
from bastion.audit.kube_audit import (
    ClusterDeclarationError,
    KubeObservation,
    audit_kube,
    declared_cluster_admins,
)
from bastion.audit.kube_collect import parse_kube_probe
from bastion.audit.kube_node import (
    apiserver_problems,
    bootstrap_tokens,
    command_flags,
    etcd_problems,
    kubeconfig_certs,
    kubelet_problems,
)
from bastion.audit.kube_rbac import (
    can_i_is_cluster_admin,
    load_objects,
    parse_can_i_list,
    powerful_grants,
)
from tests.kube_fake_apiserver import fake_apiserver, real_kubectl, run_kubectl

REPO = Path(__file__).resolve().parent.parent
RBAC_LIST = REPO / "tests" / "data" / "kube" / "rbac-list.json"
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
RBAC = "rbac.authorization.k8s.io"
DEFAULTS = {"kubernetes.io/bootstrapping": "rbac-defaults"}


def _meta(name: str, namespace: str | None = None, labels: dict[str, str] | None = None) -> Any:
    meta: dict[str, Any] = {"name": name, "resourceVersion": "1", "uid": f"uid-{name}"}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return meta


def _role(kind: str, name: str, rules: list[Any], **extra: Any) -> dict[str, Any]:
    namespace = extra.pop("namespace", None)
    labels = extra.pop("labels", None)
    return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": _meta(name, namespace, labels),
            "rules": rules, **extra}  # fmt: skip


def _binding(kind: str, name: str, role: tuple[str, str], subjects: list[Any], **extra: Any) -> Any:
    namespace = extra.pop("namespace", None)
    labels = extra.pop("labels", None)
    return {
        "apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": _meta(name, namespace, labels),
        "roleRef": {"apiGroup": RBAC, "kind": role[0], "name": role[1]}, "subjects": subjects,
    }  # fmt: skip


def _group(name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": "Group", "name": name}


def _user(name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": "User", "name": name}


def rbac_objects() -> list[dict[str, Any]]:
    """A kubeadm cluster's defaults plus what people added (the server's objects)."""
    everything = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                  {"nonResourceURLs": ["*"], "verbs": ["*"]}]  # fmt: skip
    return [
        _role("ClusterRole", "cluster-admin", everything, labels=DEFAULTS),
        _role("ClusterRole", "edit", [], labels=DEFAULTS,
              aggregationRule={"clusterRoleSelectors": [
                  {"matchLabels": {f"{RBAC}/aggregate-to-edit": "true"}}]}),
        _role("ClusterRole", "system:aggregate-to-edit",
              [{"apiGroups": [""], "resources": ["secrets", "pods"],
                "verbs": ["get", "list", "create"]}],
              labels={**DEFAULTS, f"{RBAC}/aggregate-to-edit": "true"}),
        # An aggregate people made; it is empty until the controller fills it.
        _role("ClusterRole", "ops", [],
              aggregationRule={"clusterRoleSelectors": [{"matchExpressions": [
                  {"key": "bastion.test/aggregate-to-ops", "operator": "In",
                   "values": ["true"]}]}]}),
        _role("ClusterRole", "ops-secrets",
              [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}],
              labels={"bastion.test/aggregate-to-ops": "true"}),
        _role("ClusterRole", "viewer", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
        _role("Role", "impersonate-sa",
              [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}],
              namespace="kube-system"),
        _binding("ClusterRoleBinding", "cluster-admin", ("ClusterRole", "cluster-admin"),
                 [_group("system:masters")], labels=DEFAULTS),
        _binding("ClusterRoleBinding", "kubeadm:cluster-admins", ("ClusterRole", "cluster-admin"),
                 [_group("kubeadm:cluster-admins")]),
        _binding("ClusterRoleBinding", "alice-admin", ("ClusterRole", "cluster-admin"), [_user("alice")]),
        _binding("RoleBinding", "devs-edit", ("ClusterRole", "edit"), [_group("devs")], namespace="dev"),
        _binding("ClusterRoleBinding", "ops", ("ClusterRole", "ops"), [_group("ops")]),
        _binding("ClusterRoleBinding", "viewers", ("ClusterRole", "viewer"), [_group("everyone")]),
        _binding("RoleBinding", "robot-impersonates", ("Role", "impersonate-sa"),
                 [{"kind": "ServiceAccount", "name": "robot", "namespace": "kube-system"}],
                 namespace="kube-system"),
        _binding("ClusterRoleBinding", "dangling", ("ClusterRole", "gone"), [_user("mallory")]),
    ]  # fmt: skip


def test_the_rbac_fixture_is_what_real_kubectl_prints(tmp_path: Path) -> None:
    kubectl = real_kubectl()
    if kubectl is None:
        pytest.skip("no real kubectl on this machine (the committed copy is still tested)")
    with fake_apiserver(rbac_objects()) as server:
        out = run_kubectl(
            kubectl, server, tmp_path,
            "get", "clusterroles,roles,clusterrolebindings,rolebindings", "-A", "-o", "json",
        )  # fmt: skip
    assert out == RBAC_LIST.read_text(), "regenerate tests/data/kube/rbac-list.json from kubectl"


def grants_by_subject() -> dict[str, Any]:
    return {g.subject: g for g in powerful_grants(load_objects(RBAC_LIST.read_text()))}


def test_grants_to_users_groups_and_service_accounts_with_aggregation_resolved() -> None:
    grants = grants_by_subject()
    assert set(grants) == {
        "system:masters",
        "kubeadm:cluster-admins",
        "alice",
        "devs",
        "ops",
        "system:serviceaccount:kube-system:robot",
    }  # fmt: skip  (viewer is harmless; a binding to a missing role grants nothing)
    assert grants["alice"].cluster_admin and not grants["alice"].default
    assert grants["system:masters"].default and grants["kubeadm:cluster-admins"].default
    # edit by name, and the secrets its aggregated system:aggregate-to-edit brings.
    assert grants["devs"].reasons == ("edit", "secrets") and grants["devs"].scope == "dev"
    # ops is empty as stored: only resolving its aggregationRule shows it reads secrets.
    assert grants["ops"].reasons == ("secrets",) and grants["ops"].scope == "cluster"
    robot = grants["system:serviceaccount:kube-system:robot"]
    assert (
        robot.reasons == ("impersonate",)
        and robot.binding == "RoleBinding/kube-system/robot-impersonates"
    )


def test_rbac_findings_skip_the_defaults_and_name_subject_and_binding() -> None:
    seen = KubeObservation(host="node1", cluster="prod", rbac=RBAC_LIST.read_text())
    findings = {f.account: f for f in audit_kube([seen], NOW).findings}
    assert {a: f.id for a, f in findings.items()} == {
        "user:alice": "K8S-10",
        "group:devs": "K8S-11",
        "group:ops": "K8S-12",
        "serviceaccount:kube-system:robot": "K8S-13",
    }
    assert findings["user:alice"].message == (
        "cluster prod: User alice cluster-wide (cluster-admin, wildcard, secrets, escalate, "
        "bind, impersonate) through ClusterRoleBinding/alice-admin -> ClusterRole/cluster-admin"
    )
    for f in findings.values():
        assert f.id in CATALOGUE and f.rule.remediation


def test_can_i_list_is_read_from_real_kubectl_s_table(tmp_path: Path) -> None:
    table = (
        "Resources                                      Non-Resource URLs   Resource Names   Verbs\n"
        "*.*                                            []                  []               [*]\n"
        "                                               [*]                 []               [*]\n"
        "selfsubjectrulesreviews.authorization.k8s.io   []                  []               [create]\n"
    )
    kubectl = real_kubectl()
    if kubectl is not None:
        rules = {"resourceRules": [
            {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
            {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
             "resources": ["selfsubjectrulesreviews"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": False}  # fmt: skip
        with fake_apiserver([], rules) as server:
            assert (
                run_kubectl(kubectl, server, tmp_path, "auth", "can-i", "--list").strip()
                == table.strip()
            )
    rows = parse_can_i_list(table)
    assert rows[0].resources == "*.*" and rows[0].verbs == ("*",)
    assert rows[1].resources == "" and rows[1].non_resource_urls == ("*",)
    assert can_i_is_cluster_admin(rows)
    assert not can_i_is_cluster_admin(rows[2:])


def _standins() -> Any:
    path = REPO / "tests" / "standins" / "kube_standins.py"
    spec = importlib.util.spec_from_file_location("kube_standins_under_test", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_standin_prints_get_nodes_o_json_as_real_kubectl_does(tmp_path: Path) -> None:
    kubectl = real_kubectl()
    if kubectl is None:
        pytest.skip("no real kubectl on this machine")
    standins = _standins()
    cluster = {
        "nodes": {"node1": {"address": "192.0.2.11", "role": "control-plane", "version": "v1.35.8"},
                  "node2": {"address": "192.0.2.12", "role": "worker", "version": "v1.35.8"}},
        "objects": {"cni/weave": {}}, "pod_subnet": "10.244.0.0/16",
    }  # fmt: skip
    items = [standins.node_json(n, i, cluster) for n, i in cluster["nodes"].items()]
    with fake_apiserver(items) as server:
        real = run_kubectl(kubectl, server, tmp_path, "get", "nodes", "-o", "json")
    assert standins.kubectl_json(standins.list_of(items)) + "\n" == real


def _cert(cn: str, orgs: list[str], not_after: dt.datetime) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
        + [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_after - dt.timedelta(days=365)).not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.PEM)


def _kubeconfig(pem: bytes) -> str:
    data = base64.b64encode(pem).decode()
    return (
        "apiVersion: v1\nkind: Config\nusers:\n- name: kubernetes-admin\n  user:\n"
        f"    client-certificate-data: {data}\n    client-key-data: UkVEQUNURUQ=\n"
    )


def test_system_masters_certificates_and_expiry_in_kubeconfigs_on_nodes() -> None:
    super_admin = _cert("kubernetes-super-admin", ["system:masters"], NOW + dt.timedelta(days=300))
    admin = _cert("kubernetes-admin", ["kubeadm:cluster-admins"], NOW + dt.timedelta(days=10))
    old = _cert("kube-apiserver", [], NOW - dt.timedelta(days=1))
    [cert] = kubeconfig_certs(_kubeconfig(super_admin), "/etc/kubernetes/super-admin.conf")
    assert cert.user == "kubernetes-super-admin" and cert.system_masters
    seen = KubeObservation(
        host="node1", cluster="prod",
        kubeconfigs={
            "/etc/kubernetes/super-admin.conf": _kubeconfig(super_admin),
            # What the probe sends: the client-certificate-data lines only.
            "/home/ops/.kube/config": "    client-certificate-data: "
            + base64.b64encode(admin).decode() + "\n",
        },
        certs={"/etc/kubernetes/pki/apiserver.crt": old},
    )  # fmt: skip
    audit = audit_kube([seen], NOW)
    ids = sorted((f.id, f.severity.label, f.file) for f in audit.findings)
    assert ids == [
        ("K8S-14", "high", "/etc/kubernetes/super-admin.conf"),
        ("K8S-16", "high", "/etc/kubernetes/pki/apiserver.crt"),
        ("K8S-16", "medium", "/home/ops/.kube/config"),
    ]
    assert [(a.subject, a.via) for a in audit.admins] == [
        ("user:kubernetes-super-admin", "node1:/etc/kubernetes/super-admin.conf")
    ]


# kubeadm 1.35's kube-apiserver manifest command (abridged), and a hand-weakened one.
APISERVER = """\
apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver, namespace: kube-system}
spec:
  containers:
  - command:
    - kube-apiserver
    - --advertise-address=192.0.2.11
    - --allow-privileged=true
    - --authorization-mode=Node,RBAC
    - --client-ca-file=/etc/kubernetes/pki/ca.crt
    - --enable-admission-plugins=NodeRestriction
    - --enable-bootstrap-token-auth=true
    name: kube-apiserver
"""


def test_api_server_flags_that_open_access() -> None:
    flags = command_flags(APISERVER)
    assert flags["authorization-mode"] == "Node,RBAC"
    # kubeadm's own manifest: only the API server's default anonymous auth.
    assert [p.rule for p in apiserver_problems(flags)] == ["K8S-17"]
    weak = APISERVER.replace("Node,RBAC", "AlwaysAllow").replace(
        "--enable-admission-plugins=NodeRestriction", "--token-auth-file=/etc/k/tokens.csv"
    )
    assert [p.rule for p in apiserver_problems(command_flags(weak))] == [
        "K8S-17", "K8S-18", "K8S-19", "K8S-18",
    ]  # fmt: skip
    closed = APISERVER.replace("    name:", "    - --anonymous-auth=false\n    name:")
    assert apiserver_problems(command_flags(closed)) == []


def test_etcd_and_kubelet_settings() -> None:
    etcd = (
        "spec:\n  containers:\n  - command:\n    - etcd\n    - --client-cert-auth=true\n"
        "    - --peer-client-cert-auth=true\n"
        "    - --listen-client-urls=https://127.0.0.1:2379,https://192.0.2.11:2379\n"
    )
    assert etcd_problems(command_flags(etcd)) == []
    open_etcd = etcd.replace("--client-cert-auth=true", "--client-cert-auth=false").replace(
        "https://192.0.2.11", "http://192.0.2.11"
    )
    assert [p.rule for p in etcd_problems(command_flags(open_etcd))] == ["K8S-20", "K8S-20"]
    kubeadm_kubelet = (
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        "authentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: true\n"
        "authorization:\n  mode: Webhook\ncgroupDriver: systemd\n"
    )
    assert kubelet_problems(kubeadm_kubelet) == []
    # The kubelet's own defaults, when a file leaves them out: anonymous, AlwaysAllow, 10255.
    bare = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 10255\n"
    assert [p.rule for p in kubelet_problems(bare)] == ["K8S-21", "K8S-21", "K8S-22"]


def test_valid_bootstrap_tokens_without_their_secret() -> None:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    table = (
        f"bootstrap-token-abcdef   {b64('2026-12-03T11:00:00Z')}\n"
        f"bootstrap-token-old000   {b64('2026-12-01T11:00:00Z')}\n"
        "bootstrap-token-never1   <none>\n"
        f"bootstrap-token-long00   {b64('2027-01-01T00:00:00Z')}\n"
    )
    assert [t.token_id for t in bootstrap_tokens(table)] == ["abcdef", "old000", "never1", "long00"]
    seen = KubeObservation(host="node1", cluster="prod", tokens=table)
    found = [(f.id, f.severity.label, f.account) for f in audit_kube([seen], NOW).findings]
    assert found == [
        ("K8S-15", "medium", "token:abcdef"),
        ("K8S-15", "high", "token:never1"),
        ("K8S-15", "high", "token:long00"),
    ]


def test_declared_cluster_admins_and_drift(tmp_path: Path) -> None:
    access = tmp_path / "access.yaml"
    access.write_text(
        "version: 1\nclusters:\n  prod:\n    cluster_admins: [user:bob, group:kubeadm:cluster-admins]\n"
    )
    declared = declared_cluster_admins(access)
    assert declared == {"prod": frozenset({"user:bob", "group:kubeadm:cluster-admins"})}
    seen = KubeObservation(host="node1", cluster="prod", rbac=RBAC_LIST.read_text())
    drift = [
        (f.id, f.account)
        for f in audit_kube([seen], NOW, declared).findings
        if f.id in ("K8S-23", "K8S-24")
    ]
    assert drift == [("K8S-23", "user:alice"), ("K8S-24", "user:bob")]
    access.write_text("clusters:\n  prod:\n    cluster_admins: [alice]\n")
    with pytest.raises(ClusterDeclarationError, match="user:NAME, group:NAME"):
        declared_cluster_admins(access)


def test_the_probe_sections_become_an_observation() -> None:
    output = (
        "\n=== control-plane\n\n=== rbac\n" + RBAC_LIST.read_text()
        + "\n=== tokens\nbootstrap-token-abcdef   <none>\n"
        + "\n=== manifest /etc/kubernetes/manifests/kube-apiserver.yaml\n" + APISERVER
        + "\n=== kubeconfig /etc/kubernetes/admin.conf\n    client-certificate-data: QUJD\n"
    )  # fmt: skip
    seen = parse_kube_probe("node1", "prod", output)
    assert seen.control_plane and seen.tokens == "bootstrap-token-abcdef   <none>\n"
    assert json.loads(seen.rbac or "")["kind"] == "List"
    assert command_flags(seen.apiserver or "")["authorization-mode"] == "Node,RBAC"
    assert list(seen.kubeconfigs) == ["/etc/kubernetes/admin.conf"]
    assert seen.etcd is None and seen.kubelet_config is None


def test_the_cluster_column_of_the_access_matrix() -> None:
    from bastion.audit.access import AccessRow, CredentialKind
    from bastion.audit.kube_report import kube_targets, with_kube
    from bastion.audit.observation import Coverage, HostObservation, KubeConfig
    from bastion.audit.report import AuditReport
    from bastion.audit.reports.matrix import access_matrix
    from bastion.models import Host

    node1 = HostObservation(host="node1", address="192.0.2.11", coverage=Coverage.FULL)
    node1.kubeconfigs = [KubeConfig("/etc/kubernetes/admin.conf", "root", "root", 0o600)]
    node2 = HostObservation(host="node2", address="192.0.2.12", coverage=Coverage.FULL)
    fp = "SHA256:" + "a" * 43
    rows = (
        AccessRow("node1", "root", CredentialKind.KEY, fp, "ed25519", 256, "ops@laptop",
                  privilege="root", cluster_admin=True),
        AccessRow("node2", "root", CredentialKind.KEY, fp, "ed25519", 256, "ops@laptop",
                  privilege="root"),
    )  # fmt: skip
    report = AuditReport("2026-12-02T12:00:00+00:00", (node1, node2), rows, ())
    hosts = [Host("node1", "192.0.2.11", groups=("masters",)), Host("node2", "192.0.2.12")]
    # A plain audit probes only the control plane that holds an admin kubeconfig.
    assert [h.name for h in kube_targets(hosts, report, everything=False)] == ["node1"]
    assert [h.name for h in kube_targets(hosts, report, everything=True)] == ["node1", "node2"]
    seen = KubeObservation(
        host="node1", cluster="prod", control_plane=True, rbac=RBAC_LIST.read_text()
    )
    joined = with_kube(report, [seen], NOW, None)
    assert {f.id for f in joined.findings} == {"K8S-10", "K8S-11", "K8S-12", "K8S-13"}
    columns, matrix = access_matrix(joined)
    assert columns == ["node1", "node2", "cluster"]
    cells = dict(matrix)
    [ops] = [who for who in cells if "ops@laptop" in who]
    assert cells[ops]["cluster"] == ["prod:cluster-admin (root@node1)"]
    assert cells["user:alice"]["cluster"] == ["prod:cluster-admin*"]
    assert cells["group:system:masters"]["cluster"] == ["prod:cluster-admin"]
    assert cells["group:devs"]["cluster"] == ["prod:edit+secrets@dev"]
    # Without the cluster audit the matrix is the host matrix.
    assert access_matrix(report)[0] == ["node1", "node2"]
