"""Exact output of ``-o diff`` and of the copy/fetch JSON records."""

from __future__ import annotations

import io
import json

from bastion.models import FileFailure, FileReport, HostFinished, HostOutput, HostResult, Status
from bastion.render.diff import DiffRenderer
from bastion.render.jsonl import JsonLinesRenderer


def result(host: str, stdout: str, status: Status = Status.OK) -> HostResult:
    return HostResult(host=host, address="127.0.0.1", status=status, stdout=stdout)


def render_diff(ref: str, results: list[HostResult], color: bool = False) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    DiffRenderer(out, err, ref, color=color).finish(results)
    return out.getvalue(), err.getvalue()


def test_diff_shows_only_the_drift_and_folds_the_identical_hosts() -> None:
    same = "a=1\nb=2\nc=3\n"
    results = [
        result("node1", same),
        result("node2", same),
        result("node3", "a=1\nb=20\nc=3\n"),
        result("node4", same),
    ]
    out, err = render_diff("node2", results)
    assert out == (
        "--- node2 (reference)\n"
        "+++ node3 (1)\n"
        "@@ -1,3 +1,3 @@\n"
        " a=1\n"
        "-b=2\n"
        "+b=20\n"
        " c=3\n"
        "node[1,4]: identical to node2\n"
    )
    assert err == ""


def test_hosts_that_drifted_the_same_way_share_one_diff() -> None:
    results = [result("node1", "x\n"), result("node2", "y\n"), result("node3", "y\n")]
    out, _ = render_diff("node1", results)
    assert out == "--- node1 (reference)\n+++ node[2-3] (2)\n@@ -1 +1 @@\n-x\n+y\n"


def test_everyone_identical_is_one_line() -> None:
    out, _ = render_diff("node1", [result(f"node{n}", "same\n") for n in (1, 2, 3)])
    assert out == "node[2-3]: identical to node1\n"


def test_a_reference_that_failed_is_said_on_stderr() -> None:
    results = [result("node1", "", Status.UNREACHABLE), result("node2", "x\n")]
    out, err = render_diff("node1", results)
    assert "+x" in out
    assert err == (
        "bastion: the reference host node1 is unreachable; "
        "its output (possibly empty) was compared all the same\n"
    )


def test_diff_colours_additions_and_removals() -> None:
    out, _ = render_diff("node1", [result("node1", "x\n"), result("node2", "y\n")], color=True)
    assert "\x1b[31m-x\x1b[0m" in out and "\x1b[32m+y\x1b[0m" in out


def test_copy_and_fetch_records_add_files_run_records_do_not() -> None:
    out = io.StringIO()
    renderer = JsonLinesRenderer(out)
    copy = FileReport(
        kind="copy",
        changed=("/etc/a",),
        unchanged=("/etc/b",),
        failed=(FileFailure("/etc/c", "permission denied"),),
    )
    fetch = FileReport(kind="fetch", changed=("out/node2/etc/hostname",))
    renderer.handle(HostFinished(HostResult("node1", "a", Status.FAILED, files=copy)))
    renderer.handle(HostFinished(HostResult("node2", "b", Status.OK, files=fetch)))
    renderer.handle(HostFinished(HostResult("node3", "c", Status.OK, exit_status=0)))
    first, second, third = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["files"] == {
        "changed": ["/etc/a"],
        "unchanged": ["/etc/b"],
        "failed": [{"path": "/etc/c", "error": "permission denied"}],
    }
    assert second["files"] == {"fetched": ["out/node2/etc/hostname"], "failed": []}
    assert "files" not in third


def test_diff_compares_whole_outputs_while_keeping_only_their_start() -> None:
    """Results keep 64 Ki characters; the renderer hashes everything streamed, so hosts that
    differ only after the kept start are not called identical, and memory stays bounded."""
    kept = 65536
    start = "line\n" * 40_000  # 200,000 characters
    outputs = {"node1": start + "end\n", "node2": start + "end\n", "node3": start + "END\n"}
    out, err = io.StringIO(), io.StringIO()
    renderer = DiffRenderer(out, err, "node1")
    for host, text in outputs.items():
        for offset in range(0, len(text), 4096):
            renderer.handle(HostOutput(host, "stdout", text[offset : offset + 4096]))
    renderer.finish([result(host, text[:kept]) for host, text in outputs.items()])
    assert out.getvalue() == (
        f"+++ node3 (1): the same first {kept} characters as node1, different after them\n"
        "node2: identical to node1\n"
    )
