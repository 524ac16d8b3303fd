"""The canonical JSON report (``"schema": 1``); docs/audit.md documents every field.

Other formats and ``--diff`` read this shape. No secret is in it: fingerprints and public-key
metadata only, password state as a class, private keys as a fingerprint and a flag.
"""

from __future__ import annotations

import json
from typing import Any

from bastion.audit.access import AccessRow
from bastion.audit.findings import Finding, Severity
from bastion.audit.observation import HostObservation
from bastion.audit.report import AuditReport
from bastion.version import version_string

SCHEMA = 1


def report_to_data(report: AuditReport, *, fail_on: Severity) -> dict[str, Any]:
    """The report as JSON-ready data."""
    return {
        "schema": SCHEMA,
        "tool": f"bastion {version_string()}",
        "started_at": report.started_at,
        "declared": report.declared_source,
        "summary": {
            "hosts": len(report.observations),
            "audited": len(report.observations) - len(report.not_audited),
            "findings": report.counts(),
            "fail_on": fail_on.label,
            "exit_code": report.exit_code(fail_on),
        },
        "hosts": [_host(o) for o in report.observations],
        "not_audited": [
            {"host": o.host, "coverage": o.coverage.value, "error": o.error}
            for o in report.not_audited
        ],
        "rows": [_row(r, report) for r in report.rows],
        "missing": [
            {"host": h, "account": a, "fingerprint": fp, "identity": report.identities.get(fp)}
            for (h, a, fp), state in sorted(report.drift.items())
            if state == "MISSING"
        ],
        "findings": [finding_to_data(f) for f in report.findings],
        "diff": _diff(report),
    }


def _diff(report: AuditReport) -> dict[str, Any] | None:
    if report.diff is None:
        return None
    return {
        "previous": report.diff.previous,
        "new": [finding_to_data(f) for f in report.diff.new],
        "regressed": [finding_to_data(f) for f in report.diff.regressed],
        "resolved": list(report.diff.resolved),
    }


def render_json(report: AuditReport, *, fail_on: Severity) -> str:
    """The JSON report text (indented, stable key order)."""
    return json.dumps(report_to_data(report, fail_on=fail_on), indent=2) + "\n"


def finding_to_data(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id,
        "key": f.key,
        "severity": f.severity.label,
        "title": f.rule.title,
        "host": f.host,
        "account": f.account,
        "fingerprint": f.fingerprint,
        "where": f.where or None,
        "message": f.message,
        "remediation": f.rule.remediation,
        "waived": f.waived,
    }


def _host(o: HostObservation) -> dict[str, Any]:
    base = o.sshd.get("root")
    return {
        "host": o.host,
        "address": o.address,
        "coverage": o.coverage.value,
        "error": o.error,
        "groups": list(o.groups),
        "facts": {k: o.facts[k] for k in ("os", "openssh", "sshd_config") if k in o.facts},
        "sshd": {
            k: base.get(k)
            for k in (
                "permitrootlogin",
                "passwordauthentication",
                "kbdinteractiveauthentication",
                "usepam",
                "pubkeyauthentication",
                "strictmodes",
                "authorizedkeysfile",
                "allowtcpforwarding",
            )
        }
        if base
        else {},
        "host_keys": [
            {"path": k.path, "algorithm": k.algorithm, "bits": k.bits, "fingerprint": k.fingerprint}
            for k in o.host_keys
        ],
        "private_keys": [
            {
                "path": p.path,
                "owner": p.owner,
                "encrypted": p.encrypted,
                "fingerprint": p.fingerprint,
            }
            for p in o.private_keys
        ],
        "login_evidence": o.login_source,
        "warnings": list(o.warnings),
    }


def _row(r: AccessRow, report: AuditReport) -> dict[str, Any]:
    state = report.drift.get((r.host, r.account, r.fingerprint or "")) if report.drift else None
    return {
        "host": r.host,
        "account": r.account,
        "kind": r.kind.value,
        "fingerprint": r.fingerprint,
        "identity": report.identities.get(r.fingerprint or ""),
        "algorithm": r.algorithm or None,
        "bits": r.bits or None,
        "comment": r.comment or None,
        "where": f"{r.file}:{r.line}" if r.file else None,
        "restrictions": list(r.restrictions),
        "privilege": r.privilege,
        "nopasswd": r.nopasswd,
        "cluster_admin": r.cluster_admin,
        "accepted": r.accepted,
        "refused_by": list(r.refused_by),
        "last_used": r.last_used,
        "managed": r.managed,
        "declared": state,
    }
