"""`access apply` cannot lock bastion out (issue 11 item 5), on the seeded lab.

On main at d293b42 declaring bastion's own key with `from="10.9.9.9"` (or
`restrict,command="/bin/false"`) locked bastion out of the node, exit 0. Now the guard refuses
it; with --allow-lockout the write happens, a new login fails, and the backup is put back over
the session still open (REVERTED, exit 1). `access restore` puts back the newest backup.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audit.conftest import AuditLab
from tests.audit.test_access_lab import NODE3, bootstrap, drafted, root_keys_on_node3, write

pytestmark = pytest.mark.lab

__all__ = ["drafted"]  # the module fixture, shared with test_access_lab


def _with_bastion_options(drafted: str, tmp_path: Path, options: str) -> Path:
    data = bootstrap(drafted, tmp_path / "access.yaml")
    for grant in data["grants"]:
        if grant["to"] == "bastion-lab":
            grant["options"] = options
    return write(tmp_path / "locked.yaml", data)


def _still_in(lab: AuditLab, host: str = "node3") -> bool:
    return lab.cli("run", "-i", "lab", "-H", host, "true").returncode == 0


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ('from="10.9.9.9"', 'from="10.9.9.9" does not match'),
        ('restrict,command="/bin/false"', 'command="/bin/false" replaces every command'),
    ],
)
def test_options_that_stop_bastions_login_are_refused(
    audit_lab: AuditLab, drafted: str, tmp_path: Path, options: str, why: str
) -> None:
    original = root_keys_on_node3(audit_lab)
    declared = _with_bastion_options(drafted, tmp_path, options)
    done = audit_lab.cli("access", "apply", *NODE3, "--access", str(declared))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "node3: REFUSED: would lock bastion out" in done.stdout and why in done.stdout
    assert root_keys_on_node3(audit_lab) == original
    assert _still_in(audit_lab)


def test_a_lockout_let_through_is_reverted_over_the_open_session(
    audit_lab: AuditLab, drafted: str, tmp_path: Path
) -> None:
    original = root_keys_on_node3(audit_lab)
    declared = _with_bastion_options(drafted, tmp_path, 'from="10.9.9.9"')
    done = audit_lab.cli(
        "access", "apply", *NODE3, "--access", str(declared), "--allow-lockout", timeout=180
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "node3: REVERTED root /root/.ssh/authorized_keys: a new login as bastion failed" in (
        done.stdout
    )
    assert "node3: written" not in done.stdout
    assert "Traceback" not in done.stderr
    assert root_keys_on_node3(audit_lab) == original
    assert _still_in(audit_lab)


def test_restore_puts_back_the_newest_backup(
    audit_lab: AuditLab, drafted: str, tmp_path: Path
) -> None:
    original = root_keys_on_node3(audit_lab)
    data = bootstrap(drafted, tmp_path / "access.yaml")
    data["grants"] = [g for g in data["grants"] if g["to"] != "intruder@seed"]
    declared = write(tmp_path / "declared.yaml", data)
    applied = audit_lab.cli("access", "apply", *NODE3, "--access", str(declared))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "intruder@seed" not in root_keys_on_node3(audit_lab)
    restored = audit_lab.cli("access", "restore", *NODE3)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "node3: restored root from backup " in restored.stdout
    assert root_keys_on_node3(audit_lab) == original
    bad = audit_lab.cli("access", "restore", *NODE3, "--stamp", "../x")
    assert bad.returncode == 2 and bad.stderr.startswith("bastion: error: ")


def test_the_canary_stops_the_rollout_when_it_is_reverted(
    audit_lab: AuditLab, drafted: str, tmp_path: Path
) -> None:
    before = {
        host: audit_lab.cli("run", "-i", "lab", "-H", host, "cat /root/.ssh/authorized_keys")
        .stdout for host in ("node2", "node3")
    }  # fmt: skip
    declared = _with_bastion_options(drafted, tmp_path, 'from="10.9.9.9"')
    done = audit_lab.cli(
        "access", "apply", "-i", "lab", "-H", "node[2-3]", "--access", str(declared),
        "--allow-lockout", "--canary", timeout=180,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "node2: REVERTED root" in done.stdout
    assert "node3: skipped (not started: the canary node2 did not succeed)" in done.stdout
    assert "bastion: stopped: the canary node2 did not succeed" in done.stderr
    for host, text in before.items():
        assert audit_lab.cli("run", "-i", "lab", "-H", host, "cat /root/.ssh/authorized_keys")\
            .stdout == text  # fmt: skip
