"""Exact-output tests for the renderers: what an operator sees, character for character."""

from __future__ import annotations

import io
import json

from bastion.models import HostFinished, HostOutput, HostResult, HostStarted, Reason, Status
from bastion.render.grouped import GroupedRenderer
from bastion.render.inline import InlineRenderer
from bastion.render.jsonl import JsonLinesRenderer
from bastion.render.summary import render_summary


def result(host: str, status: Status = Status.OK, **fields: object) -> HostResult:
    values: dict[str, object] = {"address": f"127.0.1.{host[-1]}", "exit_status": 0}
    values.update(fields)
    return HostResult(host=host, status=status, **values)  # type: ignore[arg-type]


def test_inline_prefixes_every_line_and_marks_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    renderer = InlineRenderer(out, err, host_width=6)
    renderer.handle(HostStarted("node1"))
    renderer.handle(HostOutput("node1", "stdout", "a\nb\n"))
    renderer.handle(HostOutput("node10", "stderr", "oops\n"))
    renderer.handle(HostOutput("node1", "stdout", "no newline"))
    assert out.getvalue() == "node1:  a\nnode1:  b\nnode1:  no newline\n"
    assert err.getvalue() == "node10 [stderr]: oops\n"


def test_inline_keeps_empty_lines() -> None:
    out = io.StringIO()
    InlineRenderer(out, io.StringIO(), host_width=5).handle(
        HostOutput("node1", "stdout", "a\n\nb\n")
    )
    assert out.getvalue() == "node1: a\nnode1: \nnode1: b\n"


def test_inline_colour_wraps_the_prefix_only() -> None:
    out = io.StringIO()
    InlineRenderer(out, io.StringIO(), host_width=5, color=True).handle(
        HostOutput("node1", "stdout", "x\n")
    )
    assert out.getvalue() == "\x1b[36mnode1:\x1b[0m x\n"


def test_grouped_folds_identical_outputs_largest_first() -> None:
    out, err = io.StringIO(), io.StringIO()
    results = [
        result("node1", stdout="6.1.0\n"),
        result("node2", stdout="6.1.0\n"),
        result("node3", stdout="5.10.0\n", stderr="warning\n"),
        result("node4", stdout="6.1.0\n"),
        result("node5", stdout=""),
    ]
    GroupedRenderer(out, err).finish(results)
    assert out.getvalue() == (
        "---------------\nnode[1-2,4] (3)\n---------------\n6.1.0\n"
        "---------------\nnode3 (1)\n---------------\n5.10.0\n"
    )
    assert err.getvalue() == "---------------\nnode3 [stderr] (1)\n---------------\nwarning\n"


def test_json_lines_follow_schema_1_field_by_field() -> None:
    out = io.StringIO()
    renderer = JsonLinesRenderer(out)
    # The output is what the events carried; the result keeps only its start.
    renderer.handle(HostOutput("node1", "stdout", "x\n"))
    renderer.handle(HostOutput("node1", "stderr", "y\n"))
    renderer.handle(
        HostFinished(
            result(
                "node1",
                Status.FAILED,
                exit_status=1,
                stdout="x",
                stderr="",
                error="exit status 1",
                duration_s=0.12345,
                reason=Reason.EXIT,
            )
        )
    )
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {
        "schema": 1,
        "host": "node1",
        "address": "127.0.1.1",
        "status": "failed",
        "exit_status": 1,
        "stdout": "x\n",
        "stderr": "y\n",
        "error": "exit status 1",
        "duration_s": 0.123,
        "reason": "exit",
    }


def test_summary_folds_hosts_that_share_a_status_and_reason() -> None:
    results = [
        result("node1"),
        result("node2"),
        result(
            "node3",
            Status.FAILED,
            exit_status=2,
            stderr="\nls: /x: No such file\n",
            error="exit status 2",
        ),
        result(
            "node4",
            Status.UNREACHABLE,
            exit_status=None,
            error="connection refused by 127.0.1.4:22",
        ),
        result(
            "node5",
            Status.UNREACHABLE,
            exit_status=None,
            error="connection refused by 127.0.1.4:22",
        ),
        result("node6", Status.TIMEOUT, exit_status=None, error="timed out after 1s"),
    ]
    assert render_summary(results, 1.234) == (
        "bastion: 6 hosts in 1.23s: 2 ok, 1 failed, 1 timeout, 2 unreachable\n"
        "  ok           node[1-2]\n"
        "  failed       node3  exit status 2: ls: /x: No such file\n"
        "  timeout      node6  timed out after 1s\n"
        "  unreachable  node[4-5]  connection refused by 127.0.1.4:22\n"
    )


def test_summary_of_one_host_is_singular() -> None:
    assert render_summary([result("node1")], 0.5).startswith("bastion: 1 host in 0.50s: 1 ok\n")


def test_summary_of_a_run_stopped_before_any_host_finished_says_so() -> None:
    assert render_summary([], 3.7) == "bastion: 0 hosts in 3.70s: none finished\n"
