"""The findings as SARIF 2.1.0, for code-scanning dashboards (a projection of the JSON report).

ruleId is the finding ID; level: critical/high -> error, medium -> warning, low/info -> note;
the location is ``ssh://HOST/PATH`` with the line when there is one; partialFingerprints carry
the finding's stable key, so dashboards track it across runs. The access matrix has no place
in SARIF: the JSON report stays the canonical one.
"""

from __future__ import annotations

import json
from typing import Any

from bastion.audit.findings import CATALOGUE, Finding, Severity
from bastion.audit.report import AuditReport
from bastion.version import version_string

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


def render_sarif(report: AuditReport) -> str:
    """The SARIF log text."""
    used = sorted({f.id for f in report.findings})
    rules = [
        {
            "id": rule_id,
            "name": rule_id.replace("-", ""),
            "shortDescription": {"text": CATALOGUE[rule_id].title},
            "help": {"text": CATALOGUE[rule_id].remediation},
            "defaultConfiguration": {"level": _LEVEL[CATALOGUE[rule_id].severity]},
        }
        for rule_id in used
    ]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "bastion-audit",
                        "version": version_string().split()[0],
                        "rules": rules,
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not report.not_audited,
                        "startTimeUtc": report.started_at,
                    }
                ],
                "results": [_result(f, used.index(f.id)) for f in report.findings],
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _result(f: Finding, rule_index: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": f.id,
        "ruleIndex": rule_index,
        "level": _LEVEL[f.severity],
        "kind": "fail",
        "message": {"text": f"{f.host}: {f.message}"},
        "partialFingerprints": {"accessFinding/v1": f.key},
        "properties": {
            "severity": f.severity.label,
            "host": f.host,
            "account": f.account,
            "fingerprint": f.fingerprint,
        },
    }
    location: dict[str, Any] = {
        "logicalLocations": [
            {"fullyQualifiedName": "/".join(p for p in (f.host, f.account or "") if p)}
        ]
    }
    if f.file:
        physical: dict[str, Any] = {"artifactLocation": {"uri": f"ssh://{f.host}{f.file}"}}
        if f.line:
            physical["region"] = {"startLine": f.line}
        location["physicalLocation"] = physical
    result["locations"] = [location]
    if f.waived:
        result["suppressions"] = [{"kind": "external", "justification": f.waived}]
    return result
