"""Parsers of bytes a node or a peer process sends are total: a result or a refusal, never a crash.

`bastion jobs` reads a listing the node writes; the agent reads JSON lines from its clients and
they from it. Each gets the hostile shapes of issue 17 and arbitrary text.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.agent.protocol import decode
from bastion.durable.listing import JobEntry, parse_listing
from bastion.transport.mosh_screen import read_screen


def test_a_job_listing_line_is_read() -> None:
    assert parse_listing("j1\tdone\t7\t1764700000\tsleep 1; date\n") == [
        JobEntry("j1", False, 7, "2025-12-02T18:26:40+00:00", "sleep 1; date")
    ]


@pytest.mark.parametrize(
    "line",
    [
        "j1\tdone\t\u00b2\t\u00b2\tcmd",  # digits str.isdigit() accepts and int() refuses
        "j1\tdone\t" + "9" * 5000 + "\t" + "9" * 5000 + "\tcmd",
        "j1\tdone\t7\t99999999999\tcmd",  # a clock past what datetime shows
        "j1\trunning\t\t\tcmd",
    ],
)
def test_hostile_numbers_in_a_job_listing_are_unknown_not_fatal(line: str) -> None:
    [entry] = parse_listing(line)
    assert entry.job == "j1"
    assert entry.exit_status in (None, 7)


def test_a_listing_splits_on_newlines_only() -> None:
    forged = "j1\tdone\t0\t0\tcmd\x1cj2\tdone\t0\t0\tforged\u2028j3\tdone\t0\t0\tx"
    assert [entry.job for entry in parse_listing(forged)] == ["j1"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_listing_parses(text: str) -> None:
    parse_listing(text.replace("|", "\t").replace("~", "\n"))


@pytest.mark.parametrize(
    "line",
    [b"[" * 100_000 + b"]" * 100_000, b'{"n": ' + b"1" * 5000 + b"}", b"[]", b"nope", b"\xff"],
)
def test_a_bad_agent_message_is_a_value_error(line: bytes) -> None:
    with pytest.raises(ValueError):
        decode(line)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_agent_line_decodes_or_is_refused(line: bytes) -> None:
    with contextlib.suppress(ValueError):
        decode(line)


@pytest.mark.parametrize(
    "rows",
    [
        ["BASTION-PAGE \u00b2 stdout 0 1 1 b64 1", "eA==", "BASTION-FIN \u00b2"],
        ["BASTION-END 1 " + "9" * 5000 + " 0 0 0 1", "BASTION-FIN 1"],
        ["BASTION-PAGE 1 stdout \u00b2 1 1 b64 1", "eA==", "BASTION-FIN 1"],
        ["BASTION-WAIT " + "1" * 5000 + " x y", "BASTION-FIN " + "1" * 5000],
    ],
)
def test_a_mosh_screen_with_hostile_numbers_is_no_page(rows: list[str]) -> None:
    assert read_screen(rows) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=6))
def test_any_mosh_screen_reads_or_is_none(rows: list[str]) -> None:
    read_screen(["BASTION-PAGE " + row if i == 0 else row for i, row in enumerate(rows)])
