"""`bastion cluster`'s pure parts: the control plane, bootstrap variables, node parsing, the
table, and reset's confirmation; no host is contacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.cli.cluster_cmd import confirm_reset
from bastion.cluster.nodes import (
    NodesOutputError,
    capacity_rows,
    parse_nodes,
    status_document,
)
from bastion.cluster.topology import BootstrapSettings, bootstrap_vars, control_plane
from bastion.errors import UsageError
from bastion.inventory import Inventory, load_inventory
from bastion.render.cluster_nodes import render_nodes

REPO = Path(__file__).resolve().parent.parent
CAPACITY = {
    "cpu": "4",
    "ephemeral-storage": "47830060Ki",
    "hugepages-2Mi": "0",
    "memory": "4044596Ki",
    "pods": "110",
}


def node(name: str, *, ready: bool = True, control_plane: bool = False) -> dict[str, object]:
    labels = {"kubernetes.io/hostname": name}
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
    return {
        "metadata": {"name": name, "labels": labels},
        "status": {
            "capacity": CAPACITY,
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True" if ready else "False"},
            ],
            "addresses": [{"type": "InternalIP", "address": f"192.168.56.1{name[-1]}"}],
            "nodeInfo": {"kubeletVersion": "v1.33.4"},
        },
    }


NODES_JSON = json.dumps(
    {
        "kind": "List",
        "items": [node("node1", control_plane=True), node("node2"), node("node3", ready=False)],
    }
)


def test_the_control_plane_is_the_first_master_else_the_labelled_host(tmp_path: Path) -> None:
    vagrant = load_inventory(REPO / "inventories" / "vagrant.yaml")
    assert control_plane(vagrant).name == "node1"
    labelled = load_inventory_text(
        tmp_path,
        "hosts:\n  a: {address: 127.0.0.2}\n"
        "  b: {address: 127.0.0.3, labels: {role: control-plane}}\n",
    )
    assert control_plane(labelled).name == "b"
    none = load_inventory_text(tmp_path, "hosts:\n  a: {address: 127.0.0.2}\n")
    with pytest.raises(UsageError, match="no control plane") as caught:
        control_plane(none)
    assert str(tmp_path / "inv.yaml") in str(caught.value)


def load_inventory_text(tmp_path: Path, text: str) -> Inventory:
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    return load_inventory(path)


def test_bootstrap_vars_check_cni_version_and_pod_cidr() -> None:
    vagrant = load_inventory(REPO / "inventories" / "vagrant.yaml")
    assert bootstrap_vars(BootstrapSettings("calico", "1.33"), vagrant) == {
        "cni": "calico",
        "k8s_version": "1.33",
        "pod_cidr": "10.244.0.0/16",
        "control_plane": "node1",
    }
    with pytest.raises(UsageError, match="--cni"):
        bootstrap_vars(BootstrapSettings("cilium", "1.33"), vagrant)
    for version in ("1.33.4", "v1.33", "2.0"):
        with pytest.raises(UsageError, match="--k8s-version"):
            bootstrap_vars(BootstrapSettings("weave", version), vagrant)
    # Calico's example range covers Vagrant's host-only network: refused, naming the node.
    with pytest.raises(UsageError, match=r"node1's address 192\.168\.56\.11"):
        bootstrap_vars(BootstrapSettings("calico", "1.33", "192.168.0.0/16"), vagrant)
    with pytest.raises(UsageError, match="--pod-cidr"):
        bootstrap_vars(BootstrapSettings("calico", "1.33", "10.244.0.1/16"), vagrant)


def test_nodes_parse_into_roles_ready_versions_and_capacity() -> None:
    nodes = parse_nodes(NODES_JSON)
    assert [(n.name, n.roles, n.ready) for n in nodes] == [
        ("node1", ("control-plane",), True),
        ("node2", (), True),
        ("node3", (), False),
    ]
    assert nodes[1].internal_ip == "192.168.56.12"
    assert nodes[0].version == "v1.33.4"


def test_capacity_rows_are_the_seeds_jq_output() -> None:
    # jq '.items[] | {name: .metadata.name} + .status.capacity' on the same input.
    assert capacity_rows(parse_nodes(NODES_JSON))[0] == {"name": "node1", **CAPACITY}


def test_status_document_counts_ready_nodes() -> None:
    document = status_document(parse_nodes(NODES_JSON), "node1")
    assert (document["ready"], document["total"], document["control_plane"]) == (2, 3, "node1")
    assert document["nodes"][2]["capacity"]["memory"] == "4044596Ki"
    json.dumps(document)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ('{"kind": "Status"}', "no 'items'"),
        ('{"items": [{"metadata": {}}]}', "item 0 has no metadata.name"),
        ('{"items": [3]}', "item 0 is not an object"),
    ],
)
def test_output_that_is_not_a_node_list_is_named(text: str, message: str) -> None:
    with pytest.raises(NodesOutputError, match=message):
        parse_nodes(text)


def test_the_table_has_one_row_per_node_and_a_verdict() -> None:
    text = render_nodes(parse_nodes(NODES_JSON), "node1", width=120)
    lines = text.splitlines()
    assert lines[0].split() == [
        "NODE", "ROLES", "READY", "VERSION", "INTERNAL-IP",
        "CPU", "MEMORY", "PODS", "EPHEMERAL-STORAGE",
    ]  # fmt: skip
    assert lines[3].split() == [
        "node3", "<none>", "NotReady", "v1.33.4", "192.168.56.13",
        "4", "4044596Ki", "110", "47830060Ki",
    ]  # fmt: skip
    assert lines[-1] == "2/3 nodes Ready (control plane node1)"
    assert "\x1b[" not in text
    assert "\x1b[" in render_nodes(parse_nodes(NODES_JSON), "node1", color=True)


def test_reset_goes_on_with_yes_and_refuses_without_a_terminal() -> None:
    vagrant = load_inventory(REPO / "inventories" / "vagrant.yaml")
    confirm_reset(vagrant, yes=True, interactive=False)
    with pytest.raises(UsageError, match="without --yes") as caught:
        confirm_reset(vagrant, yes=False, interactive=False)
    assert caught.value.exit_code == 2


def test_reset_on_a_terminal_asks_and_stops_on_no(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    vagrant = load_inventory(REPO / "inventories" / "vagrant.yaml")
    asked: list[str] = []

    def answer(reply: bool) -> None:
        def confirm(text: str) -> bool:
            asked.append(text)
            return reply

        monkeypatch.setattr(typer, "confirm", confirm)

    answer(True)
    confirm_reset(vagrant, yes=False, interactive=True)
    assert asked == ["Reset the Kubernetes cluster on node1, node2, node3? Its data is lost"]
    answer(False)
    with pytest.raises(typer.Exit) as stopped:
        confirm_reset(vagrant, yes=False, interactive=True)
    assert stopped.value.exit_code == 1
