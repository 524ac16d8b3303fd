"""The rules on synthetic probe outputs (data files): input in, expected findings out."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.audit.probe_output import parse_probe_output
from bastion.audit.report import build_report
from tests.audit.golden import DATA, check_golden
from tests.audit.probe_text import GOLDEN_NONCE

CASES = sorted((DATA / "checks").glob("*.out"))


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_findings_golden(case: Path) -> None:
    seen = parse_probe_output(case.stem, "127.0.0.1", case.read_text(), GOLDEN_NONCE)
    report = build_report([seen], started_at="2026-01-01T00:00:00+00:00", unused_days=30)
    actual = sorted(
        [f.id, f.severity.label, f.account or "", f.where, f.message] for f in report.findings
    )
    rows = sorted(
        [r.account, r.kind.value, r.privilege, r.cluster_admin, r.accepted, list(r.refused_by),
         r.last_used or 0]
        for r in report.rows
    )  # fmt: skip
    check_golden({"findings": actual, "rows": rows}, case.with_suffix(".expected.json"))
