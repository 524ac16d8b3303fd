"""The parsers of what a host prints for copy and fetch are total: any text gives a result.

The checksum pass's ``stat``/``sha256sum`` lines, the exec fallback's ``stat`` lines and PAX
headers come from the node; hypothesis feeds them arbitrary text, including the digit-like
characters ``str.isdigit`` accepts and ``int`` refuses (``²``) and numbers of 5,000 digits.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.transfer.remote_state import SEPARATOR, parse_state
from bastion.transport.asyncssh_sftp import _pax_path, _stat_entry

FIELD = st.one_of(st.text(max_size=8), st.sampled_from(["²", "9" * 5000, "-1", "0755", "18"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(FIELD, min_size=1, max_size=10), max_size=5), st.text(max_size=50))
def test_the_checksum_pass_output_never_raises(lines: list[list[str]], tail: str) -> None:
    text = "\n".join("|".join(fields) for fields in lines) + f"\n{SEPARATOR}\n{tail}"
    parse_state(text.encode("utf-8", "surrogateescape"))


@settings(max_examples=200, deadline=None)
@given(st.lists(FIELD, min_size=1, max_size=6), st.text(max_size=10))
def test_a_stat_line_never_raises(fields: list[str], name: str) -> None:
    _stat_entry(name, "|".join(fields))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_a_pax_header_never_raises(data: bytes) -> None:
    _pax_path(data)


def test_known_lines_parse() -> None:
    state = parse_state(b"regular file|5|644|0|0|root|root|1700000000|/etc/x\n")
    assert state["/etc/x"].mtime == 1700000000 and state["/etc/x"].mode == 0o644
    assert parse_state("regular file|²|644|0|0|r|r|1|/x\n".encode()) == {}
    entry = _stat_entry("f", "directory|4096|700|12")
    assert entry is not None and (entry.kind, entry.mode, entry.mtime) == ("dir", 0o700, 12.0)
    assert _stat_entry("f", "directory|4096|7²0|12") is not None  # an odd mode reads as 0
    assert _pax_path(b"20 path=a/b/c/d/e/f\n") == "a/b/c/d/e/f"
