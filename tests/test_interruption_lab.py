"""Interruptions leave true records, and a closed stdout stops nothing (issue 11, item 10).

Ctrl-C and SIGTERM: the hosts not finished are ``interrupted`` in run.json, hosts.failed and
the history, and ``--retry-failed`` retries them. ``bastion play ... | head -1`` runs the
playbook to its end, as ``bastion run`` does, with the recap on stderr and the history kept.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BASTION, LAB_SUBNET, REPO, Cli

pytestmark = pytest.mark.lab

PLAYBOOKS = REPO / "tests" / "playbooks"


def popen(lab: Cli, argv: list[str], sent: signal.Signals) -> subprocess.Popen[str]:
    if sent is signal.SIGTERM:  # as a shell's `cmd &` starts it: SIGINT ignored
        argv = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *argv]
    return subprocess.Popen(
        argv,
        env=lab.env,
        cwd=lab.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def last_history(lab: Cli) -> dict[str, object]:
    done = lab("history", "--json", "-n", "1")
    entry = json.loads(done.stdout.splitlines()[-1])
    assert isinstance(entry, dict)
    return entry


@pytest.mark.parametrize(
    ("sent", "code", "said"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
)
def test_hosts_not_finished_are_interrupted_in_every_record_and_retried(
    lab: Cli, tmp_path: Path, sent: signal.Signals, code: int, said: str
) -> None:
    record = tmp_path / "record"
    nap = f"sleep 5{os.getpid() % 1000}.{sent.value}"
    # One host at a time: node1 finishes, node2 is stopped while running, node3 never starts.
    command = f'echo go; set -- $SSH_CONNECTION; [ "$3" = {LAB_SUBNET}.1 ] || {nap}'
    process = popen(
        lab,
        [*BASTION, "run", "-i", "lab", "--all", "-f", "1", "--out-dir", str(record), command],
        sent,
    )
    assert process.stdout is not None
    seen = [process.stdout.readline() for _ in range(2)]
    assert seen == ["node1: go\n", "node2: go\n"], seen
    process.send_signal(sent)
    _, err = process.communicate(timeout=30)
    assert process.returncode == code, err
    assert f"bastion: {said}; not finished: node[2-3]" in err
    assert f"  interrupted  node2  {said} while running\n" in err
    assert f"  interrupted  node3  {said} before it started\n" in err

    manifest = json.loads((record / "run.json").read_text())
    statuses = {h["host"]: (h["status"], h["error"]) for h in manifest["hosts"]}
    assert statuses == {
        "node1": ("ok", None),
        "node2": ("interrupted", f"{said} while running"),
        "node3": ("interrupted", f"{said} before it started"),
    }
    assert manifest["exit_code"] == code
    assert (record / "hosts.ok").read_text() == "node1\n"
    assert (record / "hosts.failed").read_text() == "node2\nnode3\n"
    assert (record / "node3.out").read_text() == ""
    entry = last_history(lab)
    assert entry["hosts"] == {
        "node1": ["ok", 0],
        "node2": ["interrupted", None],
        "node3": ["interrupted", None],
    }
    assert entry["exit_code"] == code

    again = lab("run", "-i", "lab", "--retry-failed", str(record), "true")
    assert again.returncode == 0, again.stderr
    assert "nothing to retry" not in again.stderr
    assert "2 hosts in" in again.stderr
    assert sorted(last_history(lab)["hosts"]) == ["node2", "node3"]  # type: ignore[call-overload]


def test_a_play_interrupted_marks_its_hosts_interrupted(lab: Cli, tmp_path: Path) -> None:
    record = tmp_path / "record"
    naptime = f"5{os.getpid() % 1000}"
    argv = [*BASTION, "play", "-i", "lab", str(PLAYBOOKS / "slow.yaml"), "-e"]
    process = popen(lab, [*argv, f"naptime={naptime}", "--out-dir", str(record)], signal.SIGINT)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("STEP 2/3"):
            break
    time.sleep(2)  # the nap has started on the nodes
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "(interrupted)" in out  # the recap's rows
    entry = last_history(lab)
    assert entry["hosts"] == {f"node{n}": ["interrupted", None] for n in (1, 2, 3)}
    assert (record / "hosts.failed").read_text() == "node1\nnode2\nnode3\n"
    assert (record / "hosts.ok").read_text() == ""


def test_a_closed_stdout_never_stops_a_play(lab: Cli, tmp_path: Path) -> None:
    marker = f"bst-cli-closed-{os.getpid()}"
    book = tmp_path / "chatty.yaml"
    steps = "".join(
        f"  - name: step {n}\n    run: seq 1 200\n    readonly: true\n" for n in range(1, 4)
    )
    book.write_text(
        f"name: chatty\nhosts: --all\nsteps:\n{steps}  - name: last\n    run: touch /tmp/{marker}\n"
    )
    process = subprocess.Popen(
        [*BASTION, "play", "-i", "lab", str(book), "-v"],
        env=lab.env,
        cwd=lab.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()  # `| head -1`
    process.stdout.close()
    err = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == 0, err
    assert "bastion: stdout was closed early; the recap has every host" in err
    assert "PLAY RECAP" in err
    assert "Traceback" not in err
    entry = last_history(lab)
    assert str(entry["command"]).startswith("play ")
    assert entry["exit_code"] == 0
    assert entry["hosts"] == {f"node{n}": ["ok", None] for n in (1, 2, 3)}
    done = lab("run", "-i", "lab", "--all", f"test -e /tmp/{marker}")
    assert done.returncode == 0, done.stderr  # the last step ran on every host
