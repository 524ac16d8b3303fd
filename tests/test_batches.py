"""Rolling batches: parsing sizes and budgets, splitting hosts, stopping and skipping."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.batches import Amount, BatchPlan, parse_amount, parse_batch, run_in_batches
from bastion.cli.options import batch_plan
from bastion.errors import UsageError
from bastion.models import Host, HostResult, Reason, Status
from bastion.render.summary import render_batches


def hosts(count: int) -> list[Host]:
    return [Host(f"node{n}", f"127.0.0.{n}") for n in range(1, count + 1)]


def names(batches: Sequence[Sequence[Host]]) -> list[list[str]]:
    return [[host.name for host in batch] for batch in batches]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1", (Amount(1),)),
        ("25%", (Amount(25, percent=True),)),
        ("1,5,25%", (Amount(1), Amount(5), Amount(25, percent=True))),
        (" 2 , 50% ", (Amount(2), Amount(50, percent=True))),
        ("100%", (Amount(100, percent=True),)),
    ],
)
def test_batch_sizes_parse(spec: str, expected: tuple[Amount, ...]) -> None:
    assert parse_batch(spec) == expected


@pytest.mark.parametrize("spec", ["", "0", "-1", "0%", "101%", "abc", "1,,2", "1,", "5x", "1.5"])
def test_bad_batch_sizes_name_the_option(spec: str) -> None:
    with pytest.raises(UsageError, match=r"^--batch: bad (value|batch sizes) '"):
        parse_batch(spec)


def test_max_fail_allows_zero_but_not_negative() -> None:
    assert parse_amount("0", source="--max-fail", allow_zero=True) == Amount(0)
    assert parse_amount("10%", source="--max-fail", allow_zero=True) == Amount(10, percent=True)
    with pytest.raises(UsageError, match="--max-fail"):
        parse_amount("-1", source="--max-fail", allow_zero=True)


@pytest.mark.parametrize(
    ("plan", "count", "expected"),
    [
        (BatchPlan(sizes=(Amount(1),)), 3, [["node1"], ["node2"], ["node3"]]),
        (BatchPlan(sizes=(Amount(2),)), 5, [["node1", "node2"], ["node3", "node4"], ["node5"]]),
        # 1, then 5, then 25% of 20 = 5, repeating.
        (
            BatchPlan(sizes=(Amount(1), Amount(5), Amount(25, percent=True))),
            20,
            [[1], [2, 3, 4, 5, 6], [7, 8, 9, 10, 11], [12, 13, 14, 15, 16], [17, 18, 19, 20]],
        ),
        # a percentage below one host still makes progress.
        (BatchPlan(sizes=(Amount(10, percent=True),)), 3, [["node1"], ["node2"], ["node3"]]),
        (BatchPlan(canary=True), 4, [["node1"], ["node2", "node3", "node4"]]),
        (BatchPlan(sizes=(Amount(2),), canary=True), 4, [["node1"], ["node2", "node3"], ["node4"]]),
    ],
)
def test_split(plan: BatchPlan, count: int, expected: list[list[object]]) -> None:
    want = [[f"node{n}" if isinstance(n, int) else n for n in batch] for batch in expected]
    assert names(plan.split(hosts(count))) == want


@given(
    sizes=st.lists(
        st.one_of(
            st.integers(1, 30).map(Amount),
            st.integers(1, 100).map(lambda p: Amount(p, percent=True)),
        ),
        min_size=1,
        max_size=4,
    ),
    count=st.integers(0, 60),
    canary=st.booleans(),
)
def test_split_keeps_every_host_once_in_order(
    sizes: list[Amount], count: int, canary: bool
) -> None:
    selected = hosts(count)
    batches = BatchPlan(sizes=tuple(sizes), canary=canary).split(selected)
    assert [h for batch in batches for h in batch] == selected
    assert all(batch for batch in batches)
    if canary and count:
        assert len(batches[0]) == 1


def fake_runner(failing: set[str], log: list[list[str]]):  # type: ignore[no-untyped-def]
    async def run_batch(batch: Sequence[Host]) -> list[HostResult]:
        log.append([h.name for h in batch])
        return [
            HostResult(h.name, h.address, Status.FAILED if h.name in failing else Status.OK)
            for h in batch
        ]

    return run_batch


def test_max_fail_zero_stops_after_the_first_failure_and_skips_the_rest() -> None:
    log: list[list[str]] = []
    plan = BatchPlan(sizes=(Amount(1),), max_fail=Amount(0))
    results, report = asyncio.run(run_in_batches(hosts(3), plan, fake_runner({"node2"}, log)))
    assert log == [["node1"], ["node2"]]
    assert [(r.host, r.status) for r in results] == [
        ("node1", Status.OK),
        ("node2", Status.FAILED),
        ("node3", Status.SKIPPED),
    ]
    assert results[2].error == "not started: 1 host not ok after batch 2, over --max-fail 0"
    assert report.stopped == "1 host not ok after batch 2, over --max-fail 0"
    assert [b.started for b in report.batches] == [True, True, False]
    assert [r.reason for r in results] == [None, None, Reason.NOT_STARTED]


def test_the_budget_is_named_as_the_caller_spells_it() -> None:
    """A playbook's step says ``max_fail``: the message is built so, not rewritten after."""
    plan = BatchPlan(sizes=(Amount(1),), max_fail=Amount(0), budget_name="max_fail")
    results, report = asyncio.run(run_in_batches(hosts(3), plan, fake_runner({"node1"}, [])))
    assert report.stopped == "1 host not ok after batch 1, over max_fail 0"
    assert results[2].error == "not started: 1 host not ok after batch 1, over max_fail 0"


def test_a_budget_in_percent_counts_all_selected_hosts() -> None:
    log: list[list[str]] = []
    plan = BatchPlan(sizes=(Amount(2),), max_fail=Amount(25, percent=True))  # 25% of 8 = 2
    failing = {"node1", "node3", "node5"}
    results, report = asyncio.run(run_in_batches(hosts(8), plan, fake_runner(failing, log)))
    # 1 failure after batch 1, 2 after batch 2 (not over 2), 3 after batch 3: stop.
    assert log == [["node1", "node2"], ["node3", "node4"], ["node5", "node6"]]
    assert [r.host for r in results if r.status is Status.SKIPPED] == ["node7", "node8"]
    assert report.stopped is not None and "over --max-fail 25%" in report.stopped


def test_without_a_budget_every_batch_runs() -> None:
    log: list[list[str]] = []
    plan = BatchPlan(sizes=(Amount(1),))
    results, report = asyncio.run(run_in_batches(hosts(3), plan, fake_runner({"node1"}, log)))
    assert len(log) == 3 and report.stopped is None
    assert Status.SKIPPED not in {r.status for r in results}


def test_a_failing_canary_stops_everything_else() -> None:
    log: list[list[str]] = []
    plan = BatchPlan(canary=True)
    results, report = asyncio.run(run_in_batches(hosts(4), plan, fake_runner({"node1"}, log)))
    assert log == [["node1"]]
    assert report.stopped == "the canary node1 did not succeed"
    assert {r.host for r in results if r.status is Status.SKIPPED} == {"node2", "node3", "node4"}


def test_a_good_canary_lets_the_rest_run_together() -> None:
    log: list[list[str]] = []
    results, report = asyncio.run(
        run_in_batches(hosts(4), BatchPlan(canary=True), fake_runner(set(), log))
    )
    assert log == [["node1"], ["node2", "node3", "node4"]]
    assert report.stopped is None and all(r.succeeded for r in results)


def test_failures_in_the_last_batch_do_not_invent_a_stop() -> None:
    log: list[list[str]] = []
    plan = BatchPlan(sizes=(Amount(2),), max_fail=Amount(0))
    _, report = asyncio.run(run_in_batches(hosts(2), plan, fake_runner({"node2"}, log)))
    assert report.stopped is None


def test_pause_waits_between_batches_only(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("bastion.batches.asyncio.sleep", fake_sleep)
    plan = BatchPlan(sizes=(Amount(1),), pause_s=2.5)
    asyncio.run(run_in_batches(hosts(3), plan, fake_runner(set(), [])))
    assert slept == [2.5, 2.5]


def test_on_start_is_told_each_batch() -> None:
    seen: list[tuple[int, int, list[str]]] = []
    asyncio.run(
        run_in_batches(
            hosts(3),
            BatchPlan(sizes=(Amount(2),)),
            fake_runner(set(), []),
            lambda number, total, batch: seen.append((number, total, [h.name for h in batch])),
        )
    )
    assert seen == [(1, 2, ["node1", "node2"]), (2, 2, ["node3"])]


def test_batch_options_need_batch_or_canary() -> None:
    assert batch_plan(None, None, 0, False) is None
    with pytest.raises(UsageError, match="--max-fail needs --batch or --canary"):
        batch_plan(None, "1", 0, False)
    with pytest.raises(UsageError, match="--pause needs --batch or --canary"):
        batch_plan(None, None, 3, False)
    plan = batch_plan("1,50%", "10%", 1.5, True)
    assert plan == BatchPlan(
        sizes=(Amount(1), Amount(50, percent=True)),
        max_fail=Amount(10, percent=True),
        pause_s=1.5,
        canary=True,
    )


def test_the_summary_shows_each_batch_and_why_it_stopped() -> None:
    log: list[list[str]] = []
    plan = BatchPlan(sizes=(Amount(1), Amount(2)), max_fail=Amount(0))
    _, report = asyncio.run(run_in_batches(hosts(5), plan, fake_runner({"node2"}, log)))
    assert render_batches(report) == (
        "bastion: 2 of 3 batches run; stopped: 1 host not ok after batch 2, over --max-fail 0\n"
        "  1/3  node1      1 ok\n"
        "  2/3  node[2-3]  1 ok, 1 failed\n"
        "  3/3  node[4-5]  not started\n"
    )
