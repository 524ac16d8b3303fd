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
    is_label_text,
    parse_selector,
)

R = Requirement
Op = Operator


@pytest.mark.parametrize(
    ("text", "requirements", "canonical"),
    [
        ("role=worker", [R("role", Op.EQUALS, ("worker",))], "role=worker"),
        ("role==worker", [R("role", Op.EQUALS, ("worker",))], "role=worker"),
        ("role != worker", [R("role", Op.NOT_EQUALS, ("worker",))], "role!=worker"),
        ("gpu", [R("gpu", Op.EXISTS)], "gpu"),
        ("!gpu", [R("gpu", Op.NOT_EXISTS)], "!gpu"),
        ("! gpu", [R("gpu", Op.NOT_EXISTS)], "!gpu"),
        ("role in (worker,db)", [R("role", Op.IN, ("worker", "db"))], "role in (worker,db)"),
        ("role in( worker , db )", [R("role", Op.IN, ("worker", "db"))], "role in (worker,db)"),
        ("env notin (prod)", [R("env", Op.NOT_IN, ("prod",))], "env notin (prod)"),
        ("in in (in)", [R("in", Op.IN, ("in",))], "in in (in)"),
        (
            "role in (worker),!gpu",
            [R("role", Op.IN, ("worker",)), R("gpu", Op.NOT_EXISTS)],
            "role in (worker),!gpu",
        ),
        (
            " role=worker , env!=prod,tier ",
            [
                R("role", Op.EQUALS, ("worker",)),
                R("env", Op.NOT_EQUALS, ("prod",)),
                R("tier", Op.EXISTS),
            ],
            "role=worker,env!=prod,tier",
        ),
        (
            "app.kubernetes.io/name=web",
            [R("app.kubernetes.io/name", Op.EQUALS, ("web",))],
            "app.kubernetes.io/name=web",
        ),
    ],
)
def test_parse_selector(text: str, requirements: list[Requirement], canonical: str) -> None:
    selector = parse_selector(text)
    assert selector == Selector(tuple(requirements))
    assert str(selector) == canonical
    assert parse_selector(canonical) == selector


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "-l: empty selector"),
        ("  ", "-l: empty selector"),
        (
            "role=worker,",
            "-l: empty term in 'role=worker,' (two commas in a row, or a comma at an end)",
        ),
        ("a,,b", "-l: empty term in 'a,,b' (two commas in a row, or a comma at an end)"),
        (
            "role worker",
            "-l: bad selector term 'role worker': expected k=v, k!=v, k, !k, "
            "'k in (a,b)' or 'k notin (a,b)'",
        ),
        (
            "role=",
            "-l: bad selector term 'role=': expected k=v, k!=v, k, !k, "
            "'k in (a,b)' or 'k notin (a,b)'",
        ),
        (
            "=worker",
            "-l: bad selector term '=worker': expected k=v, k!=v, k, !k, "
            "'k in (a,b)' or 'k notin (a,b)'",
        ),
        (
            "a=b=c",
            "-l: bad selector term 'a=b=c': expected k=v, k!=v, k, !k, "
            "'k in (a,b)' or 'k notin (a,b)'",
        ),
        (
            "!a=b",
            "-l: bad selector term '!a=b': expected k=v, k!=v, k, !k, "
            "'k in (a,b)' or 'k notin (a,b)'",
        ),
        (
            "role>1",
            "-l: bad selector term 'role>1': expected k=v, k!=v, k, !k, "
            "'k in (a,b)' or 'k notin (a,b)'",
        ),
        ("role in (a", "-l: '(' is never closed in 'role in (a'"),
        ("role)", "-l: ')' without a matching '(' in 'role)'"),
        (
            "role in ()",
            "-l: bad selector term 'role in ()': value '' must be non-empty, "
            "without spaces, ',', '=', '!', '<', '>', '(' or ')'",
        ),
        (
            "role in (a,,b)",
            "-l: bad selector term 'role in (a,,b)': value '' must be non-empty, "
            "without spaces, ',', '=', '!', '<', '>', '(' or ')'",
        ),
        (
            "role in (a b)",
            "-l: bad selector term 'role in (a b)': value 'a b' must be non-empty, "
            "without spaces, ',', '=', '!', '<', '>', '(' or ')'",
        ),
        (
            "role in (a=b)",
            "-l: bad selector term 'role in (a=b)': value 'a=b' must be non-empty, "
            "without spaces, ',', '=', '!', '<', '>', '(' or ')'",
        ),
    ],
)
def test_parse_selector_rejects_malformed(text: str, message: str) -> None:
    with pytest.raises(SelectionError) as caught:
        parse_selector(text)
    assert str(caught.value) == message
    assert caught.value.source == "-l"


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
    ("text", "valid"),
    [
        ("worker", True),
        ("control-plane", True),
        ("app.kubernetes.io/name", True),
        ("1", True),
        ("", False),
        ("a b", False),
        ("a,b", False),
        ("a=b", False),
        ("!a", False),
        ("a(b)", False),
        ("a>1", False),
        ("tab\there", False),
    ],
)
def test_is_label_text(text: str, valid: bool) -> None:
    assert is_label_text(text) is valid


_label_text = st.text(alphabet="inotabxz019-._/", min_size=1, max_size=8)
_requirements = st.one_of(
    st.builds(R, _label_text, st.sampled_from([Op.EXISTS, Op.NOT_EXISTS])),
    st.builds(
        R,
        _label_text,
        st.sampled_from([Op.EQUALS, Op.NOT_EQUALS]),
        st.tuples(_label_text),
    ),
    st.builds(
        R,
        _label_text,
        st.sampled_from([Op.IN, Op.NOT_IN]),
        st.lists(_label_text, min_size=1, max_size=4).map(tuple),
    ),
)
_selectors = st.lists(_requirements, min_size=1, max_size=5).map(lambda rs: Selector(tuple(rs)))


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
