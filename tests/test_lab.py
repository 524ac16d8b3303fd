"""`bastion lab`: config rendering and state without processes, then real sshd nodes.

The real-node tests use their own lab directory and subnet 127.$BASTION_TEST_NET.9, so they
never touch a user's lab (127.0.1) or the integration lab; every one tears its lab down, even
when it fails, and checks that nothing it started is left running.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bastion.cli.lab_cmd import lab_app
from bastion.errors import EnvironmentProblem, LabError, UsageError
from bastion.lab import manager, processes, tools
from bastion.lab.inventory_file import InventoryHost, render_lab_inventory
from bastion.lab.keys import PinnedHost, known_hosts_line
from bastion.lab.manager import LabReport, NodeAction, down, status, up
from bastion.lab.nodes import node_layout
from bastion.lab.sshd import SshdSettings, render_sshd_config, sshd_settings
from bastion.lab.state import LabMode, LabState, NodeRecord, load_state, save_state
from tests.conftest import LAB_UNIT_SUBNET

SUBNET = LAB_UNIT_SUBNET


# --- units: no processes ------------------------------------------------------------------


def test_sshd_config_is_cheap_strict_and_keys_only(tmp_path: Path) -> None:
    config = render_sshd_config(
        SshdSettings(
            address="127.0.9.2",
            port=22,
            host_key=tmp_path / "key",
            pid_file=tmp_path / "pid",
            authorized_keys=".ssh/authorized_keys",
        )
    )
    directives = {
        line.split()[0]: " ".join(line.split()[1:])
        for line in config.splitlines()
        if line and not line.startswith("#")
    }
    assert directives == {
        "ListenAddress": "127.0.9.2:22",
        "AddressFamily": "inet",
        "HostKey": str(tmp_path / "key"),
        "PidFile": str(tmp_path / "pid"),
        "AuthorizedKeysFile": ".ssh/authorized_keys",
        "PubkeyAuthentication": "yes",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "PermitRootLogin": "prohibit-password",
        "StrictModes": "yes",
        "UsePAM": "no",
        "UseDNS": "no",
        "PrintMotd": "no",
        "PrintLastLog": "no",
        "Subsystem": "sftp internal-sftp",
        "MaxSessions": "64",
        "LogLevel": "ERROR",
    }


def test_user_mode_names_an_absolute_authorized_keys_file(tmp_path: Path) -> None:
    layout = node_layout(tmp_path, "node1")
    settings = sshd_settings(layout, LabMode.USER, "127.0.0.1", 40022)
    assert settings.authorized_keys == str(tmp_path / "nodes" / "node1" / "authorized_keys")
    assert sshd_settings(layout, LabMode.ROOT, "127.0.9.1", 22).authorized_keys == (
        ".ssh/authorized_keys"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="sshd -t reads the host key as root")
def test_this_sshd_accepts_the_rendered_config(tmp_path: Path) -> None:
    sshd = tools.find_program("sshd")
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    settings = SshdSettings("127.0.9.1", 22, key, tmp_path / "pid", ".ssh/authorized_keys")
    (tmp_path / "sshd_config").write_text(render_sshd_config(settings))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    checked = subprocess.run(
        [sshd, "-t", "-f", str(tmp_path / "sshd_config")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


def test_state_round_trips(tmp_path: Path) -> None:
    state = LabState(
        subnet=SUBNET,
        mode=LabMode.ROOT,
        nodes=(
            NodeRecord(
                "node1", "127.0.9.1", 22, 4242, tmp_path / "n1" / "sshd_config", LabMode.ROOT
            ),
            NodeRecord(
                "node2", "127.0.9.2", 22, None, tmp_path / "n2" / "sshd_config", LabMode.ROOT
            ),
        ),
    )
    save_state(tmp_path, state)
    assert load_state(tmp_path) == state
    assert stat.S_IMODE((tmp_path / "state.json").stat().st_mode) == 0o600


def test_no_state_is_no_lab_and_a_broken_one_is_a_clear_error(tmp_path: Path) -> None:
    assert load_state(tmp_path) is None
    (tmp_path / "state.json").write_text('{"schema": 1, "nodes": "oops"}')
    with pytest.raises(LabError, match="invalid lab state"):
        load_state(tmp_path)


@pytest.mark.parametrize(
    ("port", "line"),
    [
        (22, "127.0.9.1 ssh-ed25519 AAAAkey"),
        (40022, "[127.0.0.1]:40022 ssh-ed25519 AAAAkey"),
    ],
)
def test_known_hosts_uses_the_bracket_form_for_other_ports(port: int, line: str) -> None:
    address = "127.0.9.1" if port == 22 else "127.0.0.1"
    assert known_hosts_line(PinnedHost(address, port, "ssh-ed25519 AAAAkey")) == line


def test_lab_inventory_reads_back_as_the_documented_structure() -> None:
    hosts = [
        InventoryHost("node1", "127.0.9.1", 22, "control-plane"),
        InventoryHost("node2", "127.0.9.2", 22, "worker"),
    ]
    assert yaml.safe_load(render_lab_inventory(hosts, user="root")) == {
        "defaults": {
            "user": "root",
            "identity_file": "id_ed25519",
            "known_hosts": "known_hosts",
            "connect_timeout": 5,
        },
        "hosts": {
            "node1": {"address": "127.0.9.1", "labels": {"role": "control-plane", "env": "lab"}},
            "node2": {"address": "127.0.9.2", "labels": {"role": "worker", "env": "lab"}},
        },
        "groups": {"masters": ["node1"], "workers": {"selector": "role=worker"}},
    }


def test_lab_inventory_has_ports_in_user_mode_and_quotes_odd_user_names() -> None:
    hosts = [InventoryHost("node1", "127.0.0.1", 40022, "control-plane")]
    document = yaml.safe_load(render_lab_inventory(hosts, user="yes"))
    assert document["defaults"]["user"] == "yes"
    assert document["hosts"]["node1"]["port"] == 40022


def test_lab_inventory_loads_with_the_real_loader(tmp_path: Path) -> None:
    from bastion.inventory import load_inventory

    hosts = [
        InventoryHost("node1", "127.0.9.1", 22, "control-plane"),
        InventoryHost("node2", "127.0.0.1", 40022, "worker"),
    ]
    path = tmp_path / "inventory.yaml"
    path.write_text(render_lab_inventory(hosts, user="root"))
    inventory = load_inventory(path)
    node2 = inventory.hosts["node2"]
    assert (node2.address, node2.port, node2.groups) == ("127.0.0.1", 40022, ("workers",))
    assert node2.identity_file == str(tmp_path / "id_ed25519")


@pytest.mark.parametrize("subnet", ["10.0.0", "127.0", "127.0.1.2", "127.0.256", "127.00.1", ""])
def test_subnet_must_be_three_octets_inside_loopback(subnet: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--subnet"):
        up(1, subnet=subnet, lab_dir=tmp_path)


@pytest.mark.parametrize("count", [0, 255])
def test_node_count_is_1_to_254(count: int, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--nodes"):
        up(count, subnet=SUBNET, lab_dir=tmp_path)


def test_a_lab_dir_unusable_in_sshd_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="may only contain"):
        up(1, subnet=SUBNET, lab_dir=tmp_path / "a b,c")


def test_missing_sshd_is_an_environment_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(tools, "FALLBACK_DIRS", ())
    with pytest.raises(EnvironmentProblem) as raised:
        up(1, subnet=SUBNET, lab_dir=tmp_path / "lab")
    assert str(raised.value) == (
        "sshd not found: install openssh-server (apt-get install openssh-server)"
    )
    for program, package in [("ssh-keygen", "openssh-client"), ("unshare", "util-linux")]:
        with pytest.raises(EnvironmentProblem, match=f"^{program} not found: install {package}"):
            tools.find_program(program)
    # Nothing was created before the check.
    assert not (tmp_path / "lab").exists()


def test_descendants_follow_the_parent_links() -> None:
    table = {
        pid: processes.ProcessInfo(pid, ppid, start_time=0, mount_namespace=None)
        for pid, ppid in [(10, 1), (11, 10), (12, 11), (13, 10), (20, 1)]
    }
    assert processes.descendants([10], table) == {11, 12, 13}
    assert processes.descendants([11, 20], table) == {12}


def test_status_without_a_lab_says_so_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_LAB_DIR", str(tmp_path / "lab"))
    assert len(status()) == 0
    result = CliRunner().invoke(lab_app, ["status"])
    assert result.exit_code == 1
    assert "no lab (run `bastion lab up`)" in result.output
    assert down().nodes == ()


# --- real sshd nodes ----------------------------------------------------------------------

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="namespaces, overlays and port 22 need root"
)


def running(pid: int | None) -> bool:
    """Whether ``pid`` runs (a zombie waiting for PID 1 to reap it does not count)."""
    if pid is None:
        return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def processes_mentioning(lab_dir: Path) -> list[str]:
    """Command lines of running processes that name the lab directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and running(int(entry.name)):
            words = processes.command_line(int(entry.name)) or []
            if any(str(lab_dir) in word for word in words):
                found.append(" ".join(words))
    return found


def ssh(lab: LabReport, node: str, command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` on ``node`` with the system ssh client, strict host-key checking."""
    target = next(n for n in lab if n.name == node)
    user = "root" if target.mode is LabMode.ROOT else pwd.getpwuid(os.geteuid()).pw_name
    return subprocess.run(
        [
            "ssh",
            "-F", "/dev/null",
            "-i", str(lab.lab_dir / "id_ed25519"),
            "-o", f"UserKnownHostsFile={lab.lab_dir / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "ConnectTimeout=5",
            "-p", str(target.port),
            f"{user}@{target.address}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip


@pytest.fixture
def lab_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private lab directory; whatever the test started there is stopped afterwards."""
    directory = tmp_path / "lab"
    monkeypatch.setenv("BASTION_LAB_DIR", str(directory))
    try:
        yield directory
    finally:
        down(directory)
        assert processes_mentioning(directory) == []


@pytest.mark.lab
@needs_root
def test_up_starts_nodes_with_their_own_hostnames_and_pinned_keys(lab_dir: Path) -> None:
    lab = up(3, subnet=SUBNET)
    assert [(n.name, n.address, n.port, n.up) for n in lab] == [
        ("node1", f"{SUBNET}.1", 22, True),
        ("node2", f"{SUBNET}.2", 22, True),
        ("node3", f"{SUBNET}.3", 22, True),
    ]
    assert {n.action for n in lab} == {NodeAction.STARTED}
    assert lab.inventory == lab_dir / "inventory.yaml"
    done = ssh(lab, "node2", "hostname; cat /etc/hostname")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "node2\nnode2\n"
    assert socket.gethostname() != "node2"
    key = lab_dir / "id_ed25519"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(lab_dir.stat().st_mode) == 0o700
    for name in ("known_hosts", "inventory.yaml", "state.json"):
        assert stat.S_IMODE((lab_dir / name).stat().st_mode) == 0o600
    state = json.loads((lab_dir / "state.json").read_text())
    assert [(n["name"], n["pid"], n["mode"]) for n in state["nodes"]] == [
        (n.name, n.pid, "root") for n in lab
    ]


@pytest.mark.lab
@needs_root
def test_nodes_have_private_root_etc_and_tmp(lab_dir: Path) -> None:
    lab = up(2, subnet=SUBNET)
    name = f"lab-probe-{uuid.uuid4().hex}"
    wrote = ssh(lab, "node1", f"echo one > /root/{name}; echo one > /etc/{name}; touch /tmp/{name}")
    assert wrote.returncode == 0, wrote.stderr
    assert ssh(lab, "node1", f"cat /root/{name} /etc/{name}").stdout == "one\none\n"
    for path in (f"/root/{name}", f"/etc/{name}", f"/tmp/{name}"):
        assert ssh(lab, "node2", f"test -e {path}").returncode == 1, path
        assert not Path(path).exists(), path
    # The node's changes live in its upper layer in the lab directory.
    assert (lab_dir / "nodes" / "node1" / "root.upper" / name).read_text() == "one\n"


@pytest.mark.lab
@needs_root
def test_up_again_leaves_running_nodes_alone(lab_dir: Path) -> None:
    first = up(3, subnet=SUBNET)
    key = (lab_dir / "id_ed25519").read_bytes()
    again = up(3, subnet=SUBNET)
    assert [n.pid for n in again] == [n.pid for n in first]
    assert {n.action for n in again} == {NodeAction.ALREADY_UP}
    assert (lab_dir / "id_ed25519").read_bytes() == key


@pytest.mark.lab
@needs_root
def test_up_restarts_only_a_dead_node(lab_dir: Path) -> None:
    first = up(3, subnet=SUBNET)
    os.kill(first[1].pid or 0, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while running(first[1].pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [n.up for n in status()] == [True, False, True]
    assert CliRunner().invoke(lab_app, ["status"]).exit_code == 3

    again = up(3, subnet=SUBNET)
    assert [n.action for n in again] == [
        NodeAction.ALREADY_UP,
        NodeAction.RESTARTED,
        NodeAction.ALREADY_UP,
    ]
    assert again[0].pid == first[0].pid and again[2].pid == first[2].pid
    assert again[1].pid != first[1].pid
    # Strict host-key checking still works: the host key was kept.
    assert ssh(again, "node2", "hostname").stdout == "node2\n"
    assert CliRunner().invoke(lab_app, ["status"]).exit_code == 0


@pytest.mark.lab
@needs_root
def test_fewer_nodes_stops_the_extra_ones(lab_dir: Path) -> None:
    first = up(3, subnet=SUBNET)
    smaller = up(2, subnet=SUBNET)
    assert [n.name for n in smaller] == ["node1", "node2"]
    assert [(n.name, n.action) for n in smaller.removed] == [("node3", NodeAction.STOPPED)]
    assert not running(first[2].pid)
    assert not (lab_dir / "nodes" / "node3").exists()
    assert "node3" not in (lab_dir / "inventory.yaml").read_text()
    assert f"{SUBNET}.3" not in (lab_dir / "known_hosts").read_text()


@pytest.mark.lab
@needs_root
def test_down_stops_nodes_and_their_sessions_and_is_idempotent(lab_dir: Path) -> None:
    lab = up(2, subnet=SUBNET)
    # A session still connected, and a process detached from its session.
    with subprocess.Popen(
        [
            "ssh", "-F", "/dev/null", "-i", str(lab_dir / "id_ed25519"),
            "-o", f"UserKnownHostsFile={lab_dir / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            f"root@{SUBNET}.1", "echo $$; exec sleep 300",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as client:  # fmt: skip
        assert client.stdout is not None
        session = int(client.stdout.readline())
        detached = ssh(lab, "node2", "setsid sleep 301 </dev/null >/dev/null 2>&1 & echo $!")
        orphan = int(detached.stdout)
        assert running(session) and running(orphan)

        stopped = down()
        assert [(n.name, n.action) for n in stopped] == [
            ("node1", NodeAction.STOPPED),
            ("node2", NodeAction.STOPPED),
        ]
        for pid in (lab[0].pid, lab[1].pid, session, orphan):
            assert not running(pid), pid
        # The client sees its connection closed.
        assert client.wait(timeout=10) != 0
    assert processes_mentioning(lab_dir) == []
    assert not (lab_dir / "state.json").exists()
    assert not (lab_dir / "inventory.yaml").exists()
    assert not (lab_dir / "nodes").exists()
    # Keys stay, so the next `up` keeps the same pinned host keys.
    assert (lab_dir / "id_ed25519").exists() and (lab_dir / "known_hosts").exists()
    assert down().nodes == ()
    assert len(status()) == 0


@pytest.mark.lab
@needs_root
def test_a_node_that_cannot_start_is_named_with_its_log(lab_dir: Path) -> None:
    up(2, subnet=SUBNET)
    down()
    (lab_dir / "host_keys" / "node2" / "ssh_host_ed25519_key").write_text("not a key\n")
    with pytest.raises(
        LabError, match=rf"node2 \({re.escape(SUBNET)}\.2:22\): sshd exited"
    ) as raised:
        up(2, subnet=SUBNET)
    assert "no hostkeys available" in str(raised.value)
    # The node that did start is recorded, so `down` (the fixture) stops it.
    assert [n.name for n in status() if n.up] == ["node1"]


@pytest.mark.lab
@needs_root
def test_a_port_in_use_is_reported_before_any_node_starts(lab_dir: Path) -> None:
    with socket.socket() as squatter:
        # Like sshd: earlier tests' connections may linger in TIME_WAIT on that port.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((f"{SUBNET}.2", 22))
        squatter.listen()
        with pytest.raises(LabError, match=rf"{re.escape(SUBNET)}\.2:22 is already in use"):
            up(2, subnet=SUBNET)
    assert processes_mentioning(lab_dir) == []


@pytest.mark.lab
def test_user_mode_runs_plain_sshd_on_high_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    home_tmp = Path.home() / ".cache"
    home_tmp.mkdir(parents=True, exist_ok=True)
    # Not under /tmp: StrictModes refuses an authorized_keys file below a world-writable dir.
    directory = Path(tempfile.mkdtemp(prefix="bastion-lab-test-", dir=home_tmp))
    monkeypatch.setenv("BASTION_LAB_DIR", str(directory))
    try:
        lab = up(2, mode=LabMode.USER)
        assert [(n.address, n.mode) for n in lab] == [("127.0.0.1", LabMode.USER)] * 2
        assert all(n.port > 1024 for n in lab) and lab[0].port != lab[1].port
        done = ssh(lab, "node2", "hostname")
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"{socket.gethostname()}\n"  # no UTS namespace without root
        known = (directory / "known_hosts").read_text()
        assert f"[127.0.0.1]:{lab[1].port} ssh-ed25519 " in known
        assert [n.port for n in up(2, mode=LabMode.USER)] == [n.port for n in lab]
    finally:
        down(directory)
        assert processes_mentioning(directory) == []
        shutil.rmtree(directory)


def test_user_mode_refuses_a_lab_dir_that_strict_modes_rejects(tmp_path: Path) -> None:
    # pytest's tmp_path is under /tmp, world-writable: sshd would refuse every login.
    with pytest.raises(LabError, match="StrictModes"):
        manager.up(1, lab_dir=tmp_path / "lab", mode=LabMode.USER)
    assert processes_mentioning(tmp_path) == []


@pytest.mark.lab
@needs_root
def test_cli_prints_one_line_per_node_and_how_to_use_the_lab(lab_dir: Path) -> None:
    runner = CliRunner()
    started = runner.invoke(lab_app, ["up", "--nodes", "2", "--subnet", SUBNET])
    assert started.exit_code == 0, started.output
    lines = started.output.splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["node1", "started"], ["node2", "started"]]
    assert f"{SUBNET}.2:22" in lines[1]
    assert lines[-1] == "lab up: 2 nodes; try: bastion run -i lab --all hostname"
    again = runner.invoke(lab_app, ["up", "--nodes", "1", "--subnet", SUBNET])
    assert again.output.splitlines()[:2] == [
        "node2    removed     (not in --nodes 1; was stopped)",
        f"node1    already up  {SUBNET}.1:22  pid {status()[0].pid}",
    ]
    stopped = runner.invoke(lab_app, ["down"])
    assert stopped.output.splitlines()[0] == "node1    stopped"
    assert runner.invoke(lab_app, ["down"]).output == "no lab running\n"
