"""Host sets checked against the tools users paste them into: ClusterShell's NodeSet and pdsh.

Thousands of random name sets are folded by bastion; Debian's ClusterShell (python3-clustershell,
run by the system interpreter) expands each folded string and must find the same names, and
bastion must read ClusterShell's own folding of the same names back to the same set. pdsh
(its exec module runs ``echo %h`` for each host it parsed) must read a sample the same way.
Installed by scripts/setup-system (packages clustershell and pdsh).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from bastion.hostset import expand_all, fold

SYSTEM_PYTHON = Path("/usr/bin/python3")
NODESET_SCRIPT = r"""
import json, sys
from ClusterShell.NodeSet import NodeSet
for line in sys.stdin:
    case = json.loads(line)
    print(json.dumps({
        "expanded": sorted(NodeSet(case["folded"])),
        "clush_fold": str(NodeSet.fromlist(case["names"])),
    }))
"""


def _clustershell_missing() -> str | None:
    if not SYSTEM_PYTHON.exists():
        return "no /usr/bin/python3 for Debian's python3-clustershell"
    probe = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import ClusterShell.NodeSet"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        return "ClusterShell is not installed (apt-get install clustershell)"
    return None


def _random_name(rng: random.Random) -> str:
    """Names as fleets write them: a prefix, numbers plain or padded, domains, interfaces."""
    number = rng.choice([rng.randint(0, 12), rng.randint(0, 130), rng.randint(90, 1100)])
    width = rng.choice([0, 0, 0, 2, 3])
    digits = str(number).zfill(width)
    shape = rng.randrange(7)
    if shape == 0:
        return f"node{digits}"
    if shape == 1:
        return f"node{digits}.k8s.lab"
    if shape == 2:
        return f"rack{rng.randint(1, 4)}-n{digits}"
    if shape == 3:
        return f"cn{digits}-ib{rng.randint(0, 1)}"
    if shape == 4:
        return f"web{digits}.dc{rng.randint(1, 3)}.example.org"
    if shape == 5:
        return f"r{rng.randint(1, 3)}u{rng.randint(1, 3)}n{digits}"
    return rng.choice(["db", "bastion", "gw-a", "x_y", "login"])


def _random_sets(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    sets: list[list[str]] = []
    for _ in range(count):
        size = rng.choice([1, 2, 3, 5, 10, 40, 120])
        sets.append(sorted({_random_name(rng) for _ in range(size)}))
    return sets


def _single_family(names: list[str]) -> bool:
    """One prefix, one plain or fixed-width number, nothing else: a set clush and we fold alike."""
    return all(name.startswith("node") and name[4:].isdigit() for name in names) and (
        len({len(name) for name in names if name[4] == "0"} | {0}) <= 2
    )


@pytest.fixture(scope="module")
def nodeset_results() -> tuple[list[list[str]], list[str], list[dict[str, object]]]:
    reason = _clustershell_missing()
    if reason:
        pytest.skip(reason)
    sets = _random_sets(3000, seed=20261202)
    folded = [fold(names) for names in sets]
    lines = "".join(
        json.dumps({"folded": text, "names": names}) + "\n"
        for text, names in zip(folded, sets, strict=True)
    )
    done = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", NODESET_SCRIPT],
        input=lines,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == len(sets)
    return sets, folded, results


def test_every_folded_set_expands_to_the_same_names_in_clustershell(
    nodeset_results: tuple[list[list[str]], list[str], list[dict[str, object]]],
) -> None:
    sets, folded, results = nodeset_results
    wrong = [
        (text, names)
        for names, text, result in zip(sets, folded, results, strict=True)
        if result["expanded"] != names
    ]
    assert wrong == []


def test_bastion_reads_clustershells_folding_as_the_same_names(
    nodeset_results: tuple[list[list[str]], list[str], list[dict[str, object]]],
) -> None:
    sets, _, results = nodeset_results
    wrong = [
        (result["clush_fold"], names)
        for names, result in zip(sets, results, strict=True)
        if sorted(expand_all(str(result["clush_fold"]))) != names
    ]
    assert wrong == []


def test_simple_sets_fold_to_clustershells_exact_text(
    nodeset_results: tuple[list[list[str]], list[str], list[dict[str, object]]],
) -> None:
    sets, folded, results = nodeset_results
    simple = [
        (text, result["clush_fold"])
        for names, text, result in zip(sets, folded, results, strict=True)
        if _single_family(names)
    ]
    assert len(simple) > 50
    assert [ours for ours, _ in simple] == [theirs for _, theirs in simple]


def test_the_issues_examples_fold_like_clush() -> None:
    """The three families of the report: a number before a domain, racks, interfaces."""
    assert fold(f"node{n}.k8s.lab" for n in range(1, 101)) == "node[1-100].k8s.lab"
    assert fold(f"web{n}.dc2.example.org" for n in range(1, 31)) == "web[1-30].dc2.example.org"
    assert fold(f"cn{n}-ib0" for n in range(1, 65)) == "cn[1-64]-ib0"
    assert fold(f"rack{r}-n{n}" for r in range(1, 5) for n in range(1, 33)) == ("rack[1-4]-n[1-32]")


@pytest.mark.skipif(shutil.which("pdsh") is None, reason="pdsh is not installed")
def test_pdsh_reads_a_sample_of_folded_sets_as_the_same_names() -> None:
    """pdsh's exec module runs ``echo %h`` once per host it parsed: no host is contacted."""
    sample = [names for names in _random_sets(80, seed=7) if len(names) <= 40][:25]
    for names in sample:
        folded = fold(names)
        shown = subprocess.run(
            ["pdsh", "-R", "exec", "-N", "-w", folded, "echo", "%h"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        assert sorted(shown.split()) == names, folded
