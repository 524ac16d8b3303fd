"""Rolling batches, ``-o diff``, stdin broadcast and ``--script`` against the real lab."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BASTION, Cli, is_root

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not is_root(), reason="per-node hostnames and files need the root lab"),
]

NOT_NODE2 = 'touch /root/batch-ran; test "$(hostname)" != node2'


def records(text: str) -> dict[str, dict[str, object]]:
    return {str(r["host"]): r for r in (json.loads(line) for line in text.splitlines())}


def on_all(lab: Cli, command: str) -> None:
    done = lab("run", "-i", "lab", "--all", "-o", "quiet", command)
    assert done.returncode == 0, done.stderr


def test_batches_of_one_stop_at_the_failure_and_skip_the_rest(lab: Cli) -> None:
    on_all(lab, "rm -f /root/batch-ran")
    done = lab(
        "run", "-i", "lab", "--all", "--batch", "1", "--max-fail", "0", "-o", "json", NOT_NODE2
    )
    assert done.returncode == 1
    result = records(done.stdout)
    assert {h: r["status"] for h, r in result.items()} == {
        "node1": "ok",
        "node2": "failed",
        "node3": "skipped",
    }
    why = "1 host not ok after batch 2, over --max-fail 0"
    assert result["node3"]["error"] == f"not started: {why}"
    assert f"  skipped  node3  not started: {why}\n" in done.stderr
    assert done.stderr.endswith(
        f"bastion: 2 of 3 batches run; stopped: {why}\n"
        "  1/3  node1  1 ok\n"
        "  2/3  node2  1 failed\n"
        "  3/3  node3  not started\n"
    )
    ran = lab(
        "run", "-i", "lab", "--all", "-o", "json", "test -e /root/batch-ran && echo yes || echo no"
    )
    assert {h: r["stdout"] for h, r in records(ran.stdout).items()} == {
        "node1": "yes\n",
        "node2": "yes\n",
        "node3": "no\n",  # never started
    }


def test_without_a_budget_every_batch_runs_and_the_summary_shows_them(lab: Cli) -> None:
    done = lab("run", "-i", "lab", "--all", "--batch", "2", "--pause", "0.2", NOT_NODE2)
    assert done.returncode == 1
    assert "bastion: batch 1/2: node[1-2]\nbastion: batch 2/2: node3\n" in done.stderr
    assert "  1/2  node[1-2]  1 ok, 1 failed\n  2/2  node3      1 ok\n" in done.stderr


def test_a_failing_canary_stops_the_run(lab: Cli) -> None:
    done = lab("run", "-i", "lab", "--all", "--canary", 'test "$(hostname)" != node1')
    assert done.returncode == 1
    assert "  skipped  node[2-3]  not started: the canary node1 did not succeed\n" in done.stderr
    assert "bastion: batch 2/2" not in done.stderr
    fine = lab("run", "-i", "lab", "--all", "--canary", "-o", "json", "hostname")
    assert fine.returncode == 0, fine.stderr
    assert "bastion: batch 1/2: node1\nbastion: batch 2/2: node[2-3]\n" in fine.stderr
    assert len(records(fine.stdout)) == 3


def test_copy_rolls_in_batches_too(lab: Cli, tmp_path: Path) -> None:
    on_all(lab, "rm -rf /root/roll")
    lab("run", "-i", "lab", "-H", "node2", "-o", "quiet", "echo file > /root/roll")
    source = tmp_path / "a.conf"
    source.write_text("a\n")
    done = lab(
        "copy", "-i", "lab", "--all", "--batch", "1", "--max-fail", "0", "-o", "json",
        str(source), "/root/roll/",
    )  # fmt: skip
    assert done.returncode == 1
    assert {h: r["status"] for h, r in records(done.stdout).items()} == {
        "node1": "ok",
        "node2": "failed",
        "node3": "skipped",
    }


def test_diff_shows_the_node_whose_file_drifted(lab: Cli) -> None:
    on_all(lab, "printf 'a = 1\\nb = 2\\nc = 3\\n' > /root/drift.conf")
    lab(
        "run",
        "-i",
        "lab",
        "-H",
        "node3",
        "-o",
        "quiet",
        "sed -i 's/b = 2/b = 20/' /root/drift.conf",
    )
    done = lab("run", "-i", "lab", "--all", "-o", "diff", "--ref", "node1", "cat /root/drift.conf")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "--- node1 (reference)\n"
        "+++ node3 (1)\n"
        "@@ -1,3 +1,3 @@\n"
        " a = 1\n"
        "-b = 2\n"
        "+b = 20\n"
        " c = 3\n"
        "node2: identical to node1\n"
    )
    outside = lab("run", "-i", "lab", "-H", "node[1-2]", "-o", "diff", "--ref", "node3", "true")
    assert outside.returncode == 2
    assert outside.stderr == (
        "bastion: error: --ref: reference host 'node3' is not among the selected hosts "
        "(node[1-2])\n"
    )
    no_diff = lab("run", "-i", "lab", "--all", "--ref", "node1", "true")
    assert no_diff.returncode == 2 and "--ref is only used with -o diff" in no_diff.stderr


def test_stdin_is_sent_to_every_host(lab: Cli) -> None:
    payload = 'line one\nit\'s "quoted" $HOME `x`\n\ttabbed\n'
    done = lab("run", "-i", "lab", "--all", "-o", "json", "cat", input=payload)
    assert done.returncode == 0, done.stderr
    assert {r["stdout"] for r in records(done.stdout).values()} == {payload}
    history = lab("history", "--json", "-n", "1")
    assert json.loads(history.stdout)["command"] == "cat"


def test_script_runs_with_arguments_that_hold_spaces_and_quotes(lab: Cli, tmp_path: Path) -> None:
    script = tmp_path / "check.sh"
    script.write_text('echo "args=$#"\nfor a in "$@"; do printf "[%s]\\n" "$a"; done\nhostname\n')
    args = ["two words", "it's", 'say "hi"', "$(touch /root/pwned)", "--flag", ""]
    done = lab("run", "-i", "lab", "--all", "-o", "json", "--script", str(script), "--", *args)
    assert done.returncode == 0, done.stderr
    for host, record in records(done.stdout).items():
        assert record["stdout"] == (
            'args=6\n[two words]\n[it\'s]\n[say "hi"]\n[$(touch /root/pwned)]\n[--flag]\n[]\n'
            f"{host}\n"
        )
    sudo = lab("run", "-i", "lab", "-H", "node1", "--sudo", "--script", str(script), "--", "x")
    assert sudo.returncode == 0 and "node1: [x]\n" in sudo.stdout
    empty = tmp_path / "empty.sh"
    empty.write_text("\n")
    refused = lab("run", "-i", "lab", "--all", "--script", str(empty))
    assert refused.returncode == 2 and "the script is empty" in refused.stderr


def test_a_terminal_on_stdin_is_not_read(lab: Cli) -> None:
    primary, secondary = os.openpty()
    try:
        done = subprocess.run(
            [*BASTION, "run", "-i", "lab", "--all", "-o", "json", "cat; echo done"],
            env=lab.env,
            cwd=lab.cwd,
            stdin=secondary,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        os.close(primary)
        os.close(secondary)
    assert done.returncode == 0, done.stderr
    assert {r["stdout"] for r in records(done.stdout).values()} == {"done\n"}


def test_too_much_stdin_is_refused_before_any_host(lab: Cli) -> None:
    done = lab("run", "-i", "lab", "--all", "cat", input="x" * (64 * 1024 * 1024 + 1))
    assert done.returncode == 2
    assert done.stderr == (
        "bastion: error: stdin: standard input is larger than 64 MiB; "
        "copy the data with `bastion copy`, or give --no-stdin\n"
    )
    ignored = lab("run", "-i", "lab", "-H", "node1", "--no-stdin", "cat; echo ok", input="data")
    assert ignored.returncode == 0 and ignored.stdout == "node1: ok\n"
