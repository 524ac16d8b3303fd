"""The kubectl label-selector grammar: parsing, printing and matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.errors import SelectionError
from bastion.selector import (
    Operator,
    Requirement,
    Selector,
    label_key_problem,
    label_value_problem,
    parse_selector,
)

R = Requirement
Op = Operator


@pytest.mark.parametrize(
    ("text", "requirements", "canonical"),
    [
        ("role=worker", [R("role", Op.EQUALS, ("worker",))], "role=worker"),
        ("role==worker", [R("role", Op.DOUBLE_EQUALS, ("worker",))], "role==worker"),
        ("role != worker", [R("role", Op.NOT_EQUALS, ("worker",))], "role!=worker"),
        ("gpu", [R("gpu", Op.EXISTS)], "gpu"),
        ("!gpu", [R("gpu", Op.NOT_EXISTS)], "!gpu"),
        ("! gpu", [R("gpu", Op.NOT_EXISTS)], "!gpu"),
        ("role in (worker,db)", [R("role", Op.IN, ("db", "worker"))], "role in (db,worker)"),
        ("role in( worker , db )", [R("role", Op.IN, ("db", "worker"))], "role in (db,worker)"),
        ("env notin (prod)", [R("env", Op.NOT_IN, ("prod",))], "env notin (prod)"),
        ("in in (in)", [R("in", Op.IN, ("in",))], "in in (in)"),
        ("role=", [R("role", Op.EQUALS, ("",))], "role="),
        ("role in ()", [R("role", Op.IN, ("",))], "role in ()"),
        ("rack>3", [R("rack", Op.GREATER_THAN, ("3",))], "rack>3"),
        (
            "role in (worker),!gpu",
            [R("gpu", Op.NOT_EXISTS), R("role", Op.IN, ("worker",))],
            "!gpu,role in (worker)",
        ),
        (
            " role=worker , env!=prod,tier ",
            [
                R("env", Op.NOT_EQUALS, ("prod",)),
                R("role", Op.EQUALS, ("worker",)),
                R("tier", Op.EXISTS),
            ],
            "env!=prod,role=worker,tier",
        ),
        (
            "node-role.kubernetes.io/control-plane",
            [R("node-role.kubernetes.io/control-plane", Op.EXISTS)],
            "node-role.kubernetes.io/control-plane",
        ),
    ],
)
def test_parse_selector(text: str, requirements: list[Requirement], canonical: str) -> None:
    selector = parse_selector(text)
    assert selector == Selector(tuple(requirements))
    assert str(selector) == canonical
    assert parse_selector(canonical) == selector


def test_an_empty_selector_selects_everything() -> None:
    assert parse_selector("") == Selector(())
    assert parse_selector("  ").matches({"a": "b"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "role=worker,",
            "-l: bad selector 'role=worker,': found 'end of string', expected: identifier",
        ),
        ("a,,b", "-l: bad selector 'a,,b': found ',', expected: identifier"),
        (
            "role worker",
            "-l: bad selector 'role worker': found 'worker', expected: in, notin, =, ==, !=, >, <",
        ),
        (
            "=worker",
            "-l: bad selector '=worker': found '=', expected: !, identifier, or end of string",
        ),
        ("a=b=c", "-l: bad selector 'a=b=c': found '=', expected: ',' or end of string"),
        ("!a=b", "-l: bad selector '!a=b': found '=', expected: in, notin, =, ==, !=, >, <"),
        ("role>x", "-l: bad selector 'role>x': role>x: the value must be an integer"),
        (
            "role in (a",
            "-l: bad selector 'role in (a': found 'end of string', expected: ',' or ')'",
        ),
        ("role)", "-l: bad selector 'role)': found ')', expected: in, notin, =, ==, !=, >, <"),
        ("role in (a b)", "-l: bad selector 'role in (a b)': found 'b', expected: ',' or ')'"),
        (
            "a b=c",
            "-l: bad selector 'a b=c': found 'b', expected: in, notin, =, ==, !=, >, <",
        ),
        (
            "Role/x=y",
            "-l: bad selector 'Role/x=y': invalid label key 'Role/x': prefix part must be a "
            "lowercase DNS subdomain, such as example.com",
        ),
        (
            "role=a/b",
            "-l: bad selector 'role=a/b': invalid label value 'a/b' for 'role': must be empty, "
            "or consist of alphanumerics, '-', '_' or '.', and start and end with an alphanumeric",
        ),
        (
            "x" * 64,
            f"-l: bad selector '{'x' * 64}': invalid label key '{'x' * 64}': name part must be "
            "no more than 63 characters",
        ),
    ],
)
def test_parse_selector_rejects_malformed(text: str, message: str) -> None:
    with pytest.raises(SelectionError) as caught:
        parse_selector(text)
    assert str(caught.value) == message
    assert caught.value.source == "-l"


def test_a_huge_selector_is_refused_before_any_work() -> None:
    with pytest.raises(SelectionError, match="at most 65536"):
        parse_selector("a," * 100_000)


CONTROL = {"role": "control-plane", "env": "training"}
WORKER = {"role": "worker", "env": "training", "gpu": "true"}
BARE: dict[str, str] = {}


@pytest.mark.parametrize(
    ("text", "control", "worker", "bare"),
    [
        ("role=worker", False, True, False),
        ("role!=worker", True, False, True),  # a missing label is "not equal", as in kubectl
        ("gpu", False, True, False),
        ("!gpu", True, False, True),
        ("role in (worker,control-plane)", True, True, False),
        ("role notin (worker)", True, False, True),
        ("role=worker,gpu=true", False, True, False),
        ("role=worker,gpu=false", False, False, False),
        ("env=training,!gpu", True, False, False),
        ("role in (worker),!gpu", False, False, False),
    ],
)
def test_matches(text: str, control: bool, worker: bool, bare: bool) -> None:
    selector = parse_selector(text)
    assert selector.matches(CONTROL) is control
    assert selector.matches(WORKER) is worker
    assert selector.matches(BARE) is bare


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("worker", True),
        ("control-plane", True),
        ("app.kubernetes.io/name", True),
        ("node-role.kubernetes.io/control-plane", True),
        ("1", True),
        ("", False),
        ("a b", False),
        ("-a", False),
        ("a-", False),
        ("/a", False),
        ("Example.com/a", False),
        ("a" * 63, True),
        ("a" * 64, False),
        ("a" * 253 + "/b", True),
        ("a" * 254 + "/b", False),
    ],
)
def test_label_keys_follow_kubernetes(key: str, valid: bool) -> None:
    assert (label_key_problem(key) is None) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [("", True), ("worker", True), ("v1.2_3-x", True), ("-x", False), ("a b", False),
     ("a" * 63, True), ("a" * 64, False), ("a/b", False)],
)  # fmt: skip
def test_label_values_follow_kubernetes(value: str, valid: bool) -> None:
    assert (label_value_problem(value) is None) is valid


_label_text = st.from_regex(r"[a-z0-9](?:[a-z0-9._-]{0,6}[a-z0-9])?", fullmatch=True)
_requirements = st.one_of(
    st.builds(R, _label_text, st.sampled_from([Op.EXISTS, Op.NOT_EXISTS])),
    st.builds(
        R,
        _label_text,
        st.sampled_from([Op.EQUALS, Op.NOT_EQUALS]),
        st.tuples(st.one_of(st.just(""), _label_text)),
    ),
    st.builds(
        R,
        _label_text,
        st.sampled_from([Op.IN, Op.NOT_IN]),
        st.lists(_label_text, min_size=1, max_size=4, unique=True).map(lambda v: tuple(sorted(v))),
    ),
)
_selectors = st.lists(_requirements, min_size=1, max_size=5).map(
    lambda rs: Selector(tuple(sorted(rs, key=lambda r: r.key)))
)


@given(_selectors)
def test_printing_then_parsing_gives_the_same_selector(selector: Selector) -> None:
    assert parse_selector(str(selector)) == selector


@given(_selectors, st.dictionaries(_label_text, _label_text, max_size=4))
def test_a_selector_is_the_conjunction_of_its_terms(
    selector: Selector, labels: dict[str, str]
) -> None:
    each = [Selector((requirement,)).matches(labels) for requirement in selector.requirements]
    assert selector.matches(labels) is all(each)


@given(_requirements, st.dictionaries(_label_text, _label_text, max_size=4))
def test_negated_operators_are_complements(
    requirement: Requirement, labels: dict[str, str]
) -> None:
    opposite = {
        Op.EQUALS: Op.NOT_EQUALS,
        Op.NOT_EQUALS: Op.EQUALS,
        Op.IN: Op.NOT_IN,
        Op.NOT_IN: Op.IN,
        Op.EXISTS: Op.NOT_EXISTS,
        Op.NOT_EXISTS: Op.EXISTS,
    }[requirement.operator]
    negated = Requirement(requirement.key, opposite, requirement.values)
    assert requirement.matches(labels) is not negated.matches(labels)
