"""Every report format, rendered from the golden probe outputs (no SSH): exact terminal text,
JSON schema fields, Markdown, SARIF 2.1.0 shape, and the HTML page as Chromium shows it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bastion.audit.findings import Severity
from bastion.audit.probe_output import parse_probe_output
from bastion.audit.report import AuditReport, build_report
from bastion.audit.reports.html_report import render_html
from bastion.audit.reports.json_report import report_to_data
from bastion.audit.reports.markdown_report import render_markdown
from bastion.audit.reports.sarif_report import render_sarif
from bastion.render.audit_terminal import render_audit
from tests.audit.golden import DATA
from tests.audit.probe_text import GOLDEN_NONCE

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def report() -> AuditReport:
    observations = [
        parse_probe_output(p.stem, f"127.0.0.{n}", p.read_text(), GOLDEN_NONCE)
        for n, p in ((2, DATA / "probe" / "node2.out"), (3, DATA / "probe" / "node3.out"))
    ]
    return build_report(observations, started_at="2026-01-01T00:00:00+00:00")


def test_terminal_report_exact_text(report: AuditReport) -> None:
    text = render_audit(report, fail_on=Severity.HIGH, width=140)
    expected = DATA / "reports" / "terminal.txt"
    if os.environ.get("BASTION_REGEN_GOLDEN"):
        expected.write_text(text)
    assert text == expected.read_text()


def test_json_report_fields(report: AuditReport) -> None:
    data = report_to_data(report, fail_on=Severity.HIGH)
    assert data["schema"] == 1
    assert set(data) == {
        "schema", "tool", "started_at", "declared", "summary", "hosts", "not_audited", "rows",
        "missing", "findings", "diff",
    }  # fmt: skip
    assert data["summary"]["exit_code"] == 1
    assert {f["id"] for f in data["findings"]} >= {"KEY-02", "KEY-09", "PRIV-01", "ACC-01"}
    for finding in data["findings"]:
        assert re.fullmatch(r"[0-9a-f]{16}", finding["key"])
        assert finding["remediation"]
    json.dumps(data)


def test_markdown_report(report: AuditReport) -> None:
    text = render_markdown(report, fail_on=Severity.HIGH)
    assert text.startswith("# bastion access audit\n")
    assert "| identity | node2 | node3 |" in text
    assert re.search(r"^\| high \| PRIV-01 \| node3 \| ops \|", text, re.M)


def test_sarif_report_shape(report: AuditReport) -> None:
    log = json.loads(render_sarif(report))
    assert log["version"] == "2.1.0"
    [run] = log["runs"]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rule_ids == sorted(set(rule_ids))
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels["KEY-10"] == "error" and levels["KEY-09"] == "warning"
    located = next(r for r in run["results"] if r["ruleId"] == "KEY-02")
    physical = located["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "ssh://node3/home/ops/.ssh/authorized_keys"
    assert physical["region"]["startLine"] == 1
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert result["partialFingerprints"]["accessFinding/v1"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_html_is_self_contained_and_escaped(report: AuditReport) -> None:
    page = render_html(report, fail_on=Severity.HIGH)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page
    assert "<script>" in page and page.count("<script") == 1


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (scripts/setup-system)")
def test_html_as_a_reader_sees_it_in_headless_chromium(report: AuditReport, tmp_path: Path) -> None:
    page = tmp_path / "access.html"
    page.write_text(render_html(report, fail_on=Severity.HIGH))
    browser = chromium()
    assert browser is not None
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    assert "bastion access audit" in text
    assert "critical 1" in text
    assert "Access matrix" in text and "ops[all]" in text
    assert text.count("KEY-10") == 1 and "Remove the private key from the node" in text
    shot = tmp_path / "shot.png"
    subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,900",
         f"--screenshot={shot}", page.as_uri()],
        capture_output=True, timeout=90, check=False,
    )  # fmt: skip
    assert shot.stat().st_size > 20_000  # a blank page is a few KB


def test_docs_list_every_finding_id_with_its_severity() -> None:
    from bastion.audit.findings import CATALOGUE
    from tests.conftest import REPO

    doc = (REPO / "docs" / "audit.md").read_text()
    for rule in CATALOGUE.values():
        assert f"| {rule.id} | {rule.severity.label} | {rule.title} |" in doc, rule.id


def test_markdown_neutralises_markup_from_a_key_comment(report: AuditReport) -> None:
    import dataclasses

    hostile = dataclasses.replace(report.findings[0], message="<img src=x onerror=alert(1)> | x")
    text = render_markdown(dataclasses.replace(report, findings=(hostile,)), fail_on=Severity.HIGH)
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt; \\| x" in text
