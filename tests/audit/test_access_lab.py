"""Declared access on the seeded lab: --bootstrap, drift, --diff and `access apply`.

They share the seeded lab with test_audit_lab.py: a test that changes a node restores it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.audit.conftest import AuditLab

pytestmark = pytest.mark.lab

NODE3 = ("-i", "lab", "-H", "node3")
"""Where the changes are: the other nodes only cost time."""


@pytest.fixture(scope="module")
def drafted(audit_lab: AuditLab, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`audit --bootstrap` of the seeded lab, once for the module (tests copy it)."""
    done = audit_lab.cli("audit", "-i", "lab", "--all", "--bootstrap", timeout=180)
    assert done.returncode == 0, done.stderr
    return done.stdout


def bootstrap(drafted: str, path: Path) -> dict[str, Any]:
    """A fresh copy of the draft, also written to ``path``."""
    path.write_text(drafted)
    data = yaml.safe_load(drafted)
    assert isinstance(data, dict)
    return data


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def audit(lab: AuditLab, access: Path, *args: str, hosts: str = "node[1-3]") -> dict[str, Any]:
    done = lab.cli(
        "audit", "-i", "lab", "-H", hosts, "-F", "json", "--access", str(access), *args,
        timeout=180,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def drift_ids(report: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return sorted(
        (f["id"], f["host"], f["account"])
        for f in report["findings"]
        if f["id"].startswith("DRIFT")
    )


def root_keys_on_node3(lab: AuditLab) -> str:
    done = lab.cli(
        "run", "-i", "lab", "-H", "node3", "-o", "json", "cat /root/.ssh/authorized_keys"
    )
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["stdout"])


def test_bootstrap_then_audit_finds_no_drift(
    audit_lab: AuditLab, drafted: str, tmp_path: Path
) -> None:
    data = bootstrap(drafted, tmp_path / "access.yaml")
    assert "bastion-lab" in data["identities"]
    report = audit(audit_lab, tmp_path / "access.yaml")
    assert drift_ids(report) == []
    states = {r["declared"] for r in report["rows"] if r["kind"] != "password"}
    assert states == {"OK"}
    assert report["missing"] == []


def test_drift_classes_undeclared_revoked_mismatch_missing(
    audit_lab: AuditLab, drafted: str, tmp_path: Path
) -> None:
    data = bootstrap(drafted, tmp_path / "access.yaml")
    intruder = audit_lab.keys["intruder"].fingerprint
    data["grants"] = [g for g in data["grants"] if g["to"] != "intruder@seed"]
    data["revoked"] = [audit_lab.keys["rsa1024"].fingerprint]
    for grant in data["grants"]:
        if (grant["to"], grant["account"]) == ("tunnel@seed", "tunnel"):
            grant["options"] = "restrict"
        if grant["account"] == "ops":
            grant["sudo"] = "some"  # ops has NOPASSWD ALL
    data["identities"]["newcomer"] = {"keys": [{"fingerprint": "SHA256:" + "A" * 43}]}
    data["grants"].append({"to": "newcomer", "hosts": "node[1-2]", "account": "root"})
    report = audit(audit_lab, write(tmp_path / "drift.yaml", data))
    assert drift_ids(report) == [
        ("DRIFT-01", "node3", "root"),
        ("DRIFT-02", "node1", "root"),
        ("DRIFT-02", "node2", "root"),
        ("DRIFT-03", "node3", "ops"),
        ("DRIFT-04", "node3", "ops"),
        ("DRIFT-05", "node3", "tunnel"),
    ]
    undeclared = next(f for f in report["findings"] if f["id"] == "DRIFT-01")
    assert undeclared["severity"] == "critical"  # root
    assert undeclared["fingerprint"] == intruder


def test_waiver_and_severity_override_change_the_exit_code(
    audit_lab: AuditLab, drafted: str, tmp_path: Path
) -> None:
    data = bootstrap(drafted, tmp_path / "access.yaml")
    data["waivers"] = [
        {"id": "KEY-10", "until": "2999-01-01", "reason": "migration ticket OPS-1"},
        {"id": "ACC-04", "until": "2000-01-01", "reason": "long gone"},
    ]
    data["severities"] = {name: "low" for name in ("ACC-01", "ACC-06", "HOST-01", "KEY-02")}
    data["severities"]["PRIV-01"] = "medium"
    done = audit_lab.cli(
        "audit", "-i", "lab", "--all", "-F", "json", "--access",
        str(write(tmp_path / "policy.yaml", data)), timeout=180,
    )  # fmt: skip
    report = json.loads(done.stdout)
    waived = [f for f in report["findings"] if f["waived"]]
    assert [f["id"] for f in waived] == ["KEY-10"]
    assert ("DRIFT-07", "*", None) in {
        (f["id"], f["host"], f["account"]) for f in report["findings"]
    }
    open_high = [
        f for f in report["findings"] if f["severity"] in ("high", "critical") and not f["waived"]
    ]
    assert open_high == [] and done.returncode == 0, open_high


def test_diff_reports_new_and_resolved_findings(
    audit_lab: AuditLab, drafted: str, tmp_path: Path
) -> None:
    data = bootstrap(drafted, tmp_path / "access.yaml")
    before = tmp_path / "before.json"
    first = audit_lab.cli(
        "audit", *NODE3, "-F", "json", "-O", str(before),
        "--access", str(tmp_path / "access.yaml"), timeout=180,
    )  # fmt: skip
    assert first.returncode == 1, first.stderr
    data["grants"] = [g for g in data["grants"] if g["to"] != "intruder@seed"]
    report = audit(
        audit_lab, write(tmp_path / "after.yaml", data), "--diff", str(before), hosts="node3"
    )
    diff = report["diff"]
    assert [(f["id"], f["host"]) for f in diff["new"]] == [("DRIFT-01", "node3")]
    assert diff["resolved"] == [] and diff["regressed"] == []
    # Every run is stored: `last` is the run just made, with the intruder undeclared too.
    again = audit(audit_lab, tmp_path / "after.yaml", "--diff", "last", hosts="node3")
    assert again["diff"]["new"] == [] and again["diff"]["resolved"] == []
    bad = audit_lab.cli("audit", "-i", "lab", "--diff", str(tmp_path / "access.yaml"))
    assert bad.returncode == 2 and "not a bastion audit JSON report" in bad.stderr


def test_apply_removes_exactly_the_undeclared_key_and_keeps_the_bastions_own(
    audit_lab: AuditLab, drafted: str, tmp_path: Path
) -> None:
    data = bootstrap(drafted, tmp_path / "access.yaml")
    original = root_keys_on_node3(audit_lab)
    data["grants"] = [g for g in data["grants"] if g["to"] != "intruder@seed"]
    declared = write(tmp_path / "declared.yaml", data)
    try:
        check = audit_lab.cli("access", "apply", *NODE3, "--access", str(declared), "--check")
        assert check.returncode == 0, check.stderr
        assert "node3: --check: nothing written" in check.stdout
        assert audit_lab.keys["intruder"].fingerprint in check.stdout
        assert root_keys_on_node3(audit_lab) == original

        applied = audit_lab.cli("access", "apply", *NODE3, "--access", str(declared))
        assert applied.returncode == 0, applied.stderr
        assert "node3: written root /root/.ssh/authorized_keys" in applied.stdout
        after = root_keys_on_node3(audit_lab)
        assert after.splitlines() == [
            line for line in original.splitlines() if "intruder@seed" not in line
        ]
        assert audit_lab.lab_key.public.split()[1] in after
        # Only that one file is written: no other account, no authorized_keys2.
        assert [line for line in applied.stdout.splitlines() if "written" in line] == [
            "node3: written root /root/.ssh/authorized_keys"
        ]
        stat = audit_lab.cli(
            "run", "-i", "lab", "-H", "node3", "-o", "json",
            "stat -c '%U %a' /root/.ssh/authorized_keys; ls /root/.ssh",
        )  # fmt: skip
        listing = json.loads(stat.stdout)["stdout"]
        assert listing.startswith("root 600\n")
        assert "authorized_keys.bastion-backup-" in listing

        again = audit_lab.cli("access", "apply", *NODE3, "--access", str(declared))
        assert again.returncode == 0, again.stderr
        assert "written" not in again.stdout
        assert again.stdout == "node3: no change\n"
        assert drift_ids(audit(audit_lab, declared, hosts="node3")) == []
    finally:
        restore = audit_lab.cli(
            "access", "apply", "-i", "lab", "--access", str(tmp_path / "access.yaml")
        )
        assert restore.returncode == 0, restore.stderr
        assert root_keys_on_node3(audit_lab).splitlines() == original.splitlines()


def test_lockout_guard_refuses_to_remove_the_bastions_key(
    audit_lab: AuditLab, drafted: str, tmp_path: Path
) -> None:
    data = bootstrap(drafted, tmp_path / "access.yaml")
    original = root_keys_on_node3(audit_lab)
    data["grants"] = [g for g in data["grants"] if g["to"] != "bastion-lab"]
    declared = write(tmp_path / "lockout.yaml", data)
    done = audit_lab.cli("access", "apply", *NODE3, "--access", str(declared))
    assert done.returncode == 1
    assert "node3: REFUSED: would lock bastion out: the key bastion logs in with" in done.stdout
    assert audit_lab.lab_key.fingerprint in done.stdout
    assert root_keys_on_node3(audit_lab) == original


def test_a_bad_access_list_is_one_line_with_file_and_line(
    audit_lab: AuditLab, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ngrants:\n  - {to: nobody, hosts: all, account: root}\n")
    done = audit_lab.cli("audit", "-i", "lab", "--access", str(bad))
    assert done.returncode == 2
    assert done.stderr == (f"bastion: error: {bad}:3: grant to unknown identity or role 'nobody'\n")
    missing = audit_lab.cli("access", "apply", "-i", "lab")
    assert missing.returncode == 2 and "no access list" in missing.stderr
