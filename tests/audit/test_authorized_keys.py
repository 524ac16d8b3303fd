"""The authorized_keys parser against golden files, and against ssh-keygen for fingerprints."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from bastion.audit.authorized_keys import (
    AuthorizedKey,
    KeyLineError,
    parse_authorized_keys,
    parse_key_line,
)
from tests.audit.golden import DATA, check_golden

CASES = sorted((DATA / "authorized_keys").glob("*.keys"))


def as_data(key: AuthorizedKey) -> dict[str, object]:
    record = dataclasses.asdict(key)
    record["options"] = {
        "flags": sorted(key.options.flags),
        "values": [list(pair) for pair in key.options.values],
    }
    del record["blob"]  # long and redundant with the fingerprint
    return record


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_golden(case: Path) -> None:
    parsed = parse_authorized_keys(case.read_text(encoding="utf-8"))
    actual = {
        "keys": [as_data(k) for k in parsed.keys],
        "bad": [dataclasses.asdict(b) for b in parsed.bad],
    }
    check_golden(actual, case.with_suffix(".expected.json"))


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is not installed")
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_fingerprints_and_bits_agree_with_ssh_keygen(case: Path) -> None:
    listed = subprocess.run(
        ["ssh-keygen", "-lf", str(case)], capture_output=True, text=True, check=False
    ).stdout
    # ssh-keygen prints "BITS SHA256:... comment (TYPE)" and skips what it cannot read.
    rows = [line.split() for line in listed.splitlines()]
    theirs = {(int(row[0]), row[1]) for row in rows if row and row[0].isdigit()}
    parsed = parse_authorized_keys(case.read_text(encoding="utf-8"))
    ours = {(k.bits, k.fingerprint) for k in parsed.keys}
    assert ours == theirs


def test_every_non_blank_non_comment_line_is_a_key_or_a_reported_error() -> None:
    for case in CASES:
        lines = case.read_text(encoding="utf-8").splitlines()
        meaningful = {
            n for n, text in enumerate(lines, 1) if text.strip() and text.strip()[0] != "#"
        }
        parsed = parse_authorized_keys("\n".join(lines))
        seen = {k.line for k in parsed.keys} | {b.line for b in parsed.bad}
        assert seen == meaningful, case.name


def test_rendered_line_parses_back_to_the_same_key() -> None:
    for case in CASES:
        for key in parse_authorized_keys(case.read_text(encoding="utf-8")).keys:
            again = parse_key_line(key.render(), key.line)
            assert again == key


def test_a_hostile_line_cannot_flood_the_reason() -> None:
    with pytest.raises(KeyLineError) as error:
        parse_key_line("x" * 5000 + " AAAA")
    assert len(str(error.value)) < 100
