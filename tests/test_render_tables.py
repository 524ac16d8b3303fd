"""The audit's and cluster status's tables: no path cut, nothing from a host obeyed."""

from __future__ import annotations

import dataclasses
import re

import pytest

from bastion.audit.findings import Finding, Severity
from bastion.audit.probe_output import parse_probe_output
from bastion.audit.report import AuditReport, build_report
from bastion.cluster.nodes import NodeStatus
from bastion.render.audit_terminal import render_audit
from bastion.render.cluster_nodes import render_nodes
from tests.audit.golden import DATA


@pytest.fixture(scope="module")
def report() -> AuditReport:
    observations = [
        parse_probe_output(p.stem, f"127.0.0.{n}", p.read_text())
        for n, p in ((2, DATA / "probe" / "node2.out"), (3, DATA / "probe" / "node3.out"))
    ]
    return build_report(observations, started_at="2026-01-01T00:00:00+00:00")


def words(text: str) -> set[str]:
    return set(text.split())


@pytest.mark.parametrize("width", [80, 100, 120, 140])
def test_no_path_or_word_is_broken(report: AuditReport, width: int) -> None:
    text = render_audit(report, fail_on=Severity.HIGH, width=width)
    section = text[text.index("FINDINGS") :]
    shown = words(section)
    for finding in report.findings:
        if finding.where:
            assert finding.where in shown, (width, finding.where)
        for word in finding.message.split():
            assert word in shown, (width, word)


def test_findings_from_a_hostile_host_are_shown_not_obeyed(report: AuditReport) -> None:
    hostile = Finding(
        id="KEY-02",
        severity=Severity.HIGH,
        host="node3",
        message="RSA-1024 eve\x1b]0;pwned\x07\r",
        account="eve\x1b[2J",
        file="/home/eve/.ssh/authorized_keys\x1b[1A",
    )
    tampered = dataclasses.replace(report, findings=[hostile, *report.findings])
    for width in (80, 140):
        text = render_audit(tampered, fail_on=Severity.HIGH, width=width)
        assert "\x1b" not in text and "\r" not in text
        assert "eve^[]0;pwned^G^M" in text and "eve^[[2J" in text
        assert re.search(r"/home/eve/\.ssh/authorized_keys\^\[\[1A", text)


def test_cluster_status_shows_a_hostile_node_name_visibly() -> None:
    node = NodeStatus(
        name="evil\x1b]0;pwned\x07[red]x[/]",
        roles=("control-plane\x1b[2J",),
        ready=True,
        version="v1.33.4\r",
        internal_ip="10.0.0.1",
        capacity={"cpu": "4"},
    )
    text = render_nodes([node], "node1", width=200)
    assert "\x1b" not in text and "\r" not in text
    assert "evil^[]0;pwned^G[red]x[/]" in text  # not rich markup either
    assert "control-plane^[[2J" in text and "v1.33.4^M" in text
