"""The sudoers policy from ``cvtsudoers -f json`` (golden), and how the probe's sections use it.

Each case under tests/data/audit/sudoers/ is a sudoers file with its sudoers.d, the JSON that
``cvtsudoers -e -s aliases -f json`` printed for the whole file and for each included file
(as the probe runs it), the accounts to evaluate, and the expected grants.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bastion.audit.access import access_rows
from bastion.audit.checks import host_findings
from bastion.audit.observation import HostObservation
from bastion.audit.probe_output import parse_probe_output
from bastion.audit.sudoers_json import (
    attribute_sources,
    grant_for,
    parse_sudoers_json,
)
from tests.audit.golden import DATA, check_golden
from tests.audit.probe_text import GOLDEN_NONCE, framed

CASES = sorted(p for p in (DATA / "sudoers").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_sudoers_json_golden(case: Path) -> None:
    files = [parse_sudoers_json((case / "sudoers.json").read_text(), "/etc/sudoers")]
    for part in sorted((case / "sudoers.d").glob("*.json")):
        files.append(parse_sudoers_json(part.read_text(), f"/etc/sudoers.d/{part.stem}"))
    assert all(f.error is None for f in files)
    policy = attribute_sources(files)
    accounts = json.loads((case / "accounts.json").read_text())
    grants = {}
    for name, (uid, gid, groups) in accounts.items():
        grant = grant_for(policy, name, uid, groups, [gid], hostname="node1")
        grants[name] = dataclasses.asdict(grant) if grant else None
    check_golden(grants, case / "expected.json")


def test_the_cases_cover_the_semantics() -> None:
    debian = json.loads((DATA / "sudoers" / "debian" / "expected.json").read_text())
    assert debian["ops"]["source"] == "/etc/sudoers.d/ops"
    assert debian["ops"]["access"]["nopasswd"] is True
    assert (debian["alice"]["via"], debian["alice"]["source"]) == ("%sudo", "/etc/sudoers")
    assert debian["alice"]["access"]["privilege"] == "all"
    assert debian["deploy"]["access"]["privilege"] == "some"  # www-data only, or two commands
    assert debian["nobody"] is None
    policy = json.loads((DATA / "sudoers" / "policy" / "expected.json").read_text())
    assert policy["mallory"] is None  # !mallory in the alias
    assert policy["dave"]["access"]["nopasswd"] is True  # Defaults !authenticate
    assert policy["eve"]["access"]["nopasswd"] is False  # PASSWD: wins over the Default
    assert policy["bob"]["access"]["privilege"] == "some"  # ALL only on db1, db2
    assert policy["frank"]["access"]["privilege"] == "all"  # %#2000, primary gid
    assert policy["carol"]["source"] == "/etc/sudoers.d/carol"


def test_bad_json_is_an_error_not_a_crash() -> None:
    assert parse_sudoers_json("{not json", "/etc/sudoers").error
    assert parse_sudoers_json("[]", "/etc/sudoers").error
    empty = parse_sudoers_json("", "/etc/sudoers.d/README")  # only comments: cvtsudoers prints ""
    assert (empty.error, empty.rules) == (None, ())


def _probe(sudoers: dict[str, str], sudo_l: str) -> str:
    lines = [
        "@@section facts", "@@fact hostname node3", "@@fact root yes",
        "@@section sshd_t root", "|passwordauthentication no",
        "@@section passwd", "|root:x:0:0:root:/root:/bin/bash",
        "|ops:x:1001:1001::/home/ops:/bin/bash",
        "@@section group", "|ops:x:1001:",
        "@@section keys ops /home/ops/.ssh/authorized_keys", "@@pattern .ssh/authorized_keys",
        "@@stat regular file|ops|ops|600|0|100",
        "|ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGjNTuBnsJjU+KDMTpLs6cJU3p0nwQMfAT8Ux7yS7xNq ops",
        "@@section sudouser ops", *("|" + line for line in sudo_l.splitlines()),
    ]  # fmt: skip
    for source, text in sudoers.items():
        lines.append(f"@@section sudoers {source}")
        lines += ["|" + line for line in text.splitlines()]
    lines.append("@@end")
    return "\n".join(lines) + "\n"


SUDO_L = "User ops may run the following commands on node3:\n    (ALL) NOPASSWD: ALL\n"


def test_priv_01_names_the_sudoers_file_and_markers_cannot_be_faked() -> None:
    case = DATA / "sudoers" / "debian"
    sections = {
        "/etc/sudoers": (case / "sudoers.json").read_text(),
        "/etc/sudoers.d/ops": (case / "sudoers.d" / "ops.json").read_text(),
    }
    seen = parse_probe(_probe(sections, SUDO_L))
    assert seen.coverage.value == "ok"
    assert not any("@@" in w for w in seen.warnings)  # the passprompt's "@@end" is data
    assert seen.sudoers["ops"].source == "/etc/sudoers.d/ops"
    assert not seen.warnings
    priv = [f for f in host_findings(seen, access_rows(seen)) if f.id == "PRIV-01"]
    assert [(f.account, f.file, f.message) for f in priv] == [
        ("ops", "/etc/sudoers.d/ops", "sudo: NOPASSWD ALL (via ops)")
    ]


def test_a_disagreement_with_sudo_l_is_a_collection_warning() -> None:
    main = '{"User_Specs": [{"User_List": [{"username": "ops"}], "Host_List": [{"hostname": '
    main += '"ALL"}], "Cmnd_Specs": [{"Commands": [{"command": "/bin/ls"}]}]}]}'
    seen = parse_probe(_probe({"/etc/sudoers": main}, SUDO_L))
    assert seen.sudo["ops"].nopasswd  # sudo -l stays the authority for the privilege
    assert any("disagree for ops" in w for w in seen.warnings)
    priv = [f for f in host_findings(seen, access_rows(seen)) if f.id == "PRIV-01"]
    assert [f.file for f in priv] == [None]


def test_without_cvtsudoers_the_finding_has_no_file() -> None:
    seen = parse_probe(_probe({}, SUDO_L))
    assert seen.sudoers == {}
    priv = [f for f in host_findings(seen, access_rows(seen)) if f.id == "PRIV-01"]
    assert [(f.file, f.message) for f in priv] == [(None, "sudo: NOPASSWD ALL")]


def parse_probe(text: str) -> HostObservation:
    return parse_probe_output("node3", "127.0.0.1", framed(text), GOLDEN_NONCE)
