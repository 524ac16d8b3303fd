"""The audit's other pure parsers: sudo -l, sshd -T, the probe's sectioned output (golden)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from bastion.audit.findings import Severity
from bastion.audit.observation import Coverage, PasswordState
from bastion.audit.probe_output import parse_probe_output
from bastion.audit.sshd_config import parse_sshd_t, password_path_open
from bastion.audit.sudo_rules import parse_sudo_list
from tests.audit.golden import DATA, check_golden
from tests.audit.probe_text import GOLDEN_NONCE, framed

SUDO = sorted((DATA / "sudo").glob("*.txt"))
PROBES = sorted((DATA / "probe").glob("*.out"))


@pytest.mark.parametrize(
    ("case", "privilege", "nopasswd"),
    [
        ("all-with-password", "all", False),
        ("hostile", "all", True),
        ("nopasswd-all", "all", True),
        ("some-commands", "some", False),
    ],
)
def test_sudo_list(case: str, privilege: str, nopasswd: bool) -> None:
    access = parse_sudo_list((DATA / "sudo" / f"{case}.txt").read_text())
    assert (access.privilege.value, access.nopasswd) == (privilege, nopasswd)


def test_sudo_cases_all_have_an_expectation() -> None:
    assert {p.stem for p in SUDO} == {
        "all-with-password", "hostile", "nopasswd-all", "some-commands"
    }  # fmt: skip


def test_sshd_t_normalises_the_root_login_alias_and_keeps_repeated_keywords() -> None:
    settings = parse_sshd_t(
        "permitrootlogin without-password\nhostkey /a\nhostkey /b\npasswordauthentication no\n"
    )
    assert settings.get("permitrootlogin") == "prohibit-password"
    assert settings.all("hostkey") == ["/a", "/b"]
    assert settings.get("missing", "dflt") == "dflt"


@pytest.mark.parametrize(
    ("text", "open_"),
    [
        ("passwordauthentication yes\n", True),
        ("passwordauthentication no\nkbdinteractiveauthentication yes\nusepam yes\n", True),
        ("passwordauthentication no\nkbdinteractiveauthentication yes\nusepam no\n", False),
        ("passwordauthentication yes\nauthenticationmethods publickey,password\n", False),
        ("passwordauthentication yes\nauthenticationmethods publickey password\n", True),
    ],
)
def test_password_path(text: str, open_: bool) -> None:
    assert password_path_open(parse_sshd_t(text)) is open_


def observation_data(path: Path) -> dict[str, Any]:
    seen = parse_probe_output(path.stem, "127.0.0.1", path.read_text(), GOLDEN_NONCE)
    data = dataclasses.asdict(seen)
    data["sshd"] = {user: s.get("permitrootlogin") for user, s in seen.sshd.items()}
    for key_file in data["key_files"]:
        key_file["keys"] = [(k["line"], k["fingerprint"]) for k in key_file["keys"]]
        key_file["lines"] = len(key_file["lines"])
    data["accounts"] = {
        n: [a["password"], a["shell"]] for n, a in data["accounts"].items() if a["uid"] >= 1000
        or n == "root"
    }  # fmt: skip
    return data


@pytest.mark.parametrize("case", PROBES, ids=lambda p: p.stem)
def test_probe_output_golden(case: Path) -> None:
    check_golden(observation_data(case), case.with_suffix(".expected.json"))


def test_file_content_cannot_forge_a_marker() -> None:
    text = (
        "@@section facts\n@@fact root yes\n@@section sshd_t root\n|usepam no\n"
        "@@section passwd\n|eve:x:1000:1000::/home/eve:/bin/sh\n"
        "@@section keys eve /home/eve/.ssh/authorized_keys\n@@pattern .ssh/authorized_keys\n"
        "|@@section shadow\n|@@fact root no\n@@end\n"
    )
    seen = parse_probe_output("h", "127.0.0.1", framed(text), GOLDEN_NONCE)
    assert seen.facts["root"] == "yes"
    assert seen.coverage is Coverage.FULL
    assert [b.line for b in seen.key_files[0].bad_lines] == [1, 2]
    assert seen.accounts["eve"].password is PasswordState.UNKNOWN


def test_a_probe_cut_short_keeps_what_it_printed_and_says_so() -> None:
    seen = parse_probe_output(
        "h", "127.0.0.1", framed("@@section facts\n@@fact root yes\n"), GOLDEN_NONCE
    )
    assert seen.coverage is Coverage.FAILED
    assert any("stopped before its end" in w for w in seen.warnings)


def test_a_probe_without_root_is_partial_and_says_what_it_could_not_see() -> None:
    from bastion.audit.report import build_report

    case = DATA / "probe" / "node1-as-nobody.out"
    seen = parse_probe_output("node1", "127.0.0.1", case.read_text(), GOLDEN_NONCE)
    assert seen.coverage is Coverage.PARTIAL
    report = build_report([seen], started_at="2026-01-01T00:00:00+00:00")
    ids = {f.id for f in report.findings}
    assert "COLL-02" in ids and "CFG-15" not in ids
    assert report.exit_code(Severity.CRITICAL) == 0  # partial is a finding, not "not audited"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("1779990000.123456 web1 sshd[1]: Accepted publickey", 1779990000),
        ("2026-05-28T17:40:00.123456+00:00 web1 sshd[1]: Accepted", 1779990000),
        ("May 28 17:40:00 web1 sshd[1]: Accepted publickey", 1779990000),
        ("Dec 31 23:00:00 web1 sshd[1]: Accepted (last year's)", 1767222000),
        ("garbage", 0),
    ],
)
def test_log_times(line: str, expected: int) -> None:
    from bastion.audit.probe_output import log_time

    assert log_time(line, now=1780000000) == expected
