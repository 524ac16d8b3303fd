"""Host-set algebra (ClusterShell's ``,&!^``), --pick, --list-hosts and plain listings."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bastion.errors import SelectionError
from bastion.hostset import split_operations
from bastion.inventory import Inventory, load_inventory
from bastion.select import Selection, select_hosts
from tests.conftest import BASTION, REPO
from tests.test_hostset_oracles import SYSTEM_PYTHON, _clustershell_missing

INVENTORY = """\
hosts:
  node[1-6]: {address: '192.0.2.[1-6]'}
groups:
  masters: [node1]
  workers: ['node[2-6]']
  gpu: [node2, node5, node6]
  spot: [node6]
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY)
    return load_inventory(path)


def names(inventory: Inventory, selection: Selection) -> list[str]:
    return [host.name for host in select_hosts(inventory, selection)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("node[1-6]!node[2-3]", ["node1", "node4", "node5", "node6"]),
        ("node[1-4]&node[3-6]", ["node3", "node4"]),
        ("node[1-3]^node[2-4]", ["node1", "node4"]),
        ("@workers&@gpu!@spot", ["node2", "node5"]),
        ("@gpu,node1!node5", ["node1", "node2", "node6"]),
    ],
)
def test_host_sets_combine_left_to_right(
    inventory: Inventory, text: str, expected: list[str]
) -> None:
    assert names(inventory, Selection(hosts=(text,))) == expected


def test_group_expressions(inventory: Inventory) -> None:
    assert names(inventory, Selection(groups=("workers&gpu",))) == ["node2", "node5", "node6"]
    assert names(inventory, Selection(groups=("workers!gpu",))) == ["node3", "node4"]
    assert names(inventory, Selection(groups=("masters,spot",))) == ["node1", "node6"]


@pytest.mark.parametrize("text", ["!node1", "node1&", "node1!,node2"])
def test_an_operator_without_an_operand_is_an_error(inventory: Inventory, text: str) -> None:
    with pytest.raises(SelectionError, match="bad host set"):
        select_hosts(inventory, Selection(hosts=(text,)))


def test_the_same_sets_as_clustershell() -> None:
    """Each expression evaluates to the names ClusterShell's NodeSet gives for it."""
    reason = _clustershell_missing()
    if reason:
        pytest.skip(reason)
    cases = [
        "n[1-20]!n[5-9]&n[1-12]",
        "n[1-5]^n[3-8],n[20-21]",
        "a[1-3],b[1-2]&b2,a[1-3]",
        "n[1-9]!n[2-8]^n5",
    ]
    script = (
        "import sys\nfrom ClusterShell.NodeSet import NodeSet\n"
        "for line in sys.stdin: print(','.join(NodeSet(line.strip())))"
    )
    done = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", script], input="\n".join(cases) + "\n",
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    theirs = [set(line.split(",")) - {""} for line in done.stdout.splitlines()]
    from bastion.hostset import combine, expand_all

    ours = []
    for case in cases:
        result: dict[str, None] = {}
        for operator, item in split_operations(case):
            result = combine(result, operator, dict.fromkeys(expand_all(item)))
        ours.append(set(result))
    assert ours == theirs


def test_pick_keeps_n_random_hosts_in_inventory_order(inventory: Inventory) -> None:
    seen: set[tuple[str, ...]] = set()
    for _ in range(40):
        picked = names(inventory, Selection(groups=("workers",), pick=2))
        assert len(picked) == 2
        assert set(picked) <= {"node2", "node3", "node4", "node5", "node6"}
        assert picked == sorted(picked)
        seen.add(tuple(picked))
    assert len(seen) > 1
    assert names(inventory, Selection(all=True, pick=10)) == [f"node{n}" for n in range(1, 7)]


def plain_env(home: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "HOME": str(home),
        "BASTION_CONFIG": "none",
    }


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    return subprocess.run(
        [*BASTION, *args],
        cwd=tmp_path,
        env=plain_env(tmp_path),
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_list_hosts_prints_the_targets_and_runs_nothing(tmp_path: Path) -> None:
    # The inventory's addresses are documentation addresses: nothing may try to reach them.
    done = cli(tmp_path, "run", "-g", "workers&gpu", "--list-hosts", "swapoff", "-a")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "node2\nnode5\nnode6\n"
    assert done.stderr == "bastion: would run 'swapoff -a' on 3 hosts: node[2,5-6]\n"


def test_inventory_list_into_a_pipe_is_whole_and_names_only_works(tmp_path: Path) -> None:
    long_label = "x" * 60
    (tmp_path / "inventory.yaml").write_text(
        f"hosts:\n  web1: {{address: 192.0.2.1, labels: {{team: {long_label}}}}}\n"
    )
    done = subprocess.run(
        [*BASTION, "inventory", "list"], cwd=tmp_path,
        env=plain_env(tmp_path),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "HOST  ADDRESS    USER  LABELS" + " " * (len(long_label) + 1) + "GROUPS",
        f"web1  192.0.2.1        team={long_label}",
    ]
    names_only = cli(tmp_path, "inventory", "list", "--names", "-g", "gpu")
    assert names_only.stdout == "node2\nnode5\nnode6\n"
