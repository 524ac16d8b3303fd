"""`bastion audit` against the seeded lab: every seeded problem found, by ID and host."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.audit.conftest import AUDIT_SUBNET, AuditLab

pytestmark = pytest.mark.lab

AUDIT_GHOST = f"{AUDIT_SUBNET}.99"  # in the audit lab's subnet, where nothing listens


def audit_json(lab: AuditLab, *args: str) -> tuple[int, dict[str, Any]]:
    done = lab.cli("audit", "-i", "lab", "-F", "json", *args, timeout=180)
    assert done.returncode in (0, 1, 3), done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.fixture(scope="module")
def full(audit_lab: AuditLab) -> tuple[int, dict[str, Any]]:
    return audit_json(audit_lab, "--all")


def ids(report: dict[str, Any]) -> set[tuple[str, str, str | None]]:
    return {(f["id"], f["host"], f["account"]) for f in report["findings"]}


EXPECTED = {
    ("ACC-01", "node3", "alice"),  # PasswordAuthentication yes and a password hash
    ("KEY-02", "node3", "ops"),  # RSA-1024
    ("PRIV-01", "node3", "ops"),  # NOPASSWD ALL
    ("ACC-06", "node3", "olduser"),  # locked, key, UsePAM yes
    ("OPT-09", "node3", "alice"),  # authorized_keys2
    ("COLL-03", "node3", "mallory"),  # symlink to /etc/shadow, unreadable as mallory
    ("ACCT-04", "node3", "mallory"),  # world-writable home
    ("ACC-05", "node3", "tunnel"),  # nologin, key, forwarding allowed
    ("KEY-05", "node3", None),  # tunnel's key also opens tunnel2
    ("HOST-01", "node1", None),  # node2 carries node1's host key
    ("HOST-01", "node2", None),
    ("KEY-09", "node2", "root"),  # unencrypted private key
    ("KEY-10", "node2", "root"),  # ... whose public half opens ops@node3
    ("ACC-03", "node3", "root"),
}


def test_every_seeded_problem_is_found_by_id_and_host(full: tuple[int, dict[str, Any]]) -> None:
    code, report = full
    missing = EXPECTED - ids(report)
    assert not missing, missing
    assert code == 1  # HIGH findings, default --fail-on high


def test_nopasswd_finding_names_the_sudoers_file(full: tuple[int, dict[str, Any]]) -> None:
    _, report = full
    priv = [f for f in report["findings"] if f["id"] == "PRIV-01" and f["host"] == "node3"]
    # From cvtsudoers: the fixture's rule lives in /etc/sudoers.d/ops.
    assert [(f["account"], f["where"]) for f in priv] == [("ops", "/etc/sudoers.d/ops")]
    assert "via ops" in priv[0]["message"]
    node3 = next(h for h in report["hosts"] if h["host"] == "node3")
    assert not [w for w in node3["warnings"] if "cvtsudoers" in w]


def test_match_blocks_are_evaluated_per_account(full: tuple[int, dict[str, Any]]) -> None:
    _, report = full
    tunnels = {f["account"] for f in report["findings"] if f["id"] == "ACC-05"}
    assert tunnels == {"tunnel"}  # tunnel2: Match User tunnel2 / AllowTcpForwarding no
    same_key = [f for f in report["findings"] if f["id"] == "KEY-05"]
    assert [(f["host"], "tunnel, tunnel2" in f["message"]) for f in same_key] == [("node3", True)]


def test_a_clean_node_has_only_the_lab_baseline_findings(full: tuple[int, dict[str, Any]]) -> None:
    _, report = full
    node1 = {f["id"] for f in report["findings"] if f["host"] == "node1"}
    # The lab's own config: root logs in with a key, no AllowUsers, LogLevel ERROR (no login
    # evidence); and HOST-01 because node2 was seeded with node1's host key.
    assert node1 == {"ACC-03", "ACC-04", "COLL-04", "HOST-01"}


def test_lateral_path_is_critical_because_the_target_has_full_sudo(
    full: tuple[int, dict[str, Any]], audit_lab: AuditLab
) -> None:
    _, report = full
    lateral = [f for f in report["findings"] if f["id"] == "KEY-10"]
    assert [f["severity"] for f in lateral] == ["critical"]
    assert lateral[0]["fingerprint"] == audit_lab.keys["lateral"].fingerprint
    assert "ops@node3" in lateral[0]["message"]


def test_rows_carry_privilege_restrictions_and_sshd_refusals(
    full: tuple[int, dict[str, Any]], audit_lab: AuditLab
) -> None:
    _, report = full
    rows = {(r["host"], r["account"], r["fingerprint"]): r for r in report["rows"]}
    ops = rows[("node3", "ops", audit_lab.keys["rsa1024"].fingerprint)]
    assert (ops["privilege"], ops["nopasswd"], ops["bits"]) == ("all", True, 1024)
    alice_password = [
        r for r in report["rows"] if r["account"] == "alice" and r["kind"] == "password"
    ]
    assert [r["host"] for r in alice_password] == ["node3"]
    root_intruder = rows[("node3", "root", audit_lab.keys["intruder"].fingerprint)]
    assert root_intruder["privilege"] == "root" and root_intruder["accepted"]


def test_no_secret_reaches_any_output(audit_lab: AuditLab, tmp_path: Path) -> None:
    terminal = audit_lab.cli("audit", "-i", "lab", "--all", timeout=180)
    json_file = tmp_path / "audit.json"
    written = audit_lab.cli(
        "audit", "-i", "lab", "--all", "-F", "json", "-O", str(json_file), timeout=180
    )
    assert written.returncode == 1, written.stderr
    assert stat.S_IMODE(os.stat(json_file).st_mode) == 0o600
    outputs = [
        terminal.stdout,
        terminal.stderr,
        written.stdout,
        written.stderr,
        json_file.read_text(),
    ]
    for text in outputs:
        for secret in audit_lab.secrets():
            assert secret not in text
        assert "root:" not in text  # no /etc/shadow line through mallory's symlink


def test_fail_on_threshold_sets_the_exit_code(audit_lab: AuditLab) -> None:
    high, _ = audit_json(audit_lab, "-H", "node1", "--fail-on", "high")
    medium, _ = audit_json(audit_lab, "-H", "node1", "--fail-on", "medium")
    assert (high, medium) == (0, 1)
    bad = audit_lab.cli("audit", "-i", "lab", "--fail-on", "severe")
    assert bad.returncode == 2
    assert "severe" in bad.stderr and "Traceback" not in bad.stderr


def test_an_unreachable_host_is_exit_3_and_costs_no_other_host_its_report(
    audit_lab: AuditLab,
) -> None:
    inventory = audit_lab.lab_dir / "inventory.yaml"
    ghost = audit_lab.lab_dir / "with-ghost.yaml"
    text = inventory.read_text().replace(
        "hosts:\n", "hosts:\n  ghost: {address: " + AUDIT_GHOST + ", connect_timeout: 1}\n", 1
    )
    ghost.write_text(text)
    done = audit_lab.cli("audit", "-i", str(ghost), "-F", "json", "--all", timeout=180)
    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    assert [h["host"] for h in report["not_audited"]] == ["ghost"]
    assert ("COLL-01", "ghost", None) in ids(report)
    assert {"node1", "node2", "node3"} <= {r["host"] for r in report["rows"]}
