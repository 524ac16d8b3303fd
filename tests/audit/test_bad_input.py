"""Parsers of host data are total, per host (issue 17 item 3).

Every file of tests/data/bad-input/audit/ (see its README) goes through its parser and the
report: a result or that host's unreadable state, never an exception, in bounded time. Then
hypothesis properties over each parser, with a small fixed budget.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.audit import access, collect, report
from bastion.audit.authorized_keys import parse_authorized_keys
from bastion.audit.observation import Coverage, HostObservation
from bastion.audit.probe_output import MAX_EPOCH, log_time, parse_probe_output
from bastion.audit.report import build_report
from bastion.audit.sshd_config import parse_sshd_t
from bastion.audit.sudo_rules import parse_sudo_list
from bastion.audit.sudoers_json import parse_sudoers_json
from bastion.models import Host, HostResult, Status
from tests.audit.probe_text import GOLDEN_NONCE, ProbeText, facts, framed

CORPUS = Path(__file__).resolve().parent.parent / "data" / "bad-input" / "audit"
BUDGET_S = 10.0  # generous: the machine is shared; a quadratic parser takes minutes here
FAST = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def corpus(suffix: str) -> list[Path]:
    found = sorted(CORPUS.glob(f"*{suffix}"))
    assert found, f"no {suffix} case in {CORPUS}"
    return found


def parse(text: str, host: str = "node9") -> HostObservation:
    return parse_probe_output(host, "127.0.0.9", text, GOLDEN_NONCE)


def timed_report(seen: HostObservation) -> report.AuditReport:
    started = time.process_time()
    built = build_report([seen], started_at="2026-01-01T00:00:00+00:00")
    assert time.process_time() - started < BUDGET_S
    return built


@pytest.mark.parametrize("case", corpus(".probe.txt"), ids=lambda p: p.name)
def test_every_bad_probe_output_gives_a_report_for_its_host(case: Path) -> None:
    started = time.process_time()
    seen = parse(framed(case.read_text()))
    built = timed_report(seen)
    assert time.process_time() - started < BUDGET_S
    assert [o.host for o in built.observations] == ["node9"]
    # Odd numbers are data, not a reason to give up on the host.
    assert built.observations[0].coverage is Coverage.FULL, built.observations[0].error
    assert seen.now <= MAX_EPOCH
    for login in seen.logins:
        assert 0 <= login.time <= MAX_EPOCH


@pytest.mark.parametrize(
    "name", ["uid-superscript", "uid-arabic-indic-digits", "uid-5000-digits", "gid-5000-digits"]
)
def test_an_unreadable_uid_drops_the_account_and_says_so(name: str) -> None:
    seen = parse(framed((CORPUS / f"{name}.probe.txt").read_text()))
    assert "eve" not in seen.accounts and "root" in seen.accounts
    assert any("bad uid or gid" in w for w in seen.warnings)


@pytest.mark.parametrize(
    "name", ["expiry-5000-digits", "expiry-superscript", "expiry-past-year-9999"]
)
def test_an_unreadable_expiry_is_unknown(name: str) -> None:
    seen = parse(framed((CORPUS / f"{name}.probe.txt").read_text()))
    assert seen.accounts["eve"].expires_day is None


@pytest.mark.parametrize("name", ["clock-past-time_t", "clock-5000-digits", "clock-1e400"])
def test_an_unreadable_clock_is_unknown(name: str) -> None:
    seen = parse(framed((CORPUS / f"{name}.probe.txt").read_text()))
    assert seen.now == 0
    assert any("clock is unreadable" in w for w in seen.warnings)


@pytest.mark.parametrize("name", ["hostkey-bits-5000-digits", "hostkey-bits-superscript"])
def test_a_host_key_with_an_absurd_size_is_skipped(name: str) -> None:
    assert parse(framed((CORPUS / f"{name}.probe.txt").read_text())).host_keys == []


def test_a_leap_day_syslog_line_goes_back_to_the_last_leap_year() -> None:
    seen = parse(framed((CORPUS / "leap-day-authlog.probe.txt").read_text()))
    stamps = [dt.datetime.fromtimestamp(login.time, dt.UTC) for login in seen.logins]
    assert stamps == [dt.datetime(2024, 2, 29, 12, tzinfo=dt.UTC)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("inf h sshd[1]: Accepted", 0),
        ("1e400 h sshd[1]: Accepted", 0),
        ("nan h sshd[1]: Accepted", 0),
        ("-5 h sshd[1]: Accepted", 0),
        ("99999999999999999999 h sshd[1]: Accepted", 0),
        ("Feb 29 12:00:00 h sshd[1]: Accepted", 1709208000),  # now is 2026: back to 2024
    ],
)
def test_log_times_out_of_range_are_unknown(line: str, expected: int) -> None:
    assert log_time(line, now=1780000000) == expected


@pytest.mark.parametrize("case", corpus(".json"), ids=lambda p: p.name)
def test_bad_cvtsudoers_json_is_an_error_for_that_file(case: Path) -> None:
    started = time.process_time()
    parsed = parse_sudoers_json(case.read_text(), "/etc/sudoers")
    assert time.process_time() - started < BUDGET_S
    assert parsed.error is not None or parsed.rules == () or parsed.rules


def test_deeply_nested_sudoers_json_in_the_probe_is_a_warning_not_a_crash() -> None:
    deep = (CORPUS / "sudoers-100000-deep.json").read_text()
    out = ProbeText().section("facts", facts(root="yes", hostname="node9"))
    out.section("passwd", ("output", "root:x:0:0::/root:/bin/sh\n"))
    out.section("sudoers", ("file", "/etc/sudoers"), ("output", deep))
    seen = parse(out.text())
    assert any("nested too deeply" in w for w in seen.warnings)


def test_authorized_keys_lines_split_on_newline_only() -> None:
    text = (CORPUS / "authorized_keys-form-feed.authorized_keys").read_text()
    parsed = parse_authorized_keys(text)
    # Line 1 is one key whose comment holds a form feed; lines 2-3 start with a character sshd
    # does not skip (U+2028, \x1c), so sshd reads them as bad options, as we do.
    assert [k.line for k in parsed.keys] == [1]
    assert parsed.keys[0].comment == "a\fssh-rsa AAAA"
    assert [b.line for b in parsed.bad] == [2, 3]


@pytest.mark.parametrize("case", corpus(".authorized_keys"), ids=lambda p: p.name)
def test_bad_authorized_keys_files_parse(case: Path) -> None:
    started = time.process_time()
    parsed = parse_authorized_keys(case.read_text())
    assert time.process_time() - started < BUDGET_S
    assert len(parsed.keys) + len(parsed.bad) >= 1


def test_bad_sshd_t_and_sudo_l_parse() -> None:
    (sshd,) = corpus(".sshd_t")
    settings_ = parse_sshd_t(sshd.read_bytes().decode("utf-8", "replace"))
    assert settings_.number("maxauthtries", 6) == 6  # 5,000 digits: the default
    (sudo,) = corpus(".sudo_l")
    listed = parse_sudo_list(sudo.read_text())
    assert listed.privilege.value == "all" and listed.nopasswd


def test_one_unreadable_host_is_its_own_coll_01_and_the_others_are_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = (CORPUS.parent.parent / "audit" / "probe" / "node3.out").read_text()
    hosts = [Host(name=n, address=f"127.0.0.{i}") for i, n in enumerate(["a", "b", "c"], 1)]
    results = [
        HostResult(host="a", address="127.0.0.1", status=Status.OK, stdout=good),
        HostResult(host="b", address="127.0.0.2", status=Status.OK, stdout="\x00garbage\n" * 3),
        HostResult(host="c", address="127.0.0.3", status=Status.OK, stdout=good),
    ]
    seen = [collect.observe(r, h, GOLDEN_NONCE) for r, h in zip(results, hosts, strict=True)]
    original = access.access_rows

    def crash_on_c(observation: HostObservation) -> list[access.AccessRow]:
        if observation.host == "c":
            raise ValueError("a bug on c")
        return original(observation)

    monkeypatch.setattr(report, "access_rows", crash_on_c)
    built = build_report(seen, started_at="2026-01-01T00:00:00+00:00")
    coverage = {o.host: o.coverage for o in built.observations}
    assert coverage == {"a": Coverage.FULL, "b": Coverage.FAILED, "c": Coverage.FAILED}
    coll = {f.host: f.message for f in built.findings if f.id == "COLL-01"}
    assert coll["b"].startswith("probe output unreadable: ")
    assert coll["c"] == "probe output unreadable: ValueError: a bug on c"
    assert {r.host for r in built.rows} == {"a"}
    assert built.exit_code(max(f.severity for f in built.findings)) == 3


# Properties: any input gives a result, never an exception.


@FAST
@given(st.text(max_size=300))
def test_any_authorized_keys_text_parses(text: str) -> None:
    parse_authorized_keys(text)


@FAST
@given(st.text(max_size=300))
def test_any_sshd_t_and_sudo_l_text_parses(text: str) -> None:
    parse_sshd_t(text).number("maxauthtries")
    parse_sudo_list(text)


_SUDOERS_KEYS = [
    "Defaults", "User_Specs", "User_List", "Host_List", "Cmnd_Specs", "Options", "runasusers",
    "Commands", "Binding", "username", "usergroup", "userid", "command", "authenticate",
    "negated", "hostname",
]  # fmt: skip
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(_SUDOERS_KEYS), inner, max_size=4)
    ),
    max_leaves=20,
)


@FAST
@given(_JSON)
def test_any_json_document_from_cvtsudoers_parses(doc: object) -> None:
    parse_sudoers_json(json.dumps(doc), "/etc/sudoers")


@FAST
@given(st.text(max_size=60), st.integers(min_value=-(2**70), max_value=2**70))
def test_any_log_line_and_clock_give_a_time_in_range(line: str, now: int) -> None:
    assert 0 <= log_time(line, now) <= MAX_EPOCH


_FIELD_TEXT = st.text(max_size=40)


@FAST
@given(
    passwd=st.lists(st.lists(_FIELD_TEXT, min_size=7, max_size=7).map(":".join), max_size=3),
    shadow=st.lists(st.lists(_FIELD_TEXT, min_size=3, max_size=3).map(":".join), max_size=3),
    now=_FIELD_TEXT,
    listing=_FIELD_TEXT,
    content=_FIELD_TEXT,
    login=_FIELD_TEXT,
)
def test_any_field_values_give_a_report(
    passwd: list[str], shadow: list[str], now: str, listing: str, content: str, login: str
) -> None:
    out = ProbeText().section("facts", facts(root="yes", now=now))
    out.section("sshd_t", ("account", "root"), ("output", "usepam yes\n"))
    out.section("passwd", ("output", "".join(line + "\n" for line in passwd)))
    out.section("shadow", ("output", "".join(line + "\n" for line in shadow)))
    name = passwd[0].split(":")[0] if passwd else "eve"
    out.section("keys", ("meta", f"{name}\0.ssh/authorized_keys\0/x\0{listing}\n"),
                ("dirs", f"{listing}\0"), ("content", content))  # fmt: skip
    out.section("hostkeys", ("hostkey", f"/k\0root|600\0{listing}\0"))
    out.section("privatekeys", ("keys", f"/p\0{name}\0no\0{listing}\0"))
    out.section("logins", ("source", "authlog"), ("output", login + "\n"))
    built = build_report([parse(out.text())], started_at="2026-01-01T00:00:00+00:00")
    assert built.observations[0].coverage is Coverage.FULL


def test_a_sudo_l_line_repeating_a_tag_is_read_in_linear_time() -> None:
    line = "    (ALL) " + "NOPASSWD: " * 200_000 + "ALL\n"  # more than 60 s of CPU on d293b42
    started = time.process_time()
    listed = parse_sudo_list("User eve may run the following commands on h:\n" + line)
    assert time.process_time() - started < BUDGET_S
    assert (listed.privilege.value, listed.nopasswd) == ("all", True)


def test_attributing_thousands_of_sudoers_rules_is_linear() -> None:
    from bastion.audit.sudoers_json import MAX_RULES, attribute_sources

    specs = [
        {"User_List": [{"username": f"u{i}"}], "Cmnd_Specs": [{"Commands": [{"command": "ALL"}]}]}
        for i in range(MAX_RULES)
    ]
    text = json.dumps({"User_Specs": specs})
    whole = parse_sudoers_json(text, "/etc/sudoers")
    part = parse_sudoers_json(text, "/etc/sudoers.d/many")
    started = time.process_time()
    policy = attribute_sources([whole, part])
    assert time.process_time() - started < BUDGET_S
    assert {r.source for r in policy.rules} == {"/etc/sudoers.d/many"}
    too_many = json.dumps({"User_Specs": [*specs, specs[0]]})
    assert parse_sudoers_json(too_many, "/etc/sudoers").error == (
        f"/etc/sudoers: more than {MAX_RULES} sudoers rules"
    )


def test_probe_output_past_its_cap_is_not_audited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collect, "PROBE_OUTPUT_CHARS", 1000)
    text = ProbeText().section("facts", facts(root="yes")).text() + "A" * 1000
    result = HostResult(host="a", address="127.0.0.1", status=Status.OK, stdout=text[:1000])
    seen = collect.observe(result, Host(name="a", address="127.0.0.1"), GOLDEN_NONCE)
    assert seen.coverage is Coverage.FAILED
    assert seen.error == "probe output over 1,000 characters: the rest was dropped"
