"""`bastion lab fault`: the iptables rules it writes, then their effect on real sshd nodes."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from bastion.errors import UsageError
from bastion.lab.faults import Fault, FaultKind, fault_rules, lab_tag, node_tag
from tests.conftest import TEST_NET, Cli, cli_env, is_root
from tests.faults import lab_fault

needs_iptables = pytest.mark.skipif(
    not is_root() or shutil.which("iptables") is None, reason="faults need root and iptables"
)

TAG = "bastion-lab:0123456789ab:node3"


# --- units: the rules, no iptables -------------------------------------------------------


def test_loss_drops_a_share_of_packets_each_way() -> None:
    rules = fault_rules("127.0.3.3", Fault(FaultKind.LOSS, loss_percent=30), TAG)
    statistic = ["-m", "statistic", "--mode", "random", "--probability", "0.3000"]
    comment = ["-m", "comment", "--comment", TAG, "-j", "DROP"]
    assert rules == [
        ["-d", "127.0.3.3/32", *statistic, *comment],
        ["-s", "127.0.3.3/32", *statistic, *comment],
    ]


def test_blackhole_on_one_port_matches_tcp_both_ways() -> None:
    rules = fault_rules("127.0.3.2", Fault(FaultKind.BLACKHOLE, port=22), TAG)
    assert rules == [
        ["-d", "127.0.3.2/32", "-p", "tcp", "--dport", "22", "-m", "comment", "--comment", TAG,
         "-j", "DROP"],
        ["-s", "127.0.3.2/32", "-p", "tcp", "--sport", "22", "-m", "comment", "--comment", TAG,
         "-j", "DROP"],
    ]  # fmt: skip


def test_reset_answers_tcp_with_resets() -> None:
    rules = fault_rules("127.0.3.1", Fault(FaultKind.RESET), TAG)
    assert all(rule[-4:] == ["-j", "REJECT", "--reject-with", "tcp-reset"] for rule in rules)
    assert all(rule[2:4] == ["-p", "tcp"] for rule in rules)
    # The resets themselves pass, else the reset would be a silent blackhole.
    assert all(rule[4:8] == ["!", "--tcp-flags", "RST", "RST"] for rule in rules)


@pytest.mark.parametrize("address", ["10.0.0.1", "192.0.2.1"])
def test_only_loopback_addresses_get_faults(address: str) -> None:
    with pytest.raises(UsageError, match="loopback addresses only"):
        fault_rules(address, Fault(FaultKind.BLACKHOLE), TAG)


def test_loss_is_a_percentage() -> None:
    with pytest.raises(UsageError, match="--loss"):
        fault_rules("127.0.3.1", Fault(FaultKind.LOSS, loss_percent=130), TAG)


def test_tags_name_the_lab_and_the_node(tmp_path: Path) -> None:
    assert node_tag(tmp_path / "a", "node1").startswith(lab_tag(tmp_path / "a") + ":")
    assert lab_tag(tmp_path / "a") != lab_tag(tmp_path / "b")


# --- the CLI against the real lab ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of --loss PCT, --blackhole, --reset, --clear"),
        (["--loss", "30", "--blackhole"], "give exactly one of"),
        (["--clear", "--port", "22"], "--clear removes the whole fault"),
    ],
)
def test_fault_usage_errors_are_one_line_and_exit_2(
    lab: Cli, args: list[str], message: str
) -> None:
    done = lab("lab", "fault", "node1", *args)
    assert done.returncode == 2
    assert done.stderr == f"bastion: error: {message}\n" or message in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_node_is_named(lab: Cli) -> None:
    done = lab("lab", "fault", "node9", "--blackhole")
    assert done.returncode == 2
    assert done.stderr == (
        "bastion: error: NODE: the lab has no node 'node9' (nodes: node1, node2, node3)\n"
    )


def connect_seconds(cli: Cli, node: str) -> tuple[int, float, str]:
    started = time.monotonic()
    done = cli("run", "-i", "lab", "-H", node, "--connect-timeout", "1.5", "--retries", "0", "true")
    return done.returncode, time.monotonic() - started, done.stderr


@pytest.mark.lab
@needs_iptables
def test_blackhole_hangs_reset_refuses_and_clear_restores(lab: Cli) -> None:
    with lab_fault(lab, "node1", "--blackhole", "--port", "22"):
        code, _, stderr = connect_seconds(lab, "node1")
        assert code == 3
        assert "connect timed out after 1.5s" in stderr
        other = lab("run", "-i", "lab", "-H", "node2", "true")
        assert other.returncode == 0, "a fault on node1 must not touch node2"
    with lab_fault(lab, "node1", "--reset"):
        code, seconds, stderr = connect_seconds(lab, "node1")
        assert code == 3
        assert "connection refused by" in stderr
        assert seconds < 5
    code, _, stderr = connect_seconds(lab, "node1")
    assert code == 0, stderr


@pytest.mark.lab
@needs_iptables
def test_a_new_fault_replaces_the_old_one(lab: Cli) -> None:
    lab_dir = Path(lab.env["BASTION_LAB_DIR"])
    tag = node_tag(lab_dir, "node2")
    with lab_fault(lab, "node2", "--loss", "10"):
        assert lab("lab", "fault", "node2", "--blackhole").returncode == 0
        rules = [r for r in iptables_rules() if tag in r]
        assert len(rules) == 2
        assert all("statistic" not in r for r in rules)
    assert [r for r in iptables_rules() if tag in r] == []


def iptables_rules() -> list[str]:
    return subprocess.run(
        ["iptables", "-w", "-S", "INPUT"], capture_output=True, text=True, check=True
    ).stdout.splitlines()


@pytest.mark.lab
@needs_iptables
def test_lab_down_clears_its_rules_and_nothing_else(tmp_path: Path) -> None:
    subnet = f"127.{TEST_NET}.5"
    cli = Cli(cli_env(tmp_path, tmp_path / "lab"), cwd=tmp_path)
    tag = lab_tag(tmp_path / "lab")
    foreign = ["-d", f"{subnet}.1/32", "-m", "comment", "--comment", "not-bastion", "-j", "DROP"]
    foreign_added = False
    try:
        assert cli("lab", "up", "--nodes", "2", "--subnet", subnet).returncode == 0
        # Someone else's rule on the same address: down must leave it alone.
        subprocess.run(["iptables", "-w", "-I", "INPUT", *foreign], check=True)
        foreign_added = True
        assert cli("lab", "fault", "node1", "--loss", "50").returncode == 0
        assert cli("lab", "fault", "node2", "--blackhole").returncode == 0
        assert len([r for r in iptables_rules() if tag in r]) == 4
        down = cli("lab", "down")
        assert down.returncode == 0, down.stderr
        assert [r for r in iptables_rules() if tag in r] == []
        assert [r for r in iptables_rules() if "not-bastion" in r and subnet in r]
    finally:
        cli("lab", "down")
        if foreign_added:
            subprocess.run(["iptables", "-w", "-D", "INPUT", *foreign], check=True)
