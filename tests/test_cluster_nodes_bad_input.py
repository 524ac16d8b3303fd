"""`cluster status` reads whatever the control plane prints: nodes, or one clear error.

The shapes below are what a broken or hostile control plane can print instead of
`kubectl get nodes -o json` (issue 17: nine of them were tracebacks).
"""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.cluster.nodes import NodesOutputError, parse_nodes

NODE = {
    "metadata": {"name": "node1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
    "status": {
        "conditions": [{"type": "Ready", "status": "True"}],
        "addresses": [{"type": "InternalIP", "address": "192.168.56.11"}],
        "capacity": {"cpu": "2", "memory": "4014080Ki", "pods": "110"},
        "nodeInfo": {"kubeletVersion": "v1.33.1"},
    },
}


def listing(*items: object) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                       "items": list(items)})  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "[]",  # a list where the List object is expected
        '{"items": {}}',
        '{"items": [[]]}',
        '{"items": [{"metadata": []}]}',
        '{"items": [{"metadata": {"name": 5}}]}',
        '{"items": [{"metadata": {"name": ""}}]}',
        '{"items": [' + "1" * 5000 + "]}",  # a 5,000-digit number
        '{"items": [1e' + "9" * 5000 + "]}",
        "[" * 100_000 + "]" * 100_000,  # deep nesting
        '{"items": ' + "[" * 5000 + "]" * 5000 + "}",
        "not json at all",
        "",
    ],
)
def test_malformed_output_is_one_error(text: str) -> None:
    with pytest.raises(NodesOutputError):
        parse_nodes(text)


def test_wrong_types_inside_a_node_are_skipped_not_fatal() -> None:
    odd = {
        "metadata": {"name": "node2", "labels": ["not", "a", "map"]},
        "status": {
            "conditions": ["Ready", {"type": "Ready", "status": "True"}],
            "addresses": {"type": "InternalIP"},
            "capacity": {"cpu": {"nested": 1}, "pods": 110},
            "nodeInfo": {"kubeletVersion": 1.33},
        },
    }
    first, second = parse_nodes(listing(NODE, odd))
    assert (first.name, first.roles, first.ready, first.internal_ip) == (
        "node1", ("control-plane",), True, "192.168.56.11"
    )  # fmt: skip
    assert (second.name, second.roles, second.ready, second.internal_ip) == ("node2", (), True, "")
    assert second.capacity == {"pods": "110"} and second.version == ""


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_json, st.builds(lambda items: {"items": items}, st.lists(_json, max_size=4))))
def test_any_json_gives_nodes_or_the_error(document: object) -> None:
    with contextlib.suppress(NodesOutputError):  # anything else escaping fails the test
        parse_nodes(json.dumps(document))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_nodes_or_the_error(text: str) -> None:
    with contextlib.suppress(NodesOutputError):
        parse_nodes(text)
