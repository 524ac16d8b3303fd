"""Kubernetes' own label-selector test cases, replayed against bastion.selector.

Transcribed from kubernetes/kubernetes, staging/src/k8s.io/apimachinery/pkg/labels/
selector_test.go (commit 86b3ca48ea108bf601e7dac30684ca9b1308c488): TestSelectorParse,
TestSelectorMatches, TestSetSelectorParser, TestRequirementConstructor (keys and Gt/Lt values)
and TestRequirementSelectorMatching. Expected results are upstream's, unchanged; where
upstream compares Go structures, the test compares the same requirements here.
"""

from __future__ import annotations

import pytest

from bastion.errors import SelectionError
from bastion.selector import (
    Operator,
    Requirement,
    Selector,
    label_key_problem,
    parse_selector,
)

Op = Operator

# TestSelectorParse: each good string parses, and prints back as itself without spaces.
GOOD = ["x=a,y=b,z=c", "", "x!=a,y=b", "x=", "x= ", "x=,z= ", "x= ,z= ", "!x", "x>1", "x>1,z<5"]
BAD = ["x=a||y=b", "x==a==b", "!x=a", "x<a"]


@pytest.mark.parametrize("text", GOOD)
def test_selector_parse_good(text: str) -> None:
    assert str(parse_selector(text)) == text.replace(" ", "")


@pytest.mark.parametrize("text", BAD)
def test_selector_parse_bad(text: str) -> None:
    with pytest.raises(SelectionError):
        parse_selector(text)


def test_deterministic_parse() -> None:
    assert str(parse_selector("x=a,a=x")) == str(parse_selector("a=x,x=a"))


LABELSET = {"foo": "bar", "baz": "blah"}
# TestSelectorMatches: (selector, labels, expected).
MATCHES: list[tuple[str, dict[str, str], bool]] = [
    ("", {"x": "y"}, True),
    ("x=y", {"x": "y"}, True),
    ("x=y,z=w", {"x": "y", "z": "w"}, True),
    ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
    ("notin=in", {"notin": "in"}, True),
    ("x", {"x": "z"}, True),
    ("!x", {"y": "z"}, True),
    ("x>1", {"x": "2"}, True),
    ("x<1", {"x": "0"}, True),
    ("x=z", {}, False),
    ("x=y", {"x": "z"}, False),
    ("x=y,z=w", {"x": "w", "z": "w"}, False),
    ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
    ("x", {"y": "z"}, False),
    ("!x", {"x": "z"}, False),
    ("x>1", {"x": "0"}, False),
    ("x<1", {"x": "2"}, False),
    ("foo=bar", LABELSET, True),
    ("baz=blah", LABELSET, True),
    ("foo=bar,baz=blah", LABELSET, True),
    ("foo=blah", LABELSET, False),
    ("baz=bar", LABELSET, False),
    ("foo=bar,foobar=bar,baz=blah", LABELSET, False),
]


@pytest.mark.parametrize(("text", "labels", "expected"), MATCHES)
def test_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


def _r(key: str, operator: Operator, *values: str) -> Requirement:
    return Requirement(key, operator, tuple(sorted(set(values))))


# TestSetSelectorParser: (input, expected requirements or None when upstream only checks
# validity, valid).
SET_PARSER: list[tuple[str, list[Requirement] | None, bool]] = [
    ("", [], True),
    ("\rx", [_r("x", Op.EXISTS)], True),
    (
        "this-is-a-dns.domain.com/key-with-dash",
        [_r("this-is-a-dns.domain.com/key-with-dash", Op.EXISTS)],
        True,
    ),
    (
        "this-is-another-dns.domain.com/key-with-dash in (so,what)",
        [_r("this-is-another-dns.domain.com/key-with-dash", Op.IN, "so", "what")],
        True,
    ),
    (
        "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
        [_r("0.1.2.domain/99", Op.NOT_IN, "10.10.100.1", "tick.tack.clock")],
        True,
    ),
    ("foo  in\t (abc)", [_r("foo", Op.IN, "abc")], True),
    ("x notin\n (abc)", [_r("x", Op.NOT_IN, "abc")], True),
    ("x  notin\t\t\t(abc,def)", [_r("x", Op.NOT_IN, "abc", "def")], True),
    ("x in (abc,def)", [_r("x", Op.IN, "abc", "def")], True),
    ("x in (abc,)", [_r("x", Op.IN, "abc", "")], True),
    ("x in ()", [_r("x", Op.IN, "")], True),
    (
        "x notin (abc,,def),bar,z in (),w",
        [
            _r("bar", Op.EXISTS),
            _r("w", Op.EXISTS),
            _r("x", Op.NOT_IN, "abc", "", "def"),
            _r("z", Op.IN, ""),
        ],
        True,
    ),
    ("x,y in (a)", None, True),
    ("x=a", [_r("x", Op.EQUALS, "a")], True),
    ("x>1", [_r("x", Op.GREATER_THAN, "1")], True),
    ("x<7", [_r("x", Op.LESS_THAN, "7")], True),
    ("x=a,y!=b", [_r("x", Op.EQUALS, "a"), _r("y", Op.NOT_EQUALS, "b")], True),
    (
        "x=a,y!=b,z in (h,i,j)",
        [_r("x", Op.EQUALS, "a"), _r("y", Op.NOT_EQUALS, "b"), _r("z", Op.IN, "h", "i", "j")],
        True,
    ),
    ("x=a||y=b", None, False),
    ("x,,y", None, False),
    (",x,y", None, False),
    ("x nott in (y)", None, False),
    ("x notin ( )", [_r("x", Op.NOT_IN, "")], True),
    ("x notin (, a)", [_r("x", Op.NOT_IN, "", "a")], True),
    ("a in (xyz),", None, False),
    ("a in (xyz)b notin ()", None, False),
    ("a ", [_r("a", Op.EXISTS)], True),
    ("a in (x,y,notin, z,in)", [_r("a", Op.IN, "in", "notin", "x", "y", "z")], True),
    ("a in (xyz abc)", None, False),
    ("a notin(", None, False),
    ("a (", None, False),
    ("(", None, False),
]


@pytest.mark.parametrize(("text", "expected", "valid"), SET_PARSER)
def test_set_selector_parser(text: str, expected: list[Requirement] | None, valid: bool) -> None:
    if not valid:
        with pytest.raises(SelectionError):
            parse_selector(text)
        return
    selector = parse_selector(text)
    if expected is not None:
        assert selector == Selector(tuple(expected))


# TestRequirementConstructor, the cases a parsed selector can express: (key, Gt/Lt value or
# None, success).
CONSTRUCTOR: list[tuple[str, str | None, bool]] = [
    ("x", None, True),
    ("1foo", None, True),
    ("1234", None, True),
    ("y", "1", True),
    ("z", "6", True),
    ("foo", "bar", False),
    ("barz", "blah", False),
    ("a" * 254, None, False),  # upstream: breaks the DNS rule that len(key) <= 253
]


@pytest.mark.parametrize(("key", "number", "success"), CONSTRUCTOR)
def test_requirement_constructor(key: str, number: str | None, success: bool) -> None:
    text = key if number is None else f"{key}>{number}"
    if success:
        parse_selector(text)
        assert label_key_problem(key) is None
    else:
        with pytest.raises(SelectionError):
            parse_selector(text)


# TestRequirementSelectorMatching (the zero Requirement case aside: it cannot be parsed).
REQUIREMENT_MATCHING: list[tuple[dict[str, str], str, bool]] = [
    ({"x": "foo", "y": "baz"}, "x in (foo),y notin (alpha)", True),
    ({"x": "foo", "y": "baz"}, "x in (foo),y in (alpha)", False),
    ({"y": ""}, "x notin (),y", True),
    ({"y": ""}, "!x,y", True),
    ({"y": ""}, "x notin (),!y", False),
    ({"y": "baz"}, "x in ()", False),
    ({"z": "2"}, "z>1", True),
    ({"z": "v2"}, "z>1", False),
]


@pytest.mark.parametrize(("labels", "text", "expected"), REQUIREMENT_MATCHING)
def test_requirement_selector_matching(labels: dict[str, str], text: str, expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


def test_empty_values_select_kubernetes_role_labels() -> None:
    """``node-role.kubernetes.io/control-plane: ""`` is how kubeadm marks control planes."""
    control = {"node-role.kubernetes.io/control-plane": ""}
    assert parse_selector("node-role.kubernetes.io/control-plane").matches(control)
    assert parse_selector("node-role.kubernetes.io/control-plane=").matches(control)
    assert parse_selector("node-role.kubernetes.io/control-plane in ()").matches(control)
    assert not parse_selector("node-role.kubernetes.io/control-plane").matches({})
