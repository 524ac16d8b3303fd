"""`bastion run` end to end against real OpenSSH sshd nodes started by `bastion lab`."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BASTION, LAB_SUBNET, Cli, is_root, lab_address

pytestmark = pytest.mark.lab

ADDRESSES = {f"node{n}": lab_address(n) for n in (1, 2, 3)}


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def gone(pattern: str, within_s: float = 10.0) -> bool:
    """True once no process matches ``pattern`` (signals take a moment on a loaded machine)."""
    deadline = time.monotonic() + within_s
    while True:
        found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, check=False)
        if found.returncode == 1:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def port_open(address: str) -> bool:
    try:
        socket.create_connection((address, 22), timeout=1).close()
    except OSError:
        return False
    return True


def node_pids(cli: Cli) -> dict[str, int]:
    state = json.loads((Path(cli.env["BASTION_LAB_DIR"]) / "state.json").read_text())
    return {node["name"]: int(node["pid"]) for node in state["nodes"]}


def test_all_hosts_print_their_own_hostname(lab: Cli) -> None:
    done = lab("run", "-i", "lab", "--all", "hostname")
    assert done.returncode == 0, done.stderr
    expected = ["node1: node1", "node2: node2", "node3: node3"] if is_root() else []
    if expected:
        assert sorted(done.stdout.splitlines()) == expected
    assert "3 hosts in" in done.stderr
    assert "ok  node[1-3]" in done.stderr


def test_json_output_is_one_valid_record_per_selected_host(lab: Cli) -> None:
    done = lab("run", "-i", "lab", "-H", "node[1-2]", "-o", "json", "cat /etc/hostname")
    assert done.returncode == 0, done.stderr
    records = sorted(json_lines(done.stdout), key=lambda r: str(r["host"]))
    assert [r["host"] for r in records] == ["node1", "node2"]
    for record in records:
        host = str(record["host"])
        assert set(record) == {
            "schema",
            "host",
            "address",
            "status",
            "exit_status",
            "stdout",
            "stderr",
            "error",
            "duration_s",
            "reason",
        }
        assert record["schema"] == 1
        assert record["address"] == ADDRESSES[host]
        assert record["status"] == "ok"
        assert record["exit_status"] == 0
        if is_root():
            assert record["stdout"] == f"{host}\n"
        assert record["stderr"] == ""
        assert record["error"] is None
        assert record["reason"] is None
        assert isinstance(record["duration_s"], float) and 0 < record["duration_s"] < 30


def test_group_and_selector_narrow_to_the_workers(lab: Cli) -> None:
    done = lab("run", "-i", "lab", "-g", "workers", "-l", "role=worker", "-o", "json", "uname -r")
    assert done.returncode == 0, done.stderr
    assert sorted(r["host"] for r in json_lines(done.stdout)) == ["node2", "node3"]


def test_exclude_and_grouped_output(lab: Cli) -> None:
    done = lab("run", "-i", "lab", "--all", "-x", "node3", "-o", "grouped", "echo same")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "---------------\nnode[1-2] (2)\n---------------\nsame\n"


def test_stderr_is_kept_apart_and_marked(lab: Cli) -> None:
    done = lab("run", "-i", "lab", "-H", "node1", "echo out; echo err >&2")
    assert done.stdout == "node1: out\n"
    assert "node1 [stderr]: err\n" in done.stderr


def test_a_command_failing_on_one_node_exits_1(lab: Cli) -> None:
    done = lab("run", "-i", "lab", "--all", "-o", "json", 'test "$(cat /etc/hostname)" != node2')
    if not is_root():
        pytest.skip("nodes share /etc/hostname without root")
    assert done.returncode == 1
    status = {r["host"]: (r["status"], r["exit_status"]) for r in json_lines(done.stdout)}
    assert status == {"node1": ("ok", 0), "node2": ("failed", 1), "node3": ("ok", 0)}
    assert "  failed  node2  exit status 1\n" in done.stderr


def test_an_unreachable_node_exits_3_and_the_others_output_is_intact(lab: Cli) -> None:
    pid = node_pids(lab)["node3"]
    os.kill(pid, signal.SIGTERM)
    try:
        deadline = time.monotonic() + 10
        while port_open(ADDRESSES["node3"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        done = lab("run", "-i", "lab", "--all", "--retries", "0", "-o", "json", "echo alive")
        assert done.returncode == 3, done.stderr
        records = {r["host"]: r for r in json_lines(done.stdout)}
        assert records["node1"]["stdout"] == "alive\n"
        assert records["node2"]["stdout"] == "alive\n"
        assert records["node3"]["status"] == "unreachable"
        assert "connection refused" in str(records["node3"]["error"])
        assert "unreachable  node3" in done.stderr
    finally:
        restored = lab("lab", "up", "--nodes", "3", "--subnet", LAB_SUBNET, timeout=60)
        assert restored.returncode == 0, restored.stderr


def test_timeout_keeps_partial_output_and_kills_the_remote_command(lab: Cli) -> None:
    marker = f"sleep 3{os.getpid() % 1000}.5"
    done = lab(
        "run",
        "-i",
        "lab",
        "-H",
        "node1",
        "-t",
        "1",
        "-o",
        "json",
        f"echo started; {marker}; echo never",
    )
    assert done.returncode == 1, done.stderr
    (record,) = json_lines(done.stdout)
    assert record["status"] == "timeout"
    assert record["stdout"] == "started\n"
    assert record["exit_status"] is None
    assert gone(marker), "the timed-out remote command is still running"


def test_out_dir_then_retry_failed_runs_only_the_failed_host(lab: Cli, tmp_path: Path) -> None:
    if not is_root():
        pytest.skip("nodes share /etc/hostname without root")
    first = tmp_path / "run1"
    done = lab(
        "run",
        "-i",
        "lab",
        "--all",
        "--out-dir",
        str(first),
        "-o",
        "quiet",
        'cat /etc/hostname; test "$(cat /etc/hostname)" != node2',
    )
    assert done.returncode == 1
    assert (first / "node1.out").read_text() == "node1\n"
    assert (first / "hosts.ok").read_text() == "node1\nnode3\n"
    assert (first / "hosts.failed").read_text() == "node2\n"
    manifest = json.loads((first / "run.json").read_text())
    assert manifest["selection"] == "--all"
    assert len(manifest["inventory"]["sha256"]) == 64
    assert stat.S_IMODE(first.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in first.iterdir()} == {0o600}

    again = lab("run", "-i", "lab", "--retry-failed", str(first), "-o", "json", "hostname")
    assert again.returncode == 0, again.stderr
    assert [r["host"] for r in json_lines(again.stdout)] == ["node2"]


def test_sudo_runs_as_root(lab: Cli) -> None:
    if not is_root():
        pytest.skip("the non-root lab has no sudo rights")
    done = lab("run", "-i", "lab", "-H", "node2", "--sudo", "-o", "json", "id -un")
    assert done.returncode == 0, done.stderr
    record = json_lines(done.stdout)[0]
    assert record["stdout"] == "root\n"
    # The node resolves its own name, so sudo does not warn "unable to resolve host node2".
    assert record["stderr"] == ""


def test_inventory_list_shows_addresses_labels_and_groups(lab: Cli) -> None:
    done = lab("inventory", "-i", "lab", "list", "--json")
    assert done.returncode == 0, done.stderr
    hosts = {r["host"]: r for r in json_lines(done.stdout)}
    assert set(hosts) == {"node1", "node2", "node3"}
    assert hosts["node1"]["labels"]["role"] == "control-plane"
    assert hosts["node2"]["labels"]["role"] == "worker"
    assert "masters" in hosts["node1"]["groups"]
    assert "workers" in hosts["node3"]["groups"]
    assert hosts["node2"]["address"] == ADDRESSES["node2"]
    table = lab("inventory", "-i", "lab", "list")
    assert table.returncode == 0 and "node3" in table.stdout and "role=worker" in table.stdout


def test_history_records_runs_without_their_output(lab: Cli) -> None:
    lab("run", "-i", "lab", "-H", "node1", "echo history-body-marker")
    done = lab("history", "--json", "-n", "1")
    (entry,) = json_lines(done.stdout)
    assert entry["command"] == "echo history-body-marker"
    assert entry["hosts"] == {"node1": ["ok", 0]}
    history = Path(lab.env["BASTION_HISTORY_FILE"])
    assert "history-body-marker\\n" not in history.read_text()
    assert stat.S_IMODE(history.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("sent", "code", "said"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
)
def test_interrupt_or_sigterm_stops_remote_commands_and_keeps_the_record(
    lab: Cli, sent: signal.Signals, code: int, said: str
) -> None:
    marker = f"sleep 4{os.getpid() % 1000}.{sent.value}"
    argv = [*BASTION, "run", "-i", "lab", "--all", f"echo go; {marker}"]
    if sent is signal.SIGTERM:  # as a shell's `cmd &` starts it: SIGINT ignored
        argv = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *argv]
    process = subprocess.Popen(
        argv,
        env=lab.env,
        cwd=lab.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    seen = [process.stdout.readline() for _ in range(3)]
    assert all(line.endswith(": go\n") for line in seen), seen
    process.send_signal(sent)
    _, err = process.communicate(timeout=30)
    assert process.returncode == code, err
    assert f"bastion: {said}; not finished: node[1-3]" in err
    assert gone(marker), "the interrupted remote command is still running"
    history = lab("history", "--json", "-n", "1")
    entry = json.loads(history.stdout.splitlines()[-1])
    assert entry["command"] == f"echo go; {marker}"
    assert entry["exit_code"] == code


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-H", "node9", "true"], "unknown host 'node9'"),
        (["-g", "nope", "true"], "nope"),
        (["-l", "role=db", "true"], "role=db"),
        (["true"], "--all"),
    ],
)
def test_bad_selection_is_one_line_and_exit_2(lab: Cli, args: list[str], message: str) -> None:
    done = lab("run", "-i", "lab", *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("bastion: error: ")
    assert done.stderr.count("\n") == 1


def test_a_bad_inventory_names_file_and_line(lab: Cli, tmp_path: Path) -> None:
    inventory = tmp_path / "bad.yaml"
    inventory.write_text(f"hosts:\n  node1:\n    address: {LAB_SUBNET}.1\n    colour: blue\n")
    done = lab("run", "-i", str(inventory), "--all", "true")
    assert done.returncode == 2
    assert done.stderr.startswith(f"bastion: error: {inventory}:4: ")
    assert "colour" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_host_key_is_refused_unless_accept_new(lab: Cli, tmp_path: Path) -> None:
    lab_dir = Path(lab.env["BASTION_LAB_DIR"])
    inventory = tmp_path / "inventory.yaml"
    known = tmp_path / "known_hosts"
    inventory.write_text(
        "defaults:\n"
        f"  identity_file: {lab_dir / 'id_ed25519'}\n"
        f"  known_hosts: {known}\n"
        f"  user: {'root' if is_root() else os.environ.get('USER', 'root')}\n"
        f"hosts:\n  node1: {{address: {ADDRESSES['node1']}}}\n"
    )
    if not is_root():
        pytest.skip("the non-root lab uses per-node ports, not written here")
    strict = lab("run", "-i", str(inventory), "--all", "--retries", "0", "true")
    assert strict.returncode == 3
    assert "--accept-new" in strict.stderr
    assert not known.exists()
    tofu = lab("run", "-i", str(inventory), "--all", "--accept-new", "true")
    assert tofu.returncode == 0, tofu.stderr
    assert known.read_text().startswith(f"{ADDRESSES['node1']} ssh-ed25519 ")
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    other_key = " ".join((lab_dir / "id_ed25519.pub").read_text().split()[:2])
    known.write_text(f"{ADDRESSES['node1']} {other_key}\n")
    changed = lab("run", "-i", str(inventory), "--all", "--accept-new", "true")
    assert changed.returncode == 3
    assert "HOST KEY CHANGED" in changed.stderr


def test_version_names_semver_and_commit() -> None:
    done = subprocess.run([*BASTION, "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert done.stdout.startswith("bastion 0.1.0")


def private_home(lab: Cli, tmp_path: Path) -> dict[str, str]:
    """An environment whose HOME has no keys or known_hosts of its own."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    return {**lab.env, "HOME": str(home)}


def hostname_through(inventory: Path, env: dict[str, str]) -> str:
    """What ``cat /etc/hostname`` prints on the inventory's one host (the run must succeed)."""
    done = subprocess.run(
        [*BASTION, "run", "-i", str(inventory), "--all", "-o", "json", "cat /etc/hostname"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    stdout: str = json_lines(done.stdout)[0]["stdout"]
    return stdout


def test_ssh_config_supplies_hostname_user_and_identity(lab: Cli, tmp_path: Path) -> None:
    if not is_root():
        pytest.skip("the non-root lab listens on per-node ports")
    lab_dir = Path(lab.env["BASTION_LAB_DIR"])
    env = private_home(lab, tmp_path)
    (Path(env["HOME"]) / ".ssh" / "config").write_text(
        "Host aliasnode\n"
        f"  HostName {ADDRESSES['node2']}\n"
        "  User root\n"
        f"  IdentityFile {lab_dir / 'id_ed25519'}\n"
    )
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        f"defaults:\n  known_hosts: {lab_dir / 'known_hosts'}\nhosts:\n  aliasnode:\n"
    )
    assert hostname_through(inventory, env) == "node2\n"


def test_keys_from_ssh_agent(lab: Cli, tmp_path: Path) -> None:
    if not is_root():
        pytest.skip("the non-root lab listens on per-node ports")
    lab_dir = Path(lab.env["BASTION_LAB_DIR"])
    env = private_home(lab, tmp_path)
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not socket_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        env["SSH_AUTH_SOCK"] = str(socket_path)
        subprocess.run(
            ["ssh-add", str(lab_dir / "id_ed25519")], env=env, check=True, capture_output=True
        )
        inventory = tmp_path / "inventory.yaml"
        inventory.write_text(
            f"defaults:\n  user: root\n  known_hosts: {lab_dir / 'known_hosts'}\n"
            f"hosts:\n  node3: {{address: {ADDRESSES['node3']}}}\n"
        )
        assert hostname_through(inventory, env) == "node3\n"
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_live_progress_on_a_terminal_leaves_output_intact(lab: Cli) -> None:
    import pty

    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [*BASTION, "run", "-i", "lab", "--all", "-o", "json", "echo hi"],
            env={**lab.env, "TERM": "xterm"},
            cwd=lab.cwd,
            stdout=subprocess.PIPE,
            stderr=secondary,
            text=True,
            check=False,
            timeout=60,
        )
    finally:
        os.close(secondary)
    terminal = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        terminal += chunk
    os.close(primary)
    assert done.returncode == 0
    assert sorted(r["host"] for r in json_lines(done.stdout)) == ["node1", "node2", "node3"]
    assert b"/3 done" in terminal, terminal  # the live line was drawn
    assert b"3 hosts in" in terminal


def test_nodes_start_with_the_stock_shell_files_not_the_hosts(lab: Cli) -> None:
    if not is_root():
        pytest.skip("the non-root lab logs in as the current user, in its own home")
    done = lab(
        "run",
        "-i",
        "lab",
        "-H",
        "node1",
        "-o",
        "json",
        "cmp -s ~/.bashrc /etc/skel/.bashrc && cmp -s ~/.profile /etc/skel/.profile && echo stock",
    )
    assert json_lines(done.stdout)[0]["stdout"] == "stock\n", done.stderr


def _bastion_piped(lab: Cli, pipeline: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``bastion PIPELINE`` in bash, as a user's shell runs it (``| head`` and all)."""
    return subprocess.run(
        f"{' '.join(BASTION)} {pipeline}",
        shell=True,
        executable="/bin/bash",
        env={**lab.env, **env},
        cwd=lab.cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_closed_stdout_stops_the_output_not_the_run(lab: Cli) -> None:
    # `| head`: the reader goes away early; the hosts still finish, the summary and the
    # history have every host, no traceback, and the exit code is the run's own.
    done = _bastion_piped(
        lab,
        "run -i lab --all -o json 'seq 1 50000; exit 3' | head -c 100 >/dev/null;"
        " echo rc=${PIPESTATUS[0]} >&2",
    )
    assert "Traceback" not in done.stderr
    assert "stdout was closed early" in done.stderr
    assert "3 hosts" in done.stderr and "3 failed" in done.stderr, done.stderr
    assert done.stderr.strip().endswith("rc=1"), done.stderr
    history = lab("history", "--json", "-n", "1")
    entry = json.loads(history.stdout.splitlines()[-1])
    assert entry["command"] == "seq 1 50000; exit 3"
    assert entry["exit_code"] == 1


def test_a_closed_stdout_leaves_no_spool_on_disk(lab: Cli, tmp_path: Path) -> None:
    # Each host prints more than the spool keeps in memory, and the reader goes away after
    # the first: the hosts not yet written have spilled files, removed at exit all the same.
    spool_parent = tmp_path / "tmp"
    spool_parent.mkdir()
    done = _bastion_piped(
        lab,
        "run -i lab --all -o json 'seq 1 400000' | head -c 100 >/dev/null",
        TMPDIR=str(spool_parent),
    )
    assert "Traceback" not in done.stderr
    assert "3 hosts" in done.stderr, done.stderr
    assert list(spool_parent.iterdir()) == []
