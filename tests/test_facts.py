"""`bastion facts`: the probe's parser (total, bounded), the table, and the real lab."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.facts.collect import HostFactsResult, probe_script
from bastion.facts.parse import MAX_ITEMS, Address, Disk, HostFacts, parse_facts
from bastion.models import HostResult, Status
from bastion.render.facts_table import render_facts_table
from tests.conftest import Cli

SAMPLE = (
    'os_name\t"Debian GNU/Linux 12 (bookworm)"\nos_id\tdebian\nos_version\t"12"\n'
    "hostname\tnode1\nkernel\t6.1.0-27-amd64\narch\tx86_64\ncpus\t4\nmemory_kb\t8138320\n"
    "uptime_s\t273612.45\ndisk\t30830592 4417664 24823740 /\ndisk\t507904 61440 446464 /boot\n"
    "address\tlo inet 127.0.0.1/8\naddress\teth0 inet 10.0.2.15/24\n"
    "address\teth1 inet 192.168.56.11/24\naddress\teth1 inet6 fe80::a00:27ff:fe4e:66a1/64\n"
    "runtime\tcontainerd containerd.io 1.7.25 bcc810d6b9066471b0b6fa75f557a15a1cbf31bb\n"
    "kubelet\tKubernetes v1.33.1\nend\tfacts\n"
)


def test_parse_a_vagrant_node() -> None:
    facts = parse_facts(SAMPLE)
    assert facts == HostFacts(
        os_name="Debian GNU/Linux 12 (bookworm)",
        os_id="debian",
        os_version="12",
        hostname="node1",
        kernel="6.1.0-27-amd64",
        arch="x86_64",
        cpus=4,
        memory_kb=8138320,
        uptime_s=273612,
        disks=[Disk("/", 30830592, 4417664, 24823740), Disk("/boot", 507904, 61440, 446464)],
        addresses=[
            Address("lo", "inet", "127.0.0.1/8"),
            Address("eth0", "inet", "10.0.2.15/24"),
            Address("eth1", "inet", "192.168.56.11/24"),
            Address("eth1", "inet6", "fe80::a00:27ff:fe4e:66a1/64"),
        ],
        runtimes=["containerd 1.7.25"],
        kubelet="v1.33.1",
        complete=True,
    )


def test_a_cut_probe_is_incomplete_and_bad_values_are_dropped() -> None:
    facts = parse_facts("cpus\t4²\nmemory_kb\t" + "9" * 5000 + "\ndisk\t1 2\nkernel\t6.1\n")
    assert (facts.cpus, facts.memory_kb, facts.disks, facts.kernel) == (None, None, [], "6.1")
    assert not facts.complete


def test_lists_and_values_are_bounded() -> None:
    facts = parse_facts("address\teth0 inet 10.0.0.1/8\n" * 10_000 + "os_name\t" + "x" * 100_000)
    assert len(facts.addresses) == MAX_ITEMS
    assert facts.os_name is not None and len(facts.os_name) <= 512


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_any_output_parses(text: str) -> None:
    parse_facts(text.replace("|", "\t").replace("~", "\n"))


def test_the_table_shows_hostile_values_visibly_and_says_who_failed() -> None:
    hostile = parse_facts("os_name\tevil\x1b]52;c;Y3VybCBldmls\x07 OS\nkernel\t6.1\r\nend\tfacts\n")
    ok = HostResult(host="node1", address="10.0.0.1", status=Status.OK)
    down = HostResult(
        host="node2", address="10.0.0.2", status=Status.UNREACHABLE, error="connection refused"
    )
    table = render_facts_table([HostFactsResult(ok, hostile), HostFactsResult(down, None)])
    assert "\x1b" not in table and "\x07" not in table
    width = len("(unreachable: connection refused)")
    assert table.splitlines() == [
        "HOST   " + "OS".ljust(width) + "  KERNEL",
        "node1  " + "evil^[]52;c;Y3VybCBldmls^G OS".ljust(width) + "  6.1",
        "node2  (unreachable: connection refused)",
    ]


@pytest.mark.skipif(shutil.which("sh") is None, reason="no sh")
def test_the_probe_runs_here_and_reports_this_machine() -> None:
    """The probe itself, run by a local POSIX sh (dash on Debian), as a node runs it."""
    done = subprocess.run(["sh", "-s"], input=probe_script(), capture_output=True, check=True)
    facts = parse_facts(done.stdout.decode())
    assert facts.complete
    assert facts.kernel == platform.release()
    assert facts.arch == platform.machine()
    assert facts.cpus == os.cpu_count()
    assert any(disk.mount == "/" for disk in facts.disks)


@pytest.mark.lab
def test_facts_of_the_lab_as_json(lab: Cli) -> None:
    done = lab("facts", "-i", "lab", "--all", "-o", "json")
    assert done.returncode == 0, done.stderr
    records = {record["host"]: record for record in map(json.loads, done.stdout.splitlines())}
    assert set(records) == {"node1", "node2", "node3"}
    for name, record in records.items():
        facts = record["facts"]
        assert record["status"] == "ok"
        assert facts["complete"] is True
        assert facts["hostname"] == name  # each node has its own UTS namespace
        assert facts["kernel"] == platform.release()
        assert facts["cpus"] == os.cpu_count()
    table = lab("facts", "-i", "lab", "-g", "workers")
    assert table.returncode == 0, table.stderr
    assert [line.split()[0] for line in table.stdout.splitlines()] == ["HOST", "node2", "node3"]
