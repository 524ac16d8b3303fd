"""`visible` (cat -v notation for hosts' control characters) and the renderers that use it."""

from __future__ import annotations

import io
import re
import subprocess

import pyte
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.models import HostOutput, HostResult, Status
from bastion.render.diff import DiffRenderer
from bastion.render.grouped import GroupedRenderer
from bastion.render.inline import InlineRenderer
from bastion.render.status_board import StatusBoard, cut_to_width
from bastion.render.summary import render_summary
from bastion.render.visible import split_lines, visible, visible_pieces

UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("plain text", "plain text"),
        ("\x1b]52;c;cm0gLXJm\x07", "^[]52;c;cm0gLXJm^G"),
        ("\x1b[2J\x1b[H", "^[[2J^[[H"),
        ("disk FULL\rall good", "disk FULL^Mall good"),
        ("line\r\n", "line\r\n"),
        ("\r\r\n", "^M\r\n"),
        ("abc\b\b", "abc^H^H"),
        ("tab\there\n", "tab\there\n"),
        ("\x00\x7f", "^@^?"),
        ("\x9b2J\x85", "M-^[2JM-^E"),
        ("ab\u202ecd\u2066", "ab<U+202E>cd<U+2066>"),
        ("\u2028", "<U+2028>"),
        ("naïve ünïcode ✓ 日本", "naïve ünïcode ✓ 日本"),
    ],
)
def test_visible_shows_controls_like_cat_v(sent: str, shown: str) -> None:
    assert visible(sent) == shown


def test_visible_agrees_with_cat_v_on_every_ascii_control() -> None:
    sent = "".join(f"{chr(c)}x" for c in [*range(0, 9), *range(11, 32), 127]) + "\n"
    cat = subprocess.run(["cat", "-v"], input=sent.encode(), capture_output=True, check=True)
    assert visible(sent) == cat.stdout.decode()


@given(st.text())
def test_nothing_a_terminal_acts_on_is_left(text: str) -> None:
    shown = visible(text)
    assert UNSAFE.search(shown) is None
    assert re.search("\r(?!\n)", shown) is None
    assert shown.count("\n") == text.count("\n")  # lines stay lines


@given(st.text(), st.lists(st.integers(min_value=0, max_value=50), max_size=6))
def test_pieces_split_anywhere_show_the_same(text: str, cuts: list[int]) -> None:
    points = sorted({min(c, len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    assert "".join(visible_pieces(pieces)) == visible(text)
    lines = text.split("\n")
    if lines[-1] == "":  # a final line feed ends the last line, it does not start one
        lines.pop()
    assert list(split_lines(pieces)) == lines


def result(host: str, status: Status = Status.OK, **fields: object) -> HostResult:
    values: dict[str, object] = {"address": f"127.0.1.{host[-1]}", "exit_status": 0}
    values.update(fields)
    return HostResult(host=host, status=status, **values)  # type: ignore[arg-type]


def test_inline_shows_controls_and_raw_keeps_them() -> None:
    out = io.StringIO()
    InlineRenderer(out, io.StringIO()).handle(HostOutput("node1", "stdout", "a\rb\x1b[2J\n"))
    assert out.getvalue() == "node1: a^Mb^[[2J\n"
    raw = io.StringIO()
    InlineRenderer(raw, io.StringIO(), raw=True).handle(HostOutput("node1", "stdout", "a\rb\n"))
    assert raw.getvalue() == "node1: a\rb\n"


def test_inline_unpadded_is_pdsh_format_and_no_prefix_is_pdsh_n() -> None:
    out, err = io.StringIO(), io.StringIO()
    renderer = InlineRenderer(out, err, 0)
    renderer.handle(HostOutput("db1", "stdout", "x\n\ny\n"))
    renderer.handle(HostOutput("frontend-web-02", "stdout", "x\n"))
    renderer.handle(HostOutput("db1", "stderr", "oops\n"))
    assert out.getvalue() == "db1: x\ndb1: \ndb1: y\nfrontend-web-02: x\n"
    assert err.getvalue() == "db1 [stderr]: oops\n"
    bare = io.StringIO()
    InlineRenderer(bare, io.StringIO(), 10, prefix=False).handle(
        HostOutput("db1", "stdout", "x\ny\n")
    )
    assert bare.getvalue() == "x\ny\n"


def test_inline_on_a_terminal_aligns_stdout_with_stderr_and_colours_each_host() -> None:
    out, err = io.StringIO(), io.StringIO()
    renderer = InlineRenderer(out, err, 5, color=True, hosts=["node1", "node2"], align_streams=True)
    renderer.handle(HostOutput("node1", "stdout", "a\n"))
    renderer.handle(HostOutput("node2", "stdout", "b\n"))
    renderer.handle(HostOutput("node2", "stderr", "c\n"))
    assert out.getvalue() == (
        "\x1b[36mnode1:\x1b[0m          a\n\x1b[32mnode2:\x1b[0m          b\n"
    )
    assert err.getvalue() == "\x1b[32mnode2\x1b[0m\x1b[31m [stderr]:\x1b[0m c\n"


def test_grouped_line_mode_and_no_header() -> None:
    results = [
        result("node1", stdout="a\nb\n"),
        result("node2", stdout="a\nc\x1b[1A\n"),
        result("node3", stdout="a\nb\n"),
    ]
    out = io.StringIO()
    GroupedRenderer(out, io.StringIO(), lines=True).finish(results)
    assert out.getvalue() == "node[1,3]: a\nnode[1,3]: b\nnode2: a\nnode2: c^[[1A\n"
    bare = io.StringIO()
    GroupedRenderer(bare, io.StringIO(), prefix=False).finish(results)
    assert bare.getvalue() == "a\nb\na\nc^[[1A\n"


def test_diff_defaults_to_the_majority_and_shows_controls() -> None:
    results = [
        result("node1", stdout="x\x1b]0;t\x07\n"),
        result("node2", stdout="y\n"),
        result("node3", stdout="y\n"),
    ]
    out = io.StringIO()
    DiffRenderer(out, io.StringIO(), None).finish(results)
    assert out.getvalue() == (
        "--- node[2-3] (2 of 3 hosts)\n+++ node1 (1)\n@@ -1 +1 @@\n-y\n+x^[]0;t^G\n"
    )
    same = io.StringIO()
    DiffRenderer(same, io.StringIO(), None).finish(results[1:])
    assert same.getvalue() == "node[2-3]: all identical\n"


def test_summary_folds_the_same_failure_on_different_addresses() -> None:
    results = [
        result(
            f"node{n}",
            Status.UNREACHABLE,
            exit_status=None,
            error=f"connection refused by 127.0.1.{n}:22 (after 3 attempts)",
        )
        for n in (1, 2, 3)
    ]
    results.append(
        result("node4", Status.FAILED, exit_status=1, error="exit status 1", stderr="\x1b[2Kx\n")
    )
    assert render_summary(results, 1.0) == (
        "bastion: 4 hosts in 1.00s: 1 failed, 3 unreachable\n"
        "  failed       node4  exit status 1: ^[[2Kx\n"
        "  unreachable  node[1-3]  connection refused by <address>:22 (after 3 attempts)\n"
    )
    one = render_summary(results[:1], 1.0)
    assert "connection refused by 127.0.1.1:22" in one  # alone: its own address


def test_host_key_failures_fold_without_their_fingerprints() -> None:
    results = [
        result(
            f"node{n}",
            Status.UNREACHABLE,
            exit_status=None,
            error=f"host key SHA256:{chr(65 + n) * 43} is not in /k; refusing",
        )
        for n in (1, 2)
    ]
    assert render_summary(results, 1.0).endswith(
        "  unreachable  node[1-2]  host key <fingerprint> is not in /k; refusing\n"
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        raise io.UnsupportedOperation


def test_status_board_keeps_output_whole_above_it(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setattr("sys.stdout", terminal)
    status = ["2/3 done  1 running", "  node3  " + "x" * 200]
    board = StatusBoard(terminal, lambda: status)
    board.start()
    try:
        import sys

        long_line = "node1: " + "y" * 150 + "\n"
        sys.stdout.write(long_line)
        sys.stderr.write("partial ")
        sys.stderr.write("line\n")
        board.refresh()
        drawn = terminal.getvalue()
    finally:
        board.stop()
    assert long_line in drawn  # written whole: never cut or re-wrapped
    screen = pyte.Screen(80, 20)
    pyte.Stream(screen).feed(terminal.getvalue().replace("\n", "\r\n"))
    rows = [row.rstrip() for row in screen.display if row.strip()]
    assert rows == ["node1: " + "y" * 73, "y" * 77, "partial line"]  # the board is gone


def test_cut_to_width_counts_wide_characters_twice() -> None:
    assert cut_to_width("日本語", 5) == "日本"
    assert cut_to_width("abc", 5) == "abc"


def test_error_lines_show_control_characters() -> None:
    """`bastion: error: ...` quotes what it was given; a control character in it is shown."""
    from tests.conftest import BASTION, REPO

    done = subprocess.run(
        [*BASTION, "run", "-H", "node1", "--script", "/nonexistent/x\x1b]0;pwned\x07", "--"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert "x^[]0;pwned^G" in done.stderr
