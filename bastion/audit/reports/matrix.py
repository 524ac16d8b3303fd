"""The access matrix: identities by rows, hosts by columns (shared by every report format)."""

from __future__ import annotations

from collections import defaultdict

from bastion.audit.access import AccessRow, CredentialKind
from bastion.audit.report import AuditReport

CLUSTER_COLUMN = "cluster"
"""The column of Kubernetes access: cluster:role per subject or per SSH identity."""
LEGEND = (
    "cell: account[privilege]; * undeclared, ~ restricted (from=/command/restrict), "
    "x refused by sshd, ! revoked or expired"
)


def identity_label(row: AccessRow, report: AuditReport) -> str:
    """How the matrix names a credential: declared identity, else comment, else fingerprint."""
    if row.kind is CredentialKind.PASSWORD:
        return "password"
    name = report.identities.get(row.fingerprint or "")
    short = (row.fingerprint or "")[7:19]
    kind = f"{row.algorithm}-{row.bits}" if row.algorithm == "rsa" else row.algorithm
    who = name or row.comment or "(no comment)"
    prefix = "CA " if row.kind is CredentialKind.CERT_AUTHORITY else ""
    return f"{prefix}{who}  {short}… {kind}"


def access_matrix(report: AuditReport) -> tuple[list[str], list[tuple[str, dict[str, list[str]]]]]:
    """(hosts, [(identity, {host: [cell entries]})]), identities in first-seen order."""
    hosts = [o.host for o in report.observations]
    cells: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for row in report.rows:
        state = report.drift.get((row.host, row.account, row.fingerprint or ""))
        mark = ""
        if state in ("UNDECLARED", "UNMANAGED"):
            mark += "*"
        if state in ("REVOKED", "EXPIRED"):
            mark += "!"
        if row.restricted:
            mark += "~"
        if not row.accepted:
            mark += "x"
        entry = f"{row.account}[{row.privilege}]{mark}"
        if entry not in cells[identity_label(row, report)][row.host]:
            cells[identity_label(row, report)][row.host].append(entry)
    if report.cluster:  # the cluster access audit ran (bastion/audit/kube_report.py)
        hosts.append(CLUSTER_COLUMN)
        for row in report.rows:
            for entry in report.cluster.get(f"{row.host}/{row.account}", ()):
                if entry not in cells[identity_label(row, report)][CLUSTER_COLUMN]:
                    cells[identity_label(row, report)][CLUSTER_COLUMN].append(entry)
        for who, entries in report.cluster.items():
            if who.split(":", 1)[0] in ("user", "group", "serviceaccount"):
                cells[who][CLUSTER_COLUMN].extend(entries)
    return hosts, list(cells.items())
