"""`bastion play` end to end: the real engine against the real-sshd lab (tests/playbooks/).

The lab is shared by the whole session: every test works in a directory of its own under the
nodes' /root (which the host sees as the node's overlay, ``root.upper``) and removes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bastion.lab import processes
from tests.conftest import BASTION, LAB_SUBNET, REPO, Cli, is_root

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not is_root(), reason="per-node file systems need the root-mode lab"),
]

PLAYBOOKS = REPO / "tests" / "playbooks"
NODES = ("node1", "node2", "node3")


def play(lab: Cli, name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return lab("play", "-i", "lab", str(PLAYBOOKS / name), *args, timeout=timeout)


def node_path(lab: Cli, node: str, path: str) -> Path:
    """A path under the node's /root, as this machine sees it (the overlay's upper layer)."""
    assert path.startswith("/root/")
    return Path(lab.env["BASTION_LAB_DIR"]) / "nodes" / node / "root.upper" / path[len("/root/") :]


def records(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def steps_of(stdout: str, host: str) -> dict[str, dict[str, object]]:
    return {str(r["step"]): r for r in records(stdout) if r["type"] == "step" and r["host"] == host}


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("bastion: error: ")
    return lines[0]


@pytest.fixture
def work_dir(lab: Cli) -> Iterator[str]:
    """A directory of this test's own on every node (removed afterwards)."""
    path = f"/root/play-{uuid.uuid4().hex[:10]}"
    yield path
    done = lab("run", "-i", "lab", "--all", f"rm -rf {path}")
    assert done.returncode == 0, done.stderr


def test_each_guard_skips_and_names_itself(lab: Cli, work_dir: str) -> None:
    done = play(lab, "guards.yaml", "-e", f"dir={work_dir}")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"  skipped  node[1-3]: creates {work_dir}/present exists\n" in out
    assert f"  skipped  node[1-3]: removes {work_dir}/absent does not exist\n" in out
    assert f"  skipped  node[1-3]: unless: test -e {work_dir}/present succeeded\n" in out
    assert f"  skipped  node[1-3]: only_if: test -e {work_dir}/absent failed\n" in out
    assert "  skipped  node[1-3]: when: flavour == 'fancy'\n" in out
    assert "STEP 7/8 guards pass  [node[1-3]]\n  changed  node[1-3]\n" in out
    for node in NODES:
        assert sorted(os.listdir(node_path(lab, node, work_dir))) == ["guarded-ran", "present"]
    again = play(lab, "guards.yaml", "-e", f"dir={work_dir}")
    assert f"  skipped  node[1-3]: creates {work_dir}/guarded-ran exists\n" in again.stdout


def test_retries_until_a_counter_reaches_three(lab: Cli, work_dir: str) -> None:
    done = play(lab, "retries.yaml", "-e", f"dir={work_dir}", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    steps = steps_of(done.stdout, "node1")
    assert steps["count up"]["status"] == "changed"
    assert steps["count up"]["attempts"] == 3
    assert steps["never"]["status"] == "failed"
    assert steps["never"]["ignored"] is True
    assert steps["never"]["attempts"] == 2
    assert steps["after"]["stdout"] == "counter reached 3 in 3 attempts\n"
    assert node_path(lab, "node1", f"{work_dir}/n").read_text() == "3\n"


def snapshot(lab: Cli, node: str) -> dict[str, tuple[str, int, int, str]]:
    """Every path in the node's writable layers: kind, size, mtime and content digest."""
    root = Path(lab.env["BASTION_LAB_DIR"]) / "nodes" / node
    found: dict[str, tuple[str, int, int, str]] = {}
    for layer in sorted(root.glob("*.upper")):
        for path in sorted(layer.rglob("*")):
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            kind = "dir" if path.is_dir() else "file" if path.is_file() else "other"
            found[str(path.relative_to(root))] = (kind, info.st_size, info.st_mtime_ns, digest)
    return found


def test_check_mode_changes_nothing_and_prints_the_plan(lab: Cli, work_dir: str) -> None:
    first = play(lab, "idempotent.yaml", "-e", f"dir={work_dir}")
    assert first.returncode == 0, first.stdout + first.stderr
    before = {node: snapshot(lab, node) for node in NODES}
    check = play(lab, "idempotent.yaml", "-e", f"dir={work_dir}", "-e", "port=9090", "--check")
    after = {node: snapshot(lab, node) for node in NODES}
    assert check.returncode == 0, check.stdout + check.stderr
    assert before == after
    out = check.stdout
    # The plan: what would run, what the guards skip, what is already right.
    assert (
        f"STEP 2/6 config  [node[1-3]]\n  would run  node[1-3]: write {work_dir}/app.conf\n" in out
    )
    assert "STEP 3/6 motd  [node[1-3]]\n  ok  node[1-3]\n" in out
    assert f"  skipped  node[1-3]: creates {work_dir}/marker exists\n" in out
    assert "PLAY RECAP (--check: changed = would change)" in out
    assert "3 changed" in out.splitlines()[-1]
    conf = node_path(lab, "node2", f"{work_dir}/app.conf").read_text()
    assert conf == "port = 8080\nhost = node2\n"


def test_check_mode_on_a_fresh_node_would_run_every_changing_step(lab: Cli, work_dir: str) -> None:
    before = snapshot(lab, "node1")
    check = play(lab, "idempotent.yaml", "-e", f"dir={work_dir}", "--check", "--limit", "-H node1")
    assert snapshot(lab, "node1") == before
    out = check.stdout
    assert f"  would run  node1: mkdir -p {work_dir}\n" in out
    assert f"  would run  node1: write {work_dir}/app.conf\n" in out
    assert f"  would run  node1: echo done > {work_dir}/marker\n" in out
    # The read-only probe really runs, and says the file is not there yet: the honest answer.
    assert "STEP 5/6 probe  [node1]\n  failed  node1: exit status 1" in out
    assert check.returncode == 1


def test_second_run_changes_nothing_and_copies_change_only_on_new_content(
    lab: Cli, work_dir: str
) -> None:
    first = play(lab, "idempotent.yaml", "-e", f"dir={work_dir}")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "12 changed" in first.stdout.splitlines()[-1]
    second = play(lab, "idempotent.yaml", "-e", f"dir={work_dir}")
    assert second.returncode == 0, second.stdout + second.stderr
    assert ": 12 ok, 0 changed, 6 skipped, 0 failed" in second.stdout.splitlines()[-1]
    for node in NODES:
        assert f"  {node}  ok=4  changed=0  skipped=2  failed=0" in second.stdout
    port = play(lab, "idempotent.yaml", "-e", f"dir={work_dir}", "-e", "port=9090", "-o", "json")
    steps = steps_of(port.stdout, "node1")
    assert (steps["config"]["status"], steps["motd"]["status"]) == ("changed", "ok")
    text = node_path(lab, "node3", f"{work_dir}/motd").read_text()
    assert (
        text
        == f"welcome to node3\nThis host is node3 ({LAB_SUBNET}.3), one of node1, node2, node3.\n"
    )
    assert oct(node_path(lab, "node1", f"{work_dir}/app.conf").stat().st_mode & 0o777) == "0o640"


SECRET_TOKEN = "tok-abc-123456"


def test_secrets_are_masked_in_output_json_record_history_and_errors(
    lab: Cli, tmp_path: Path
) -> None:
    env = {**lab.env, "PLAY_TEST_TOKEN": SECRET_TOKEN}
    cli = Cli(env, lab.cwd)
    record = tmp_path / "record"
    text = cli("play", "-i", "lab", str(PLAYBOOKS / "secrets.yaml"), "-v", "--out-dir", str(record))
    as_json = cli("play", "-i", "lab", str(PLAYBOOKS / "secrets.yaml"), "-o", "json")
    leak = tmp_path / "leak.yaml"
    leak.write_text(
        "name: leak\nhosts: --all\nvars:\n  token: {secret: true, env: PLAY_TEST_TOKEN}\n"
        "  lookup: {}\nsteps:\n  - name: x\n    run: echo {{ lookup[token] }}\n"
    )
    error = cli("play", "-i", "lab", str(leak))
    assert text.returncode == 1, text.stdout + text.stderr  # node3's last step fails
    assert "    node3 | failing with ********\n" in text.stdout
    assert "  failed  node3: exit status 3: failing with ********\n" in text.stdout
    assert "    node2 | joining with ********\n" in text.stdout
    assert "    node1 | token is ********\n" in text.stdout
    assert "    node1 | inline ********\n" in text.stdout
    assert one_line_error(error) == (
        f"bastion: error: {leak}:8: undefined variable: 'dict object' has no attribute '********'"
    )
    history = Path(env["BASTION_HISTORY_FILE"]).read_text()
    assert '"command": "play ' in history
    texts = [text.stdout, text.stderr, as_json.stdout, as_json.stderr, error.stderr, history]
    texts += [path.read_text() for path in sorted(record.iterdir())]
    assert len(texts) > 10  # run.json, hosts.ok, hosts.failed and six output files
    for secret in (SECRET_TOKEN, "inline-s3cr3t-value", "join-secret-node1-xyz"):
        for where in texts:
            assert secret not in where
    assert json.loads((record / "run.json").read_text())["kind"] == "play"


def test_undefined_variable_is_exit_2_with_file_and_line_before_anything_runs(
    lab: Cli, tmp_path: Path, work_dir: str
) -> None:
    book = tmp_path / "undefined.yaml"
    book.write_text(
        "name: undefined\nhosts: --all\nsteps:\n"
        f"  - name: first\n    run: mkdir -p {work_dir}\n"
        "  - name: second\n    run: |\n      echo fine\n      echo {{ nope }}\n"
    )
    done = lab("play", "-i", "lab", str(book))
    assert (
        one_line_error(done) == f"bastion: error: {book}:9: undefined variable: 'nope' is undefined"
    )
    assert done.stdout == ""
    assert not node_path(lab, "node1", work_dir).exists()


BAD_PLAYBOOKS = {
    "not yaml": ("name: x\nhosts: [--all\n", ":3: invalid YAML"),
    "unknown key": (
        "name: x\nhosts: --all\nsteps:\n  - name: a\n    run: echo a\n    sudu: true\n",
        ":6: unknown key 'sudu' in step",
    ),
    "two actions": (
        "name: x\nhosts: --all\nsteps:\n  - name: a\n    run: echo a\n    script: {src: a}\n",
        ":4: step 'a': needs exactly one action",
    ),
    "unknown group": (
        "name: x\nhosts: -g nope\nsteps:\n  - name: a\n    run: echo a\n",
        ":2: hosts: -g: unknown group 'nope'",
    ),
    "bad jinja": (
        "name: x\nhosts: --all\nsteps:\n  - name: a\n    run: echo {{ x\n",
        ":5: template syntax",
    ),
    "empty": ("", ": the playbook is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_PLAYBOOKS))
def test_bad_playbooks_are_exit_2_one_line(lab: Cli, tmp_path: Path, case: str) -> None:
    text, expected = BAD_PLAYBOOKS[case]
    book = tmp_path / "bad.yaml"
    book.write_text(text)
    line = one_line_error(lab("play", "-i", "lab", str(book)))
    assert line.startswith(f"bastion: error: {book}")
    assert expected in line


def test_bad_options_are_exit_2_one_line(lab: Cli) -> None:
    start = one_line_error(play(lab, "tagged.yaml", "--start-at", "nine"))
    assert "--start-at: no step named 'nine'" in start
    extra = one_line_error(play(lab, "tagged.yaml", "-e", "novalue"))
    assert "-e: expected NAME=VALUE or @FILE" in extra
    limit = one_line_error(play(lab, "tagged.yaml", "--limit", "node1"))
    assert "--limit: bad host selection 'node1'" in limit
    missing = one_line_error(lab("play", "-i", "lab", "no-such.yaml"))
    assert missing == "bastion: error: no-such.yaml: no such playbook file"


def test_a_failing_host_takes_no_further_steps_and_the_others_go_on(lab: Cli) -> None:
    done = play(lab, "failing.yaml", "-o", "json")
    assert done.returncode == 1
    assert list(steps_of(done.stdout, "node2")) == ["first", "fails on node2"]
    assert list(steps_of(done.stdout, "node3")) == ["first", "fails on node2", "third", "fourth"]
    node1 = steps_of(done.stdout, "node1")
    assert node1["ignored failure"]["ignored"] is True
    assert node1["fourth"]["stdout"] == "fourth\n"
    recap = records(done.stdout)[-1]
    assert recap["type"] == "recap"
    assert recap["hosts"]["node2"]["stopped_at"] == "fails on node2"  # type: ignore[index]
    assert recap["hosts"]["node1"]["ignored"] == 1  # type: ignore[index]
    text = play(lab, "failing.yaml")
    assert (
        "  node2  ok=0  changed=1  skipped=0  failed=1  unreachable=0  ignored=0  " in text.stdout
    )
    assert "(stopped at 'fails on node2')" in text.stdout


def test_an_unreachable_host_is_exit_3_and_the_others_finish(lab: Cli, tmp_path: Path) -> None:
    lab_dir = Path(lab.env["BASTION_LAB_DIR"])
    inventory = yaml.safe_load((lab_dir / "inventory.yaml").read_text())
    for key in ("identity_file", "known_hosts"):
        inventory["defaults"][key] = str(lab_dir / inventory["defaults"][key])
    inventory["hosts"]["node9"] = {"address": f"{LAB_SUBNET}.250"}
    inventory["hosts"]["node1"]["vars"] = {"colour": "inventory"}
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(inventory))
    done = lab(
        "play",
        "-i",
        str(tmp_path / "inv.yaml"),
        str(PLAYBOOKS / "tagged.yaml"),
        "--retries",
        "0",
        "--connect-timeout",
        "5",
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "  node[1-3]  ok=0  changed=3" not in done.stdout
    for node in NODES:
        assert f"  {node}  ok=0  changed=3  skipped=0  failed=0  unreachable=0" in done.stdout
    assert "  node9  ok=0  changed=0  skipped=0  failed=0  unreachable=1" in done.stdout
    # Inventory vars rank above the composition's, -e above everything.
    site = str(PLAYBOOKS / "site" / "site.yaml")
    shown = lab("play", "-i", str(tmp_path / "inv.yaml"), site, "-v")
    assert "    node1 | colour=inventory shape=play\n" in shown.stdout
    cli = lab("play", "-i", str(tmp_path / "inv.yaml"), site, "-v", "-e", "colour=cli")
    assert "    node1 | colour=cli shape=play\n" in cli.stdout


def test_composition_imports_in_order_with_when_and_vars(lab: Cli) -> None:
    done = lab("play", "-i", "lab", str(PLAYBOOKS / "site" / "site.yaml"), "-v", "-e", "shape=cli")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "    node1 | colour=composition shape=cli\n" in out
    # A value inside "..." is quoted for "..." (it used to print its own quotes).
    assert "    node1 | weave after colour=composition shape=cli\n" in out
    assert "PLAY calico (" in out and ": skipped (when: cni == 'calico')" in out
    calico = lab("play", "-i", "lab", str(PLAYBOOKS / "site" / "site.yaml"), "-e", "cni=calico")
    assert "PLAY weave (" in calico.stdout and "skipped (when: cni == 'weave')" in calico.stdout
    assert "STEP 1/1 calico  [node1]" in calico.stdout


def test_tags_start_at_and_limit_choose_steps_and_hosts(lab: Cli) -> None:
    def ran(*args: str) -> list[tuple[str, str]]:
        done = play(lab, "tagged.yaml", "-o", "json", *args)
        assert done.returncode == 0, done.stderr
        return [
            (str(r["step"]), str(r["host"])) for r in records(done.stdout) if r["type"] == "step"
        ]

    assert {s for s, _ in ran("--tags", "deploy")} == {"two"}
    skipped = ran("--skip-tags", "setup", "--limit", "-x node2")
    assert {s for s, _ in skipped} == {"two", "three"}
    assert {h for _, h in skipped} == {"node1", "node3"}
    started = ran("--start-at", "two", "--limit", "-H node2")
    assert started == [("two", "node2"), ("three", "node2")]


def test_script_arguments_and_run_values_are_quoted(lab: Cli) -> None:
    done = play(lab, "scripted.yaml", "-v")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "    node1 | hello the lab's node from node1\n" in done.stdout
    assert "    node1 | second argument: ; echo injected\n" in done.stdout
    assert "    node1 | injected\n" not in done.stdout
    # {{ who }} is one quoted word; {{ "a b" | raw }} is two words.
    assert "    node1 | [the lab's node]\n    node1 | [a]\n    node1 | [b]\n" in done.stdout


def test_wait_for_file_port_and_command(lab: Cli, work_dir: str) -> None:
    done = play(lab, "waits.yaml", "-e", f"dir={work_dir}", "-o", "json")
    assert done.returncode == 1
    steps = steps_of(done.stdout, "node1")
    assert [steps[s]["status"] for s in ("file", "port", "command", "never")] == [
        "ok",
        "ok",
        "ok",
        "failed",
    ]
    assert steps["never"]["detail"] == f"exit status 1: not ready after 1s: file {work_dir}/never"


def test_fetch_per_host_and_to_one_file_then_unchanged(
    lab: Cli, tmp_path: Path, work_dir: str
) -> None:
    out = tmp_path / "fetched"
    args = ("-e", f"dir={work_dir}", "-e", f"out={out}")
    first = play(lab, "fetch.yaml", *args)
    assert first.returncode == 0, first.stdout + first.stderr
    for node in NODES:
        local = out / node / work_dir.lstrip("/") / "data.txt"
        assert local.read_text() == f"from {node}\n"
        assert local.stat().st_mode & 0o777 == 0o600
    assert (out / "node1-data.txt").read_text() == "from node1\n"
    assert (out / "node1-data.txt").stat().st_mode & 0o777 == 0o600  # the default
    assert (out / "node1-shared.txt").stat().st_mode & 0o777 == 0o640  # mode: "0640" asked
    (out / "node1-shared.txt").chmod(0o644)  # same content, another mode: put right, changed
    second = play(lab, "fetch.yaml", *args)
    assert ": 7 ok, 1 changed, 3 skipped" in second.stdout.splitlines()[-1], second.stdout
    assert (out / "node1-shared.txt").stat().st_mode & 0o777 == 0o640
    third = play(lab, "fetch.yaml", *args)
    assert ": 8 ok, 0 changed, 3 skipped" in third.stdout.splitlines()[-1], third.stdout


def sshd_sessions(lab: Cli, node: str) -> list[int]:
    """The node's per-connection sshd processes: the children of its listener."""
    state = json.loads((Path(lab.env["BASTION_LAB_DIR"]) / "state.json").read_text())
    listener = next(int(n["pid"]) for n in state["nodes"] if n["name"] == node)
    return [info.pid for info in processes.process_table().values() if info.ppid == listener]


@pytest.mark.timeout(180)
def test_a_durable_step_survives_killed_connections(lab: Cli, tmp_path: Path) -> None:
    marker = f"play-durable-{uuid.uuid4().hex[:8]}"
    book = tmp_path / "slow.yaml"
    book.write_text(
        "name: slow\nhosts: -H node1\nsteps:\n  - name: slow\n    durable: true\n"
        f"    run: echo started >> ~/{marker}; "
        "for i in 1 2 3 4 5 6; do echo line $i; sleep 1; done\n"
        "  - name: after\n    run: echo after\n"
    )
    process = subprocess.Popen(
        [*BASTION, "play", "-i", "lab", str(book), "-v"],
        env=lab.env,
        cwd=lab.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started = node_path(lab, "node1", f"/root/{marker}")
        deadline = time.monotonic() + 60
        while not started.exists():
            assert time.monotonic() < deadline, "the durable step never started"
            time.sleep(0.1)
        time.sleep(1.5)
        sessions = sshd_sessions(lab, "node1")
        assert sessions
        for pid in sessions:
            os.kill(pid, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stdout + stderr
    lines = [line for line in stdout.splitlines() if line.startswith("    node1 | line")]
    assert lines == [f"    node1 | line {i}" for i in range(1, 7)]
    assert started.read_text() == "started\n"  # started exactly once
    assert "    node1 | after\n" in stdout
    jobs = node_path(lab, "node1", "/root/.bastion/jobs")
    assert not jobs.exists() or list(jobs.iterdir()) == []  # collected and cleaned
    started.unlink()


def test_the_durable_step_runs_as_a_durable_job(lab: Cli) -> None:
    done = play(lab, "durable.yaml", "-v")
    assert done.returncode == 0, done.stdout + done.stderr
    for node in ("node1", "node2"):  # the job lists its own job directory on the node
        assert any(
            line.startswith(f"    {node} | ") and line.endswith(f"-{node}")
            for line in done.stdout.splitlines()
        ), done.stdout
        assert f"    {node} | durable-done\n" in done.stdout


def test_out_dir_record_lists_hosts_and_steps(lab: Cli, tmp_path: Path) -> None:
    record = tmp_path / "rec"
    done = play(lab, "failing.yaml", "--out-dir", str(record))
    assert done.returncode == 1
    assert (record / "hosts.ok").read_text() == "node1\nnode3\n"
    assert (record / "hosts.failed").read_text() == "node2\n"
    manifest = json.loads((record / "run.json").read_text())
    node2 = next(h for h in manifest["hosts"] if h["host"] == "node2")
    assert [s["step"] for s in node2["steps"]] == ["first", "fails on node2"]
    assert node2["status"] == "failed" and manifest["exit_code"] == 1
    out = (record / "node1.out").read_text()
    assert out.startswith("### STEP 1/5 first\nfirst\n### STEP 2/5 fails on node2\n")
    for path in record.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600


def test_changed_when_sudo_a_rolling_step_over_max_fail_and_a_timeout(lab: Cli) -> None:
    done = play(lab, "modifiers.yaml", "-o", "json")
    assert done.returncode == 1, done.stdout + done.stderr
    by_host = {node: steps_of(done.stdout, node) for node in NODES}
    assert [by_host[n]["changed only when it says so"]["status"] for n in NODES] == [
        "changed",
        "ok",
        "ok",
    ]
    assert {by_host[n]["as root"]["stdout"] for n in NODES} == {"0\n"}
    assert by_host["node2"]["rolling"]["status"] == "failed"
    assert by_host["node3"]["rolling"]["status"] == "skipped"
    assert by_host["node3"]["rolling"]["detail"] == (
        "not started: 1 host not ok after batch 2, over max_fail 0"
    )
    assert list(by_host["node3"]) == ["changed only when it says so", "as root", "rolling"]
    assert by_host["node1"]["after the roll"]["stdout"] == "after, uid 0\n"
    assert by_host["node1"]["too slow"]["detail"] == (
        "timed out after 1s; remote process group stopped"
    )
    recap = records(done.stdout)[-1]["hosts"]
    assert recap["node3"]["stopped_at"] == "rolling"  # type: ignore[index]


def test_check_mode_looks_once_at_wait_for_and_does_not_wait(lab: Cli, work_dir: str) -> None:
    started = time.monotonic()
    done = play(lab, "waits.yaml", "-e", f"dir={work_dir}", "--check")
    assert time.monotonic() - started < 25  # a real run of "never" alone waits its timeout
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"  would run  node1: wait for file {work_dir}/ready\n" in done.stdout
    assert "STEP 3/5 port  [node1]\n  ok  node1\n" in done.stdout
    assert not node_path(lab, "node1", work_dir).exists()


def test_copy_a_local_file_with_mode_owner_and_sudo(
    lab: Cli, tmp_path: Path, work_dir: str
) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "app.env").write_text("A=1\n")
    book = tmp_path / "copy.yaml"
    book.write_text(
        "name: copy\nhosts: -H node2\nsteps:\n"
        f"  - {{name: dir, run: 'mkdir -p {work_dir}'}}\n"
        "  - name: env file\n    sudo: true\n"
        f"    copy: {{src: files/app.env, dest: {work_dir}/app.env,\n"
        "           mode: '0600', owner: 'root:root'}\n"
    )
    first = lab("play", "-i", "lab", str(book), "-o", "json")
    assert steps_of(first.stdout, "node2")["env file"]["status"] == "changed", first.stdout
    target = node_path(lab, "node2", f"{work_dir}/app.env")
    assert target.read_text() == "A=1\n"
    assert target.stat().st_mode & 0o777 == 0o600
    again = lab("play", "-i", "lab", str(book), "-o", "json")
    assert steps_of(again.stdout, "node2")["env file"]["status"] == "ok"
    (tmp_path / "files" / "app.env").write_text("A=2\n")
    changed = lab("play", "-i", "lab", str(book), "-o", "json")
    assert steps_of(changed.stdout, "node2")["env file"]["status"] == "changed"
    assert target.read_text() == "A=2\n"


def test_check_mode_says_a_step_depending_on_this_runs_registers_would_run_if(
    lab: Cli, work_dir: str
) -> None:
    check = play(lab, "check_pending.yaml", "-e", f"dir={work_dir}", "--check")
    out = check.stdout
    assert check.returncode == 0, out + check.stderr
    depends = "depends on token, registered by step 'make token' in this run"
    assert "STEP 1/5 make token  [node1]\n  would run  node1: echo" in out
    assert f"  would run  node[2-3]: if hosts.node1.token.rc == 0 ({depends})\n" in out
    guards = f"unless a guard skips it (cannot check its guards: {depends})"
    assert f"  would run  node2: {guards}\n" in out
    # A read-only step is not run with PENDING in its command.
    assert f'  would run  node3: echo "PENDING" ({depends})\n' in out
    assert "  skipped  node[1-3]: when: flavour == 'fancy'\n" in out  # decided: really skipped
    assert not node_path(lab, "node2", f"{work_dir}/made").exists()
    real = play(lab, "check_pending.yaml", "-e", f"dir={work_dir}", "-v")
    assert real.returncode == 0, real.stdout + real.stderr
    assert "    node2 | join TOK-1\n" in real.stdout
    assert node_path(lab, "node2", f"{work_dir}/made").exists()


def test_a_guarded_step_costs_one_connection_and_its_output_has_no_verdict(
    lab: Cli, tmp_path: Path, work_dir: str
) -> None:
    # sshd runs ~/.ssh/rc once per session: the lab makes one session per connection.
    sessions = f"{work_dir}/sessions.log"
    rc = f"mkdir -p {work_dir} /root/.ssh && echo 'echo x >> {sessions}' > /root/.ssh/rc"
    assert lab("run", "-i", "lab", "-H", "node1", rc).returncode == 0
    book = tmp_path / "guarded.yaml"
    book.write_text(
        "name: guarded\nhosts: -H node1\nsteps:\n"
        "  - {name: runs, run: 'echo ran; echo oops >&2', creates: /nonexistent, register: r}\n"
        "  - {name: skips, run: 'touch /root/never', creates: /etc}\n"
        "  - {name: sudo guard, run: 'echo as $(id -un)', unless: 'false', sudo: true}\n"
        "  - {name: sees, run: 'echo \"[{{ r.stdout }}]\"'}\n"
    )
    try:
        lab("run", "-i", "lab", "-H", "node1", f"rm -f {sessions}")
        done = lab("play", "-i", "lab", str(book), "-v")
    finally:
        lab("run", "-i", "lab", "-H", "node1", "rm -f /root/.ssh/rc")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "    node1 | ran\n" in out and "bastion-guard" not in out
    assert "  skipped  node1: creates /etc exists\n" in out
    assert "    node1 | as root\n" in out
    assert "    node1 | [ran]\n" in out  # the registered stdout has no verdict line either
    assert not node_path(lab, "node1", "/root/never").exists()
    # 4 steps, 4 connections (the 2 guarded that ran: one each, not guard + command), and the
    # one that removed ~/.ssh/rc (rc ran first).
    assert node_path(lab, "node1", sessions).read_text() == "x\n" * 5


def test_sigterm_stops_the_play_prints_the_recap_and_records_it(lab: Cli) -> None:
    naptime = f"4{os.getpid() % 1000}"
    process = subprocess.Popen(
        [*BASTION, "play", "-i", "lab", str(PLAYBOOKS / "slow.yaml"), "-e", f"naptime={naptime}"],
        env=lab.env,
        cwd=lab.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("STEP 2/3"):
            break
    time.sleep(2)  # the nap has started on the nodes
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 143, err
    assert "terminated (SIGTERM)" in err
    assert "PLAY RECAP" in out and "never reached" not in out
    history = lab("history", "--json", "-n", "1")
    entry = json.loads(history.stdout.splitlines()[-1])
    assert entry["exit_code"] == 143 and entry["command"].startswith("play ")
    marker = f"sleep {naptime}.7"
    still = lab("run", "-i", "lab", "--all", "-o", "json", f"pgrep -f '^{marker}$' || true")
    assert [json.loads(line)["stdout"] for line in still.stdout.splitlines()] == [""] * 3


def test_values_are_never_code_on_the_lab(lab: Cli, tmp_path: Path, work_dir: str) -> None:
    """Issue 11 item 4: every quoting context, hostile values, the node's own shell as oracle."""
    from tests.test_playbook_quoting import CONTEXTS, HOSTILE, expected

    marker = f"{work_dir}/marker"
    values = [v.replace("MARKER", marker) for v in HOSTILE if v not in ("EOF2", "\tEND2")]
    separator = "<|>"
    steps = [
        {"name": "make the work directory", "run": f"mkdir -p {work_dir}"},
        {"name": "control: a raw value is code", "run": "{{ control | raw }}"},
    ]
    wanted: dict[str, str] = {}
    for name, source in CONTEXTS.items():
        usable = [v for v in values if not ("tab-stripped" in name and "\n" in v)]
        each = source.replace("{{ x }}", "{{ v }}")
        loop = "{% for v in vals_" + str(len(wanted)) + " %}" + each
        loop += f"\nprintf '%s' '{separator}'\n" + "{% endfor %}"
        steps.append({"name": name, "run": loop, "readonly": True})
        wanted[name] = "".join(expected(name, v) + separator for v in usable)
        steps[-1]["vars_key"] = usable
    variables: dict[str, object] = {"control": f"touch {work_dir}/control"}
    for number, step in enumerate(s for s in steps if "vars_key" in s):
        variables[f"vals_{number}"] = step.pop("vars_key")
    book = tmp_path / "quoting.yaml"
    book.write_text(
        json.dumps({"name": "quoting", "hosts": "-H node1", "vars": variables, "steps": steps})
    )
    done = lab("play", "-i", "lab", str(book), "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    results = steps_of(done.stdout, "node1")
    assert node_path(lab, "node1", f"{work_dir}/control").exists()  # the oracle can see a marker
    assert not node_path(lab, "node1", marker).exists()
    for name, text in wanted.items():
        assert results[name]["stdout"] == text, name


class ProcessScanner:
    """Reads every process's argv and environment on this machine (the lab's nodes are
    processes here too) until stopped: which sentinel commands it saw, and any secret."""

    def __init__(self, secrets: list[str], sentinels: list[str]) -> None:
        import threading

        self.secrets = [s.encode() for s in secrets]
        self.sentinels = sentinels
        self.seen: set[str] = set()
        self.leaks: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._scan, daemon=True)

    def __enter__(self) -> ProcessScanner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _scan(self) -> None:
        me = str(os.getpid())
        while not self._stop.is_set():
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit() or proc.name == me:
                    continue
                for what in ("cmdline", "environ"):
                    try:
                        data = (proc / what).read_bytes()
                    except OSError:
                        continue
                    text = data.replace(b"\0", b" ").decode(errors="replace")
                    for sentinel in self.sentinels:
                        if what == "cmdline" and sentinel in text:
                            self.seen.add(sentinel)
                    for secret in self.secrets:
                        at = data.find(secret)  # where, with some context, to tell which step
                        if at >= 0:
                            around = data[max(0, at - 120) : at + 60].replace(b"\0", b" ")
                            self.leaks.append(f"{proc.name} {what}: ...{around.decode()}...")
            time.sleep(0.02)


@pytest.mark.parametrize("transport", ["asyncssh", "mosh"])
def test_secrets_never_reach_a_process_table_or_a_file_left_behind(
    lab: Cli, tmp_path: Path, work_dir: str, transport: str
) -> None:
    """Issue 11 item 7: argv and environ of every process, on the nodes and here (mosh-client
    included), while steps that use secrets run (plain, sudo, quoted, guard, script, wait_for,
    durable)."""
    if transport == "mosh" and not shutil.which("mosh"):
        pytest.skip("mosh is not installed here")
    token = f"tok-{uuid.uuid4().hex}"
    # Made on the node from the token (never written in a command): a secret step's output.
    joined = f"join-{token}".upper()
    (tmp_path / "token").write_text(token + "\n")
    (tmp_path / "uses.sh").write_text('sleep 2.105\ntest "$1" = "$2"\necho "script ok"\n')
    sentinels = [f"sleep 2.1{n}" for n in range(8)] + ["sleep 2.105"]
    book = tmp_path / "secret-steps.yaml"
    steps: list[dict[str, object]] = [
        {"name": "plain", "run": 'x={{ token }}; sleep 2.10; test "$x" = {{ token }}'},
        {"name": "sudo", "run": "x={{ token }}; sleep 2.11", "sudo": True},
        {"name": "quoted", "run": "printf '%s' 'in {{ token }}' \"{{ token }}\"; sleep 2.12"},
        {"name": "guard", "run": "sleep 2.13", "unless": 'sleep 2.14; test "{{ token }}" = no'},
        {"name": "script", "script": {"src": "uses.sh", "args": ["{{ token }}", "{{ token }}"]}},
        {"name": "wait", "wait_for": {"command": 'sleep 2.15; test -n "{{ token }}"'}},
        {"name": "durable", "run": "x={{ token }}; sleep 2.16; echo durable ok", "durable": True},
        {
            "name": "make",
            "run": "printf 'join-%s' {{ token }} | tr a-z A-Z",
            "secret": True,
            "register": "j",
        },
        {"name": "use", "run": "x={{ hosts.node1.j.stdout }}; sleep 2.17"},
    ]
    book.write_text(
        json.dumps(
            {
                "name": "secrets in process tables",
                "hosts": "-H node1",
                "vars": {"token": {"secret": True, "file": str(tmp_path / "token")}},
                "steps": steps,
            }
        )
    )
    with ProcessScanner([token, joined], sentinels) as scanner:
        done = lab("play", "-i", "lab", str(book), "-v", "--transport", transport, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "script ok" in done.stdout and "durable ok" in done.stdout
    assert token not in done.stdout + done.stderr
    # The scan saw each step's command running (so it could have seen a leak)...
    assert set(sentinels) - {"sleep 2.13"} <= scanner.seen, sorted(scanner.seen)
    # ...and no process held a secret in its argv or environment.
    assert scanner.leaks == []
    # No 0600 script file and no durable job file holding the secret stays on the node.
    left = lab("run", "-i", "lab", "-H", "node1", "ls -a /tmp; ls -aR ~/.cache 2>/dev/null; true")
    assert "bastion-secret" not in left.stdout, left.stdout
    upper = node_path(lab, "node1", "/root/x").parent
    for path in upper.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert token.encode() not in path.read_bytes(), path


def test_facts_true_gathers_each_nodes_facts_once_for_templates(lab: Cli, tmp_path: Path) -> None:
    """Issue 15: `facts: true`; the node's own uname is the oracle."""
    book = tmp_path / "facts.yaml"
    book.write_text(
        "name: facts\nhosts: --all\nfacts: true\nsteps:\n"
        "  - name: show\n    readonly: true\n"
        "    run: >-\n"
        '      test {{ facts.kernel }} = "$(uname -r)" &&\n'
        '      test {{ facts.hostname }} = "$(uname -n)" &&\n'
        "      echo 'cpus={{ facts.cpus }} node2={{ hosts.node2.facts.hostname }}'\n"
    )
    done = lab("play", "-i", "lab", str(book), "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    cpus = lab("run", "-i", "lab", "-H", "node1", "-o", "json", "getconf _NPROCESSORS_ONLN")
    expected = json.loads(cpus.stdout)["stdout"].strip()
    for node in NODES:
        steps = steps_of(done.stdout, node)
        assert steps["gather facts"]["status"] == "ok"
        assert steps["show"]["stdout"] == f"cpus={expected} node2=node2\n"
    text = lab("play", "-i", "lab", str(book))
    assert "STEP 1/2 gather facts  [node[1-3]]\n  ok  node[1-3]\n" in text.stdout
