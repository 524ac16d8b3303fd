"""The cluster access rules (K8S-10..K8S-24), as plain rows: bastion.audit.findings adds them
to its catalogue (this module imports nothing from it, so either may be imported first).

Anchors: kubectl-who-can / rbac-lookup / rakkess answer "who can"; kube-bench runs the CIS
Kubernetes Benchmark (v1.9 numbering in the remediations); ``kubeadm certs check-expiration``.
"""

from __future__ import annotations

# (id, severity name, title, remediation)
KUBE_RULE_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("K8S-10", "HIGH", "subject bound to cluster-admin (or a role with * on *)",
     "Bind a narrower role; keep cluster-admin to declared admins (access.yaml clusters: "
     "cluster_admins) and use kubectl --as for break-glass (CIS 5.1.1)."),
    ("K8S-11", "MEDIUM", "subject bound to admin, edit or a role with * verbs",
     "Bind a role that lists the verbs and resources the subject needs (CIS 5.1.3)."),
    ("K8S-12", "MEDIUM", "subject can read Secrets",
     "Drop get/list/watch on secrets from the role, or scope it to named secrets (CIS 5.1.2)."),
    ("K8S-13", "HIGH", "subject can escalate, bind or impersonate",
     "Remove the escalate, bind and impersonate verbs: each lets the subject become cluster-admin "
     "(CIS 5.1.8)."),
    ("K8S-14", "HIGH", "system:masters client certificate in a kubeconfig on a node",
     "system:masters bypasses RBAC and cannot be revoked short of rotating the CA: keep "
     "super-admin.conf offline, use admin.conf (group kubeadm:cluster-admins) or per-user "
     "certificates (kubeadm kubeconfig user)."),
    ("K8S-15", "MEDIUM", "bootstrap token still valid",
     "kubeadm token delete <id> once the nodes joined; create short-lived ones (--ttl 15m) "
     "when needed."),
    ("K8S-16", "MEDIUM", "certificate expired or expiring within 30 days",
     "kubeadm certs renew all on the control plane (then restart the static pods), as "
     "kubeadm certs check-expiration reports."),
    ("K8S-17", "MEDIUM", "API server allows anonymous requests",
     "Set --anonymous-auth=false, or keep it and make sure system:unauthenticated is bound to "
     "nothing but the discovery and health endpoints (CIS 1.2.1)."),
    ("K8S-18", "CRITICAL",
     "API server flag opens access (AlwaysAllow, static tokens, insecure port)",
     "--authorization-mode=Node,RBAC; remove --token-auth-file and --insecure-port "
     "(CIS 1.2.2, 1.2.6-1.2.8)."),
    ("K8S-19", "MEDIUM", "NodeRestriction admission plugin not enabled",
     "Add NodeRestriction to --enable-admission-plugins (CIS 1.2.15)."),
    ("K8S-20", "CRITICAL", "etcd without client certificate authentication",
     "--client-cert-auth=true and --peer-client-cert-auth=true with https:// URLs (CIS 2.2, "
     "2.4)."),
    ("K8S-21", "HIGH", "kubelet accepts anonymous or unauthorized requests",
     "KubeletConfiguration authentication.anonymous.enabled: false and authorization.mode: "
     "Webhook (CIS 4.2.1, 4.2.2)."),
    ("K8S-22", "MEDIUM", "kubelet read-only port open",
     "readOnlyPort: 0 in the KubeletConfiguration (CIS 4.2.4)."),
    ("K8S-23", "HIGH", "cluster-admin holder not declared",
     "Declare the subject under clusters: NAME: cluster_admins in access.yaml, or remove its "
     "binding / certificate."),
    ("K8S-24", "LOW", "declared cluster-admin holder not bound",
     "Drop it from access.yaml, or bind it (kubectl create clusterrolebinding)."),
)  # fmt: skip
