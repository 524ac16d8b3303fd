"""Host patterns: expansion, splitting, matching and folding (pure, no I/O)."""

from __future__ import annotations

from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.errors import SelectionError
from bastion.hostset import (
    MAX_EXPANSION,
    expand,
    expand_all,
    fold,
    is_glob,
    match,
    split_patterns,
)


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("node1", ["node1"]),
        ("node[1-3]", ["node1", "node2", "node3"]),
        ("web[01-03]", ["web01", "web02", "web03"]),
        ("web[08-11]", ["web08", "web09", "web10", "web11"]),
        ("web[098-101]", ["web098", "web099", "web100", "web101"]),
        ("node[1-3,7,10-12]", ["node1", "node2", "node3", "node7", "node10", "node11", "node12"]),
        ("node[7]", ["node7"]),
        ("node[0-1]", ["node0", "node1"]),
        ("node[00-01]", ["node00", "node01"]),
        ("node[01-5]", ["node01", "node02", "node03", "node04", "node05"]),
        ("[1-2].lab", ["1.lab", "2.lab"]),
        ("node[1-2].lab", ["node1.lab", "node2.lab"]),
        ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
        ("node[1-3,2]", ["node1", "node2", "node3"]),
        ("  node[1-2]  ", ["node1", "node2"]),
        ("node*", ["node*"]),
        ("a,b", ["a,b"]),
    ],
)
def test_expand(pattern: str, names: list[str]) -> None:
    assert expand(pattern) == names


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "empty host pattern"),
        ("   ", "empty host pattern"),
        ("node[3-1]", "bad host pattern 'node[3-1]': range '3-1' goes backwards"),
        (
            "node[a-b]",
            "bad host pattern 'node[a-b]': 'a-b' is not a number or a range such as 1-3 or 1-9/2",
        ),
        (
            "node[1-]",
            "bad host pattern 'node[1-]': '1-' is not a number or a range such as 1-3 or 1-9/2",
        ),
        (
            "node[1,]",
            "bad host pattern 'node[1,]': '' is not a number or a range such as 1-3 or 1-9/2",
        ),
        (
            "node[-1]",
            "bad host pattern 'node[-1]': '-1' is not a number or a range such as 1-3 or 1-9/2",
        ),
        ("node[1-3", "bad host pattern 'node[1-3': '[' is never closed"),
        ("node1-3]", "bad host pattern 'node1-3]': ']' without a matching '['"),
        ("node]1[", "bad host pattern 'node]1[': ']' without a matching '['"),
        ("node[[1]]", "bad host pattern 'node[[1]]': brackets cannot be nested"),
        ("node[]", "bad host pattern 'node[]': empty brackets"),
        (
            "node[1-05]",
            "bad host pattern 'node[1-05]': range '1-05' mixes zero-padded and plain numbers",
        ),
        (
            # Python's int() accepts other scripts' digits; a host range must not.
            "node[\uff11]",
            "bad host pattern 'node[\uff11]': '\uff11' is not a number or a range "
            "such as 1-3 or 1-9/2",
        ),
    ],
)
def test_expand_rejects_malformed(pattern: str, message: str) -> None:
    with pytest.raises(SelectionError) as caught:
        expand(pattern)
    assert str(caught.value) == message
    assert caught.value.source is None


def test_expand_refuses_huge_ranges() -> None:
    with pytest.raises(SelectionError, match="expands to 1,000,000,000 names, more than 100,000"):
        expand("node[1-1000000000]")
    with pytest.raises(SelectionError, match="expands to 1,000,000 names, more than 100,000"):
        expand("r[1-1000]n[1-1000]")
    assert len(expand(f"node[1-{MAX_EXPANSION}]")) == MAX_EXPANSION


def test_a_pattern_list_is_sized_before_any_name_is_made() -> None:
    """80 ranges of 99,999 names each: refused from the arithmetic, not after building them."""
    import tracemalloc

    text = ",".join(f"n{index}x[0-99998]" for index in range(80))
    tracemalloc.start()
    with pytest.raises(SelectionError, match="expands to 7,999,920 names"):
        expand_all(text)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000


@pytest.mark.parametrize(
    "pattern", ["node[1-" + "9" * 5000 + "]", "node[" + "1" * 5000 + "]", "n[1-9/" + "9" * 30 + "]"]
)
def test_huge_numbers_are_refused_before_conversion(pattern: str) -> None:
    with pytest.raises(SelectionError, match="digits"):
        expand(pattern)


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("n[1-10/2]", ["n1", "n3", "n5", "n7", "n9"]),
        ("n[0-10/3]", ["n0", "n3", "n6", "n9"]),
        ("n[01-09/4]", ["n01", "n05", "n09"]),
        ("n[ 1]", ["n1"]),
        ("node1[1-3]", ["node11", "node12", "node13"]),  # pdsh's reading, not ClusterShell's
    ],
)
def test_steps_spaces_and_digits_next_to_brackets(pattern: str, names: list[str]) -> None:
    assert expand(pattern) == names


def test_a_step_of_zero_is_refused() -> None:
    with pytest.raises(SelectionError, match="step of 0"):
        expand("n[1-3/0]")


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("a,node[1-3,5],b", ["a", "node[1-3,5]", "b"]),
        (" a , b ", ["a", "b"]),
        ("a,,b,", ["a", "b"]),
        ("", []),
        (" , ", []),
        ("r[1-2]-n[3,4],x", ["r[1-2]-n[3,4]", "x"]),
        ("a],b", ["a]", "b"]),
        ("a[1,2", ["a[1,2"]),
    ],
)
def test_split_patterns(text: str, items: list[str]) -> None:
    assert split_patterns(text) == items


def test_expand_all_keeps_order_and_drops_duplicates() -> None:
    assert expand_all("node3,node[1-3],web1,node1") == ["node3", "node1", "node2", "web1"]
    assert expand_all("") == []


def test_expand_all_reports_the_bad_item() -> None:
    with pytest.raises(SelectionError, match=r"'node\[2-1\]'"):
        expand_all("node1,node[2-1]")


@pytest.mark.parametrize(("name", "glob"), [("node*", True), ("node?", True), ("node1", False)])
def test_is_glob(name: str, glob: bool) -> None:
    assert is_glob(name) is glob


NAMES = ["node1", "node2", "node3", "web01", "web10", "db"]


@pytest.mark.parametrize(
    ("text", "names", "unmatched"),
    [
        ("node1", ["node1"], []),
        ("node3,node1", ["node1", "node3"], []),
        ("node[1-2]", ["node1", "node2"], []),
        ("node*", ["node1", "node2", "node3"], []),
        ("*1*", ["node1", "web01", "web10"], []),
        ("web?0", ["web10"], []),
        ("node[2-4]", ["node2", "node3"], ["node4"]),
        ("gpu*,db", ["db"], ["gpu*"]),
        ("NODE1", [], ["NODE1"]),
        ("", [], []),
    ],
)
def test_match(text: str, names: list[str], unmatched: list[str]) -> None:
    assert match(text, NAMES) == (names, unmatched)


@pytest.mark.parametrize(
    ("names", "folded"),
    [
        ([], ""),
        (["node1"], "node1"),
        (["node1", "node2", "node3", "web01", "web02"], "node[1-3],web[01-02]"),
        (["node3", "node1", "node2"], "node[1-3]"),
        (["node1", "node2", "node3", "node7", "node10", "node11"], "node[1-3,7,10-11]"),
        ([f"web{n:02d}" for n in range(1, 11)], "web[01-10]"),
        (["web08", "web09", "web10", "web11"], "web[08-11]"),
        (["web01", "web02", "web10"], "web[01-02,10]"),
        (["node01", "node1"], "node[1,01]"),
        (["node01", "node1", "node2"], "node[1-2,01]"),
        (["web9", "web09", "web10"], "web[9,09-10]"),
        (["db", "node1", "bastion"], "bastion,db,node1"),
        (["node", "node1", "node2"], "node,node[1-2]"),
        (["rack1-n1", "rack1-n2", "rack2-n1"], "rack1-n[1-2],rack2-n1"),
        (["node1.lab", "node2.lab", "node1.prod"], "node[1-2].lab,node1.prod"),
        (["node1", "node1", "node2"], "node[1-2]"),
        (["n0", "n1", "n00"], "n[0-1,00]"),
        ([f"node{n}.k8s.lab" for n in range(7, 101)], "node[7-100].k8s.lab"),
        ([f"rack{r}-n{n}" for r in range(1, 5) for n in range(1, 33)], "rack[1-4]-n[1-32]"),
        ([f"cn{n}-ib0" for n in range(1, 11)], "cn[1-10]-ib0"),
        (["a1b1", "a2b1", "a3b1", "a1b2"], "a1b[1-2],a[2-3]b1"),
        (["web001", "web002", "web100"], "web[001-002,100]"),
    ],
)
def test_fold(names: list[str], folded: str) -> None:
    assert fold(names) == folded


def test_fold_accepts_any_iterable() -> None:
    assert fold(f"node{n}" for n in (2, 1)) == "node[1-2]"


# Realistic names: a prefix, then a plain or zero-padded number, sometimes a second number or
# a domain after it, and names with no number at all.
_prefixes = st.sampled_from(["node", "web", "db-", "rack1-n", "gpu.", "n", "", "x-y_z"])
_suffixes = st.sampled_from(["", "", ".lab", "-a", ".example.org"])
_plain_numbers = st.integers(0, 130).map(str)
_padded_numbers = st.builds(
    lambda number, width: str(number).zfill(width), st.integers(0, 130), st.integers(2, 4)
)
_numbered = st.builds(
    lambda prefix, number, suffix: f"{prefix}{number}{suffix}",
    _prefixes,
    st.one_of(_plain_numbers, _padded_numbers),
    _suffixes,
)
_unnumbered = st.text(alphabet="abcdefgh-._", min_size=1, max_size=6)
_two_numbers = st.builds(
    lambda rack, node: f"rack{rack}-n{node}", st.integers(1, 3), st.integers(1, 12)
)
NAME_SETS = st.sets(st.one_of(_numbered, _numbered, _unnumbered, _two_numbers), max_size=40)


@given(NAME_SETS)
def test_fold_round_trips_through_expand(names: set[str]) -> None:
    assert set(expand_all(fold(names))) == names


@given(NAME_SETS)
def test_fold_is_idempotent_through_expand(names: set[str]) -> None:
    folded = fold(names)
    assert fold(expand_all(folded)) == folded


@given(NAME_SETS, st.randoms(use_true_random=False))
def test_fold_ignores_input_order(names: set[str], random: Random) -> None:
    shuffled = sorted(names)
    random.shuffle(shuffled)
    assert fold(shuffled) == fold(sorted(names))


@given(
    _prefixes,
    st.integers(0, 500),
    st.integers(1, 50),
    st.sampled_from([0, 2, 3, 4]),
)
def test_a_single_range_folds_back_to_itself(
    prefix: str, start: int, count: int, width: int
) -> None:
    first, last = str(start).zfill(width), str(start + count - 1).zfill(width)
    pattern = f"{prefix}[{first}-{last}]" if count > 1 else f"{prefix}{first}"
    names = expand(pattern)
    assert len(names) == count
    assert fold(names) == pattern
