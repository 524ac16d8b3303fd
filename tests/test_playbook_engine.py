"""The playbook engine's semantics on `bastion.testing.FakeTransport` (issue 13 item 7).

Register across hosts, once, retries/until, when, check mode, stop on failure, ignore_errors
and unreachable hosts, in-process: no SSH, no shell. What needs a real sh, sudo or SFTP
(guards, quoting, copy/fetch, durable jobs, timeouts) stays in tests/test_play_lab.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.executor import RunOptions
from bastion.inventory import Inventory, load_inventory
from bastion.playbook import (
    PlaybookError,
    PlayOptions,
    PlayRecap,
    load_playbook,
    run_playbook_sync,
)
from bastion.playbook.results import StepStatus
from bastion.testing import Call, FakeTransport, Reply

NODES = ("node1", "node2", "node3")


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "hosts:\n"
        + "".join(f"  {n}: {{address: 127.21.250.{i}}}\n" for i, n in enumerate(NODES, 1))
        + "groups:\n  workers: [node2, node3]\n"
    )
    return load_inventory(path)


def play(
    tmp_path: Path, inventory: Inventory, fake: FakeTransport, steps: str, *, check: bool = False
) -> PlayRecap:
    book = tmp_path / "book.yaml"
    book.write_text(f"name: fake\nhosts: --all\nsteps:\n{steps}")
    options = PlayOptions(run=RunOptions(make_transport=fake.factory), check=check)
    return run_playbook_sync(load_playbook(book), inventory, options, lambda event: None)


def statuses(recap: PlayRecap, step: str) -> dict[str, str]:
    return {r.host: str(r.status) for r in recap.step_results(step)}


def test_a_value_registered_once_on_node1_reaches_the_other_hosts(
    tmp_path: Path, inventory: Inventory
) -> None:
    fake = FakeTransport(
        {
            "make token": Reply("token-node1-42\n"),
            **{(n, "report"): Reply(f'{{"count": 3, "name": "{n}"}}\n') for n in NODES},
        },
        default=Reply("ok\n"),
    )
    recap = play(
        tmp_path,
        inventory,
        fake,
        "  - {name: make, run: make token, once: true, register: token}\n"
        "  - name: use\n    run: 'echo got {{ hosts.node1.token.stdout }}'\n    on: -g workers\n"
        "  - {name: report, run: report, register: info}\n"
        "  - name: json\n    run: 'echo {{ info.json.count }} {{ info.json.name }}"
        " {{ hosts.node2.info.json.name }}'\n",
    )
    assert recap.exit_code == 0
    assert fake.commands("node1") == ["make token", "report", "echo 3 node1 node2"]
    for node in ("node2", "node3"):  # once: only the first host made the token
        assert fake.commands(node) == [
            "echo got token-node1-42",
            "report",
            f"echo 3 {node} node2",
        ]
    assert fake.unexpected == []


def test_retries_until_and_an_ignored_failure(tmp_path: Path, inventory: Inventory) -> None:
    fake = FakeTransport(
        {
            ("node1", "count"): [Reply("1\n"), Reply("2\n"), Reply("3\n"), Reply("4\n")],
            ("node1", "never"): Reply("1\n"),
        },
        default=Reply(),
    )
    recap = play(
        tmp_path,
        inventory,
        fake,
        "  - name: count\n    run: count\n    on: -H node1\n    register: counter\n"
        "    retries: 5\n    delay: 0s\n    until: 'result.stdout | int >= 3'\n"
        "  - name: never\n    run: never\n    on: -H node1\n    retries: 1\n    delay: 0s\n"
        "    until: \"result.stdout == '2'\"\n    ignore_errors: true\n"
        "  - name: after\n    run: 'after {{ counter.stdout }} {{ counter.attempts }}'\n"
        "    on: -H node1\n",
    )
    assert fake.commands("node1") == ["count"] * 3 + ["never"] * 2 + ["after 3 3"]
    (count,) = recap.step_results("count")
    assert (count.status, count.attempts) == (StepStatus.CHANGED, 3)
    (never,) = recap.step_results("never")
    assert (never.status, never.attempts, never.ignored) == (StepStatus.FAILED, 2, True)
    assert never.detail == "until \"result.stdout == '2'\" not met after 2 attempts"
    assert recap.exit_code == 0  # an ignored failure is not a failure of the run
    assert recap.total("ignored") == 1


def test_a_failing_host_takes_no_further_steps_and_an_unreachable_one_is_exit_3(
    tmp_path: Path, inventory: Inventory
) -> None:
    fake = FakeTransport(
        {("node2", "second"): Reply(stderr="no\n", exit_status=4)}, default=Reply("fine\n")
    )
    steps = "  - {name: first, run: first}\n  - {name: second, run: second}\n"
    steps += "  - {name: third, run: third}\n"
    recap = play(tmp_path, inventory, fake, steps)
    assert fake.commands("node2") == ["first", "second"]
    assert fake.commands("node3") == ["first", "second", "third"]
    assert recap.exit_code == 1
    assert recap.tally("node2").stopped_at == "second"
    assert statuses(recap, "second")["node2"] == "failed"
    lost = FakeTransport(
        {("node3", "first"): Reply(unreachable="connection refused")}, default=Reply()
    )
    recap = play(tmp_path, inventory, lost, steps)
    assert lost.commands("node3") == ["first"]
    assert statuses(recap, "first")["node3"] == "unreachable"
    assert recap.exit_code == 3


def test_when_skips_without_contacting_the_host(tmp_path: Path, inventory: Inventory) -> None:
    fake = FakeTransport(default=Reply())
    recap = play(
        tmp_path,
        inventory,
        fake,
        "  - name: workers only\n    run: work\n    when: \"host.name != 'node1'\"\n",
    )
    assert fake.commands("node1") == []
    assert fake.commands("node2") == ["work"]
    (skipped,) = [r for r in recap.step_results("workers only") if r.host == "node1"]
    assert (skipped.status, skipped.detail) == (StepStatus.SKIPPED, "when: host.name != 'node1'")


def test_check_mode_runs_only_readonly_steps_and_says_what_depends_on_the_rest(
    tmp_path: Path, inventory: Inventory
) -> None:
    fake = FakeTransport(default=Reply("read\n"))
    recap = play(
        tmp_path,
        inventory,
        fake,
        "  - {name: change, run: touch x, register: made}\n"
        "  - {name: look, run: look, readonly: true}\n"
        "  - name: after\n    run: after\n    when: \"'x' in made.stdout\"\n",
        check=True,
    )
    for node in NODES:
        assert fake.commands(node) == ["look"]  # the changing step was not run
    assert set(statuses(recap, "change").values()) == {"would run"}
    assert set(statuses(recap, "look").values()) == {"ok"}
    after = recap.step_results("after")[0]
    assert after.status is StepStatus.WOULD_RUN
    assert after.detail == (
        "if 'x' in made.stdout (depends on made, registered by step 'change' in this run)"
    )


def test_a_function_reply_sees_the_hosts_in_memory_files(
    tmp_path: Path, inventory: Inventory
) -> None:
    def counter(call: Call) -> Reply:
        n = int(call.files.get("/n", b"0")) + 1
        call.files["/n"] = str(n).encode()
        return Reply(f"{n}\n")

    fake = FakeTransport({"count": counter})
    play(
        tmp_path,
        inventory,
        fake,
        "  - name: count\n    run: count\n    retries: 4\n    delay: 0s\n"
        "    until: 'result.stdout | int >= 2'\n",
    )
    assert {host: files["/n"] for host, files in fake.files.items()} == dict.fromkeys(NODES, b"2")
    assert fake.closed >= 1


def probe_output(host: str, kernel: str) -> str:
    return f"hostname\t{host}\nkernel\t{kernel}\ncpus\t4\nmemory_kb\t2048000\nend\tfacts\n"


def test_facts_are_gathered_once_per_host_for_the_run_and_seen_by_every_host(
    tmp_path: Path, inventory: Inventory
) -> None:
    fake = FakeTransport(
        {(n, "sh -s"): Reply(probe_output(n, f"6.1.{i}")) for i, n in enumerate(NODES)},
        default=Reply(),
    )
    first = tmp_path / "first.yaml"
    first.write_text(
        "name: first\nhosts: --all\nfacts: true\nsteps:\n"
        "  - name: use\n    run: 'kernel {{ facts.kernel }} cpus {{ facts.cpus }} "
        "node1 {{ hosts.node1.facts.hostname }}'\n"
    )
    second = tmp_path / "second.yaml"
    second.write_text(
        "name: second\nhosts: -g workers\nfacts: true\nsteps:\n"
        "  - {name: again, run: 'mem {{ facts.memory_kb }}'}\n"
    )
    site = tmp_path / "site.yaml"
    site.write_text("name: site\nimport: [first.yaml, second.yaml]\n")
    options = PlayOptions(run=RunOptions(make_transport=fake.factory))
    recap = run_playbook_sync(load_playbook(site), inventory, options, lambda event: None)
    assert recap.exit_code == 0
    assert fake.commands("node2") == ["sh -s", "kernel 6.1.1 cpus 4 node1 node1", "mem 2048000"]
    probe = fake.calls[0].stdin or b""
    assert b"fact end facts" in probe  # the facts probe, on stdin (bastion/facts/probe.sh)
    gathered = recap.step_results("gather facts")
    assert [(r.host, str(r.status)) for r in gathered] == [
        ("node1", "ok"),
        ("node2", "ok"),
        ("node3", "ok"),
        ("node2", "ok"),  # the second play's hosts: known already, not asked again
        ("node3", "ok"),
    ]


def test_a_host_whose_facts_cannot_be_gathered_takes_no_steps(
    tmp_path: Path, inventory: Inventory
) -> None:
    fake = FakeTransport(
        {
            ("node1", "sh -s"): Reply(probe_output("node1", "6.1")),
            ("node2", "sh -s"): Reply("kernel\t6.1\n"),  # cut before its end line
            ("node3", "sh -s"): Reply(unreachable="connection refused"),
        },
        default=Reply(),
    )
    book = tmp_path / "book.yaml"
    book.write_text(
        "name: facts\nhosts: --all\nfacts: true\nsteps:\n  - {name: s, run: '{{ facts.kernel }}'}\n"
    )
    options = PlayOptions(run=RunOptions(make_transport=fake.factory))
    recap = run_playbook_sync(load_playbook(book), inventory, options, lambda event: None)
    assert statuses(recap, "gather facts") == {
        "node1": "ok",
        "node2": "failed",
        "node3": "unreachable",
    }
    assert fake.commands("node1") == ["sh -s", "6.1"]
    assert fake.commands("node2") == ["sh -s"]
    assert recap.exit_code == 3


def test_facts_in_a_play_without_facts_true_is_exit_2_before_anything_runs(
    tmp_path: Path, inventory: Inventory
) -> None:
    fake = FakeTransport(default=Reply())
    book = tmp_path / "book.yaml"
    book.write_text("name: f\nhosts: --all\nsteps:\n  - {name: s, run: '{{ facts.kernel }}'}\n")
    options = PlayOptions(run=RunOptions(make_transport=fake.factory))
    with pytest.raises(PlaybookError) as caught:
        run_playbook_sync(load_playbook(book), inventory, options, lambda event: None)
    assert str(caught.value) == f"{book}:4: undefined variable: 'facts' is undefined"
    assert fake.calls == []


def test_changed_when_readonly_and_a_secret_steps_output_masked_in_every_event(
    tmp_path: Path, inventory: Inventory
) -> None:
    from bastion.playbook.results import StepOutput

    fake = FakeTransport(
        {
            ("node1", "make"): Reply("created\n"),
            "make": Reply("exists\n"),
            "token": Reply("s3cr3t-token-value\n"),
        },
        default=Reply("fine\n"),
    )
    book = tmp_path / "book.yaml"
    book.write_text(
        "name: m\nhosts: --all\nsteps:\n"
        "  - {name: make, run: make, changed_when: \"'created' in result.stdout\"}\n"
        "  - {name: look, run: look, readonly: true}\n"
        "  - {name: token, run: token, secret: true, register: t, once: true}\n"
        "  - {name: use, run: 'use {{ hosts.node1.t.stdout }}'}\n"
    )
    events: list[object] = []
    options = PlayOptions(run=RunOptions(make_transport=fake.factory))
    recap = run_playbook_sync(load_playbook(book), inventory, options, events.append)
    assert statuses(recap, "make") == {"node1": "changed", "node2": "ok", "node3": "ok"}
    assert set(statuses(recap, "look").values()) == {"ok"}
    # The host gets the value, on stdin: never on a command line (issue 11 item 7).
    last = fake.calls[-1]
    assert last.command == 'exec "${SHELL:-/bin/sh}" -s'
    assert last.stdin == b"{\nuse s3cr3t-token-value\n} </dev/null\n"
    assert not any("s3cr3t" in call.command for call in fake.calls)
    shown = [e.text for e in events if isinstance(e, StepOutput)]
    assert "********\n" in shown, repr(shown)
    assert not any("s3cr3t-token-value" in text for text in shown)
    assert not any("s3cr3t-token-value" in r.stdout for r in recap.results)


def test_a_rolling_step_over_max_fail_leaves_the_rest_not_started(
    tmp_path: Path, inventory: Inventory
) -> None:
    fake = FakeTransport({("node1", "roll"): Reply(exit_status=1)}, default=Reply())
    recap = play(
        tmp_path,
        inventory,
        fake,
        "  - {name: roll, run: roll, batch: 1, max_fail: 0}\n  - {name: after, run: after}\n",
    )
    assert fake.commands() == ["roll"]  # node1 failed: node2 and node3 never started
    assert statuses(recap, "roll") == {"node1": "failed", "node2": "skipped", "node3": "skipped"}
    assert recap.step_results("after") == []
    assert recap.exit_code == 1


def test_a_fetch_step_reads_each_hosts_in_memory_file_and_is_unchanged_the_second_time(
    tmp_path: Path, inventory: Inventory
) -> None:
    files = {n: {"/etc/app.conf": f"name={n}\n".encode()} for n in NODES}
    fake = FakeTransport(files=files)
    out = tmp_path / "out"
    steps = f"  - name: fetch\n    fetch: {{src: /etc/app.conf, dest: '{out}/'}}\n"
    first = play(tmp_path, inventory, fake, steps)
    assert set(statuses(first, "fetch").values()) == {"changed"}
    for node in NODES:
        local = out / node / "etc" / "app.conf"
        assert local.read_text() == f"name={node}\n"
        assert local.stat().st_mode & 0o777 == 0o600
    again = play(tmp_path, inventory, fake, steps)
    assert set(statuses(again, "fetch").values()) == {"ok"}
    fake.files["node2"]["/etc/app.conf"] = b"name=changed\n"
    third = play(tmp_path, inventory, fake, steps)
    assert statuses(third, "fetch") == {"node1": "ok", "node2": "changed", "node3": "ok"}
    assert fake.calls == []  # a fetch runs no command: SFTP only


def test_extra_vars_values_stay_off_command_lines_but_are_not_masked(
    tmp_path: Path, inventory: Inventory
) -> None:
    fake = FakeTransport(default=Reply("ok\n"))
    book = tmp_path / "book.yaml"
    book.write_text(
        "name: e\nhosts: -H node1\nsteps:\n"
        "  - {name: uses, run: 'echo {{ password }}'}\n  - {name: plain, run: echo plain}\n"
    )
    options = PlayOptions(run=RunOptions(make_transport=fake.factory))
    loaded = load_playbook(book, {"password": "hunter22"})
    run_playbook_sync(loaded, inventory, options, lambda event: None)
    uses, plain = fake.calls
    assert uses.command == 'exec "${SHELL:-/bin/sh}" -s'
    assert uses.stdin == b"{\necho hunter22\n} </dev/null\n"
    assert plain.command == "echo plain"
