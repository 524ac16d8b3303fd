"""Choosing hosts with --all, -g, -H, -l and -x against a lab-like inventory."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.errors import SelectionError
from bastion.inventory import Inventory, load_inventory
from bastion.select import Selection, select_hosts

LAB = """\
hosts:
  node1:
    labels: {role: control-plane, env: training}
  node[2-3]:
    labels: {role: worker, env: training}
  gpu1:
    labels: {role: worker, env: training, gpu: "true"}
groups:
  masters: [node1]
  workers: {selector: "role=worker"}
  nodes: ["node*"]
  spot: {selector: "spot"}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    path = tmp_path_factory.mktemp("select") / "inventory.yaml"
    path.write_text(LAB, encoding="utf-8")
    return load_inventory(path)


def names(inventory: Inventory, selection: Selection) -> list[str]:
    return [host.name for host in select_hosts(inventory, selection)]


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (Selection(all=True), ["node1", "node2", "node3", "gpu1"]),
        (Selection(groups=("workers",)), ["node2", "node3", "gpu1"]),
        (Selection(groups=("masters", "workers")), ["node1", "node2", "node3", "gpu1"]),
        (Selection(groups=("masters,nodes",)), ["node1", "node2", "node3"]),
        (Selection(groups=("@masters",)), ["node1"]),
        (Selection(hosts=("node3,node1",)), ["node1", "node3"]),
        (Selection(hosts=("node[1-2]",)), ["node1", "node2"]),
        (Selection(hosts=("node*",)), ["node1", "node2", "node3"]),
        (Selection(hosts=("*1",)), ["node1", "gpu1"]),
        (Selection(hosts=("node?", "gpu1")), ["node1", "node2", "node3", "gpu1"]),
        (Selection(hosts=("@masters,gpu1",)), ["node1", "gpu1"]),
        (Selection(hosts=("node1",), groups=("masters",)), ["node1"]),
        (Selection(selector="role=worker"), ["node2", "node3", "gpu1"]),
        (Selection(selector="role in (worker),!gpu"), ["node2", "node3"]),
        (Selection(groups=("workers",), selector="gpu"), ["gpu1"]),
        (Selection(all=True, selector="role!=worker"), ["node1"]),
        (Selection(hosts=("node1",), selector="env=training"), ["node1"]),
        (Selection(all=True, exclude=("node3",)), ["node1", "node2", "gpu1"]),
        (Selection(all=True, exclude=("node[2-3]", "gpu*")), ["node1"]),
        (Selection(all=True, exclude=("@workers",)), ["node1"]),
        (
            Selection(groups=("workers",), selector="role=worker", exclude=("node3",)),
            ["node2", "gpu1"],
        ),
        # Excluding a known host that was not selected anyway is fine.
        (Selection(groups=("masters",), exclude=("node2",)), ["node1"]),
        (Selection(selector="env=training", exclude=("@masters",)), ["node2", "node3", "gpu1"]),
    ],
)
def test_select_hosts(lab: Inventory, selection: Selection, expected: list[str]) -> None:
    assert names(lab, selection) == expected


def test_selection_returns_the_inventory_hosts(lab: Inventory) -> None:
    assert select_hosts(lab, Selection(hosts=("node2",))) == [lab.hosts["node2"]]


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (
            Selection(),
            "no hosts chosen: give --all, -g GROUP, -H PATTERN or -l SELECTOR "
            "(inventory has gpu1,node[1-3])",
        ),
        (
            Selection(exclude=("node1",)),
            "no hosts chosen: give --all, -g GROUP, -H PATTERN or -l SELECTOR "
            "(inventory has gpu1,node[1-3])",
        ),
        (
            Selection(hosts=("node9",)),
            "-H: unknown host 'node9' (inventory has gpu1,node[1-3]"
            "; a host outside it is written user@host, host:port or host.domain)",
        ),
        (
            Selection(hosts=("node[1-5]",)),
            "-H: unknown hosts node[4-5] (inventory has gpu1,node[1-3]"
            "; a host outside it is written user@host, host:port or host.domain)",
        ),
        (
            Selection(hosts=("db*",)),
            "-H: pattern 'db*' matches no host (inventory has gpu1,node[1-3])",
        ),
        (
            Selection(hosts=("node[3-1]",)),
            "-H: bad host pattern 'node[3-1]': range '3-1' goes backwards",
        ),
        (Selection(hosts=(" , ",)), "-H: empty host pattern"),
        (Selection(groups=("",)), "-g: empty group name"),
        (
            Selection(hosts=("@db",)),
            "-H: unknown group 'db' (known groups: masters, workers, nodes, spot)",
        ),
        (
            Selection(groups=("db",)),
            "-g: unknown group 'db' (known groups: masters, workers, nodes, spot)",
        ),
        (
            Selection(groups=("spot",)),
            "-g: the chosen groups have no hosts (-g spot)",
        ),
        (
            Selection(hosts=("@spot",)),
            "-H: the chosen groups have no hosts (-H @spot)",
        ),
        (
            Selection(selector="role=db"),
            "-l: selector 'role=db' matched none of gpu1,node[1-3]",
        ),
        (
            Selection(groups=("masters",), selector="role=worker"),
            "-l: selector 'role=worker' matched none of node1",
        ),
        (
            Selection(all=True, selector="role worker"),
            "-l: bad selector 'role worker': found 'worker', expected: in, notin, =, ==, !=, >, <",
        ),
        (
            Selection(all=True, exclude=("node9",)),
            "-x: unknown host 'node9' (inventory has gpu1,node[1-3])",
        ),
        (
            Selection(groups=("workers",), exclude=("@workers",)),
            "-x: excluding @workers removes every selected host (gpu1,node[2-3])",
        ),
        (
            Selection(hosts=("node1",), exclude=("node*", "gpu1")),
            "-x: excluding node*, gpu1 removes every selected host (node1)",
        ),
    ],
)
def test_selection_errors(lab: Inventory, selection: Selection, message: str) -> None:
    with pytest.raises(SelectionError) as caught:
        select_hosts(lab, selection)
    assert str(caught.value) == message


def test_unknown_group_in_an_inventory_without_groups(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("hosts: {node1: }\n", encoding="utf-8")
    with pytest.raises(SelectionError) as caught:
        select_hosts(load_inventory(path), Selection(groups=("workers",)))
    assert str(caught.value) == (
        "-g: unknown group 'workers' (known groups: none: the inventory defines no groups)"
    )


@pytest.mark.parametrize(
    ("selection", "described"),
    [
        (Selection(), ""),
        (Selection(all=True), "--all"),
        (
            Selection(all=True, selector="role=worker", exclude=("node3",)),
            "--all -l role=worker -x node3",
        ),
        (Selection(groups=("workers", "masters")), "-g workers -g masters"),
        (Selection(hosts=("node[1-2]",)), "-H 'node[1-2]'"),
        (Selection(selector="role in (worker),!gpu"), "-l 'role in (worker),!gpu'"),
        (Selection(hosts=("node*",), exclude=("@masters",)), "-H 'node*' -x @masters"),
    ],
)
def test_describe(selection: Selection, described: str) -> None:
    assert selection.describe() == described


@pytest.mark.parametrize(
    ("selection", "empty"),
    [
        (Selection(), True),
        (Selection(exclude=("node1",)), True),
        (Selection(all=True), False),
        (Selection(groups=("g",)), False),
        (Selection(hosts=("h",)), False),
        (Selection(selector=""), False),
    ],
)
def test_is_empty(selection: Selection, empty: bool) -> None:
    assert selection.is_empty() is empty


_patterns = st.sampled_from(
    ["node1", "node2", "node3", "gpu1", "node*", "node[1-2]", "@masters", "@workers"]
)
_selections = st.builds(
    Selection,
    all=st.booleans(),
    groups=st.lists(st.sampled_from(["masters", "workers", "nodes"]), max_size=2).map(tuple),
    hosts=st.lists(_patterns, max_size=2).map(tuple),
    selector=st.sampled_from([None, "role=worker", "!gpu", "env=training", "role notin (db)"]),
    exclude=st.lists(_patterns, max_size=2).map(tuple),
)


@given(_selections)
def test_selection_laws(lab: Inventory, selection: Selection) -> None:
    """Whatever is chosen: inventory order, no duplicates, -l holds, nothing excluded remains."""
    try:
        chosen = select_hosts(lab, selection)
    except SelectionError:
        return
    order = list(lab.hosts)
    positions = [order.index(host.name) for host in chosen]
    assert positions == sorted(set(positions))
    assert chosen
    chosen_names = {host.name for host in chosen}
    if selection.selector is not None:
        assert chosen_names <= set(names(lab, Selection(selector=selection.selector)))
    if selection.exclude:
        assert not chosen_names & set(names(lab, Selection(hosts=selection.exclude)))
