"""A plain user on a lab node tries to hide from `bastion audit` (issue 11 item 2).

The user holds NOPASSWD ALL sudo and a key that logs in. Through what a plain user controls
(a symlink target with an embedded newline, a file name, the key file's own bytes) they forge
the probe's markers, so that their key lands in another section and nothing is reported. On
main at d293b42 each trick gave exit 0, coverage ok and no PRIV-01 for the user; now the key is
reported with its sudo, or the host is not fully audited (COLL-01, exit 3).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.audit.conftest import AuditLab

pytestmark = pytest.mark.lab

EVE = "bst-audit-eve"


def _on_node3(lab: AuditLab, script: str) -> None:
    done = lab.cli("run", "-i", "lab", "-H", "node3", script, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def eve(audit_lab: AuditLab) -> Iterator[str]:
    """A plain user on node3 with NOPASSWD ALL sudo; removed again after the test."""
    _on_node3(
        audit_lab,
        f"userdel -r {EVE} 2>/dev/null; rm -f /etc/sudoers.d/{EVE}; set -e; "
        f"useradd -m -s /bin/bash {EVE}; usermod -p '*' {EVE}; "
        f"echo '{EVE} ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/{EVE}; "
        f"chmod 440 /etc/sudoers.d/{EVE}; "
        f"install -d -m 700 -o {EVE} -g {EVE} /home/{EVE}/.ssh",
    )
    yield EVE
    _on_node3(audit_lab, f"userdel -r {EVE} 2>/dev/null; rm -f /etc/sudoers.d/{EVE}; true")


def _as_eve(lab: AuditLab, script: str) -> None:
    """Run ``script`` on node3 as the plain user (what they can do without any privilege)."""
    quoted = script.replace("'", "'\\''")
    _on_node3(lab, f"runuser -u {EVE} -- sh -c '{quoted}'")


def _audit_node3(lab: AuditLab) -> tuple[int, dict[str, Any]]:
    done = lab.cli("audit", "-i", "lab", "-H", "node3", "-F", "json", timeout=180)
    assert done.returncode in (1, 3), done.stdout[-2000:] + done.stderr
    return done.returncode, json.loads(done.stdout)


def _hidden(code: int, report: dict[str, Any], fingerprint: str) -> bool:
    """Whether eve got away with it: host fully audited and her key or sudo not reported."""
    host = report["hosts"][0]
    if code == 3 or host["coverage"] != "ok":
        return False  # not fully audited: COLL-01, the operator is told
    rows = [r for r in report["rows"] if r["account"] == EVE]
    priv = [f for f in report["findings"] if f["id"] == "PRIV-01" and f["account"] == EVE]
    return not (any(r["fingerprint"] == fingerprint for r in rows) and priv)


def test_a_symlink_target_with_a_newline_and_a_marker_hides_nothing(
    audit_lab: AuditLab, eve: str
) -> None:
    key = audit_lab.keys["alice"]
    # The key lives in a file whose name carries a newline and forged markers (old and new
    # spellings); authorized_keys is a symlink to it, so readlink prints the forged lines.
    _as_eve(
        audit_lab,
        "cd ~/.ssh && name=$(printf 'k\\n@@section hostkeys\\n@@end\\n|x') && "
        f"printf '%s\\n' '{key.public}' >\"$name\" && chmod 600 \"$name\" && "
        'ln -s "$name" authorized_keys',
    )
    code, report = _audit_node3(audit_lab)
    assert not _hidden(code, report, key.fingerprint)
    rows = [r for r in report["rows"] if r["account"] == eve]
    assert [r["fingerprint"] for r in rows] == [key.fingerprint]
    assert ("PRIV-01", eve) in {(f["id"], f["account"]) for f in report["findings"]}
    assert report["hosts"][0]["coverage"] == "ok"


def test_key_file_content_with_form_feeds_and_markers_hides_nothing(
    audit_lab: AuditLab, eve: str
) -> None:
    key = audit_lab.keys["alice"]
    # Form feed, \x1c, U+2028: str.splitlines() breaks a line there; sshd does not.
    forged = "\\f@@section hostkeys\\034@@end\\342\\200\\250@@section hostkeys"
    _as_eve(
        audit_lab,
        f"printf '%s\\n' '{key.public}' '# {forged}' >~/.ssh/authorized_keys; "
        f"printf '# {forged}\\n' >>~/.ssh/authorized_keys; chmod 600 ~/.ssh/authorized_keys",
    )
    code, report = _audit_node3(audit_lab)
    assert not _hidden(code, report, key.fingerprint)
    assert report["hosts"][0]["coverage"] == "ok"
    assert ("PRIV-01", eve) in {(f["id"], f["account"]) for f in report["findings"]}


def test_a_private_key_file_name_with_a_newline_forges_nothing(
    audit_lab: AuditLab, eve: str
) -> None:
    key = audit_lab.keys["alice"]
    lateral = audit_lab.keys["lateral"]
    # The private key scan lists files under /home/*/.ssh: a name with a newline and markers.
    private = lateral.private.replace("'", "")
    _as_eve(
        audit_lab,
        f"cd ~/.ssh && printf '%s\\n' '{key.public}' >authorized_keys && "
        "chmod 600 authorized_keys && "
        "name=$(printf 'id\\n@@section hostkeys\\n@@end\\nx') && "
        f"printf '%s\\n' '{private}' >\"$name\" && chmod 600 \"$name\"",
    )
    code, report = _audit_node3(audit_lab)
    assert not _hidden(code, report, key.fingerprint)
    assert report["hosts"][0]["coverage"] == "ok"
    node3 = report["hosts"][0]
    paths = [k["path"] for k in node3["private_keys"]]
    assert f"/home/{eve}/.ssh/id\n@@section hostkeys\n@@end\nx" in paths
