"""The playbook's pure parts, without SSH: templating, quoting, masking, vars, guards, parsing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bastion.inventory import load_inventory
from bastion.models import Host
from bastion.playbook import (
    PlaybookError,
    PlaybookRun,
    PlayOptions,
    load_playbook,
    parse_extra_vars,
    parse_where,
)
from bastion.playbook.context import layered_vars, resolve_vars
from bastion.playbook.durations import parse_duration
from bastion.playbook.guards import Guards, guard_script, guard_verdict, skip_reason
from bastion.playbook.model import Text
from bastion.playbook.results import HostStepResult, HostTally, PlayRecap, StepStatus
from bastion.playbook.template import MASK, Masker, Pending, collect_uses, evaluate, render
from bastion.select import Selection

HERE = Path("book.yaml")


def shell(source: str, **context: object) -> str:
    return render(Text(source, 1), context, HERE, quoted=True)


def test_values_in_shell_strings_are_quoted_unless_raw() -> None:
    assert shell("echo {{ x }}", x="a b; rm -rf /") == "echo 'a b; rm -rf /'"
    assert shell("echo {{ x }}", x="it's") == "echo 'it'\"'\"'s'"
    assert shell("echo {{ x | raw }}", x="$HOME *") == "echo $HOME *"
    assert shell("echo {{ n }}", n=3) == "echo 3"
    assert shell("echo {{ a ~ '-' ~ b }}", a="x y", b="z") == "echo 'x y-z'"
    # Literal text is never touched; only interpolated values are.
    assert shell('echo "$(hostname)" {% if on %}yes{% endif %}', on=True) == (
        'echo "$(hostname)" yes'
    )
    plain = render(Text("port = {{ p }}\n", 1), {"p": "a b"}, HERE, quoted=False)
    assert plain == "port = a b\n"


def test_an_undefined_name_names_the_file_and_the_line_inside_the_text() -> None:
    with pytest.raises(PlaybookError) as caught:
        render(Text("echo a\necho {{ nope }}\n", 10), {}, HERE, quoted=True)
    assert str(caught.value) == "book.yaml:11: undefined variable: 'nope' is undefined"
    with pytest.raises(PlaybookError) as attribute:
        evaluate(Text("hosts.node1.join.rc == 0", 4), {"hosts": {"node1": {}}}, HERE)
    assert str(attribute.value) == (
        "book.yaml:4: undefined variable: 'dict object' has no attribute 'join'"
    )


def test_pending_registers_pass_the_dry_render() -> None:
    context = {"hosts": {"node1": {"join": Pending()}}, "result": Pending()}
    assert evaluate(Text("hosts.node1.join.rc == 0", 1), context, HERE) is False
    assert evaluate(Text("'Ready' in result.stdout", 1), context, HERE) is False
    assert shell("echo {{ hosts.node1.join.stdout }}", **context) == "echo PENDING"


def test_pending_survives_attributes_items_calls_arithmetic_and_filters() -> None:
    touched = collect_uses()
    join = Pending("join, registered by step 'token'")
    context = {"hosts": {"node1": {"join": join}}}
    # Each of these raised "'Pending' object is not callable" (or similar) in the dry render.
    for source in (
        "{{ hosts.node1.join.stdout.split()[0] }}",
        "{{ hosts.node1.join.stdout_lines[-1].strip() }}",
        "{{ hosts.node1.join.json['token'] }}",
        "{{ hosts.node1.join.rc + 1 }}",
        "{{ hosts.node1.join.stdout | trim | upper }}",
        "{{ hosts.node1.join.stdout | replace('a', 'b') | int }}",
        "{{ 'x' | replace('x', hosts.node1.join.stdout) }}",
        "{{ hosts.node1.join.stdout | raw }}",
    ):
        touched.clear()
        assert shell(f"echo {source}", **context) == "echo PENDING", source
        assert touched and set(touched) == {"join, registered by step 'token'"}, source
    result = evaluate(Text("hosts.node1.join.stdout.split()[0] | length", 1), context, HERE)
    assert isinstance(result, Pending)
    assert evaluate(Text("hosts.node1.join.stdout.split() | length > 0", 1), context, HERE) is False
    # The filters still work on ordinary values.
    assert shell("echo {{ x | trim | upper }}", x=" a ") == "echo A"
    assert shell("echo {{ xs | join(',') }}", xs=["a", "b"]) == "echo a,b"


def test_the_masker_hides_every_form_of_a_secret() -> None:
    masker = Masker(["s3cret-token"])
    assert masker.mask("token=s3cret-token!") == f"token={MASK}!"
    masker.add(["kubeadm join 10.0.0.1:6443 --token abc.def\n"])
    assert masker.mask("ran: kubeadm join 10.0.0.1:6443 --token abc.def") == f"ran: {MASK}"
    masker.add(["it's secret"])
    assert masker.mask("echo 'it'\"'\"'s secret'") == f"echo {MASK}"
    assert Masker(["ab"]).mask("abc") == "abc"  # too short to mask without hiding everything


def test_vars_refer_to_each_other_in_any_order_and_loops_are_errors() -> None:
    layered = {
        "url": (Text("https://{{ host_name }}:{{ port }}", 3), HERE),
        "host_name": (Text("{{ host.name }}.lab", 4), HERE),
        "port": (6443, HERE),
    }
    values = resolve_vars(layered, {"host": {"name": "node1"}})
    assert values["url"] == "https://node1.lab:6443"
    loop = {"a": (Text("{{ b }}", 7), HERE), "b": (Text("{{ a }}", 8), HERE)}
    with pytest.raises(
        PlaybookError, match=r"book.yaml:7: variables refer to each other in a loop: a -> b -> a"
    ):
        resolve_vars(loop, {})


def test_variable_precedence(tmp_path: Path) -> None:
    (tmp_path / "play.yaml").write_text(
        "name: p\nhosts: --all\nvars: {a: play, b: play, c: play, d: play}\n"
        "steps:\n  - {name: s, run: echo}\n"
    )
    (tmp_path / "site.yaml").write_text(
        "name: site\nvars: {b: site, c: site, d: site}\nimport: [play.yaml]\n"
    )
    book = load_playbook(tmp_path / "site.yaml", {"d": "cli"})
    host = Host("node1", "127.0.0.1", vars={"c": "inventory", "d": "inventory"})
    values = resolve_vars(layered_vars(book.plays[0], host, book.extra_vars), {})
    assert values == {"a": "play", "b": "site", "c": "inventory", "d": "cli"}


def test_the_guard_script_runs_the_guards_in_order(tmp_path: Path) -> None:
    (tmp_path / "here").touch()
    here, gone = str(tmp_path / "here"), str(tmp_path / "gone")

    def verdict(guards: Guards) -> str | None:
        done = subprocess.run(
            ["sh", "-c", guard_script(guards)], capture_output=True, text=True, check=False
        )
        return guard_verdict(done.stdout)

    assert verdict(Guards(creates=here)) == "creates"
    assert verdict(Guards(creates=gone)) == "run"
    assert verdict(Guards(removes=gone)) == "removes"
    assert verdict(Guards(unless=f"test -e {here}")) == "unless"
    assert verdict(Guards(only_if=f"test -e {gone}")) == "only_if"
    # The first that says skip wins: creates before only_if.
    assert verdict(Guards(creates=here, only_if="false")) == "creates"
    assert verdict(Guards(creates=gone, removes=here, unless="false", only_if="true")) == "run"
    odd = str(tmp_path / "it's here; rm -rf x")
    Path(odd).touch()
    assert verdict(Guards(creates=odd)) == "creates"
    assert skip_reason(Guards(creates=here), "creates") == f"creates {here} exists"
    assert skip_reason(Guards(only_if="false"), "only_if") == "only_if: false failed"


def test_selections_in_the_run_grammar() -> None:
    where = parse_where("-g workers -l 'role in (a,b)' -x node3", source=HERE, line=1)
    assert where == Selection(groups=("workers",), selector="role in (a,b)", exclude=("node3",))
    assert parse_where("--all", source=HERE, line=1) == Selection(all=True)
    assert parse_where("-x node3", source=HERE, line=1) == Selection(all=True, exclude=("node3",))
    assert parse_where("--hosts=node[1-2]", source=HERE, line=1) == Selection(hosts=("node[1-2]",))
    for bad in ("node1", "-g", "--become", "-l a -l b", "'unclosed"):
        with pytest.raises(PlaybookError, match=r"book\.yaml:5: bad host selection"):
            parse_where(bad, source=HERE, line=5)


def test_durations_and_extra_vars(tmp_path: Path) -> None:
    assert [parse_duration(v) for v in (90, 1.5, "500ms", "5s", "10m", "1h")] == [
        90.0,
        1.5,
        0.5,
        5.0,
        600.0,
        3600.0,
    ]
    assert (
        parse_duration("soon") is None
        and parse_duration(-1) is None
        and parse_duration(True) is None
    )
    (tmp_path / "vars.yaml").write_text("a: 1\nb: [x]\n")
    assert parse_extra_vars(["a=x=y", f"@{tmp_path / 'vars.yaml'}", "c= spaced "]) == {
        "a": 1,
        "b": ["x"],
        "c": " spaced ",
    }
    with pytest.raises(PlaybookError, match="-e: expected NAME=VALUE"):
        parse_extra_vars(["1a=b"])


def test_recap_counts_each_step_once_and_exit_codes() -> None:
    def tally(host: str, *statuses: StepStatus, ignored: bool = False) -> HostTally:
        counted = HostTally(host, "127.0.0.1")
        for number, status in enumerate(statuses):
            counted.add(HostStepResult(host, f"s{number}", status, ignored=ignored))
        return counted

    ok = tally("a", StepStatus.OK, StepStatus.CHANGED, StepStatus.SKIPPED)
    assert ok.counts == {
        "ok": 1,
        "changed": 1,
        "skipped": 1,
        "failed": 0,
        "unreachable": 0,
        "ignored": 0,
    }
    assert PlayRecap([ok]).exit_code == 0
    ignored = tally("b", StepStatus.FAILED, ignored=True)
    assert ignored.counts["ignored"] == 1 and ignored.stopped_at is None
    assert PlayRecap([ok, ignored]).exit_code == 0
    failed = tally("c", StepStatus.OK, StepStatus.FAILED)
    assert failed.stopped_at == "s1"
    assert PlayRecap([ok, failed]).exit_code == 1
    assert PlayRecap([failed, tally("d", StepStatus.UNREACHABLE)]).exit_code == 3
    assert tally("e", StepStatus.WOULD_RUN).counts["changed"] == 1


def prepared_run(
    tmp_path: Path, steps: str, hosts: str = "--all", **options: object
) -> PlaybookRun:
    """`PlaybookRun.prepare` on a two-host inventory: nothing is contacted before `execute`."""
    (tmp_path / "inventory.yaml").write_text(
        "hosts:\n  node1: {address: 127.0.0.1}\n  node2: {address: 127.0.0.2}\n"
        "groups:\n  masters: [node1]\n"
    )
    (tmp_path / "book.yaml").write_text(
        f"name: t\nhosts: {hosts}\nvars: {{cni: weave}}\nsteps:\n" + steps
    )
    book = load_playbook(tmp_path / "book.yaml")
    inventory = load_inventory(tmp_path / "inventory.yaml")
    run = PlaybookRun(book, inventory, PlayOptions(**options), lambda event: None)  # type: ignore[arg-type]
    run.prepare()
    return run


def test_the_dry_render_finds_undefined_names_before_anything_runs(tmp_path: Path) -> None:
    # A `when` false whatever is registered: the step's texts may use what only exists then.
    prepared_run(
        tmp_path, "  - {name: a, run: 'echo {{ calico_only }}', when: \"cni == 'calico'\"}\n"
    )
    # A `when` that depends on a registered result might hold: the step must render.
    steps = (
        "  - {name: probe, run: 'true', register: probe}\n"
        "  - name: b\n    when: hosts.node1.probe.rc == 0\n    run: echo {{ nope }}\n"
    )
    with pytest.raises(PlaybookError) as caught:
        prepared_run(tmp_path, steps)
    assert (
        str(caught.value) == f"{tmp_path / 'book.yaml'}:8: undefined variable: 'nope' is undefined"
    )
    with pytest.raises(PlaybookError, match=r"book\.yaml:7: undefined variable: 'gone'"):
        prepared_run(tmp_path, "  - name: a\n    run: 'true'\n    creates: '{{ gone }}'\n")
    with pytest.raises(PlaybookError, match=r"book\.yaml:6: on: -g: unknown group 'nope'"):
        prepared_run(tmp_path, "  - name: a\n    on: -g nope\n    run: 'true'\n")
    with pytest.raises(PlaybookError, match="--start-at: no step named 'z'"):
        prepared_run(tmp_path, "  - {name: a, run: 'true'}\n", start_at="z")


def test_limit_tags_and_start_at_shape_the_plan(tmp_path: Path) -> None:
    steps = (
        "  - {name: a, run: 'true', tags: [x]}\n  - {name: b, run: 'true'}\n"
        "  - {name: c, run: 'true', tags: [x, y], on: -g masters}\n"
    )
    run = prepared_run(tmp_path, steps, limit=Selection(hosts=("node2",)), tags=frozenset({"x"}))
    (planned,) = run.planned
    assert [h.name for h in planned.hosts] == ["node2"]
    assert [(step.name, on) for step, on in planned.steps] == [("a", None), ("c", {"node1"})]
    with pytest.raises(PlaybookError, match="--limit: no host of the playbook is among node1"):
        prepared_run(tmp_path, steps, hosts="-H node2", limit=Selection(hosts=("node1",)))
    skipping = prepared_run(tmp_path, steps, skip_tags=frozenset({"y"}), start_at="b")
    assert [step.name for step, _on in skipping.planned[0].steps] == ["b"]


def test_secret_vars_come_from_a_file_the_environment_or_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "db").write_text("  from-a-file\n")
    monkeypatch.setenv("PLAY_UNIT_TOKEN", "from-the-env")
    (tmp_path / "book.yaml").write_text(
        "name: t\nhosts: --all\nvars:\n"
        "  db: {secret: true, file: db}\n"
        "  token: {secret: true, env: PLAY_UNIT_TOKEN}\n"
        "  inline: {secret: true, value: inline-value}\n"
        "  plain: not-secret\n"
        "steps:\n  - {name: a, run: echo}\n"
    )
    book = load_playbook(tmp_path / "book.yaml")
    assert book.secrets == {"from-a-file", "from-the-env", "inline-value"}
    assert book.secret_vars == {"db", "token", "inline"}
    assert book.plays[0].vars["db"] == "from-a-file"
    monkeypatch.delenv("PLAY_UNIT_TOKEN")
    with pytest.raises(PlaybookError) as caught:
        load_playbook(tmp_path / "book.yaml")
    assert str(caught.value) == (
        f"{tmp_path / 'book.yaml'}:5: secret token: environment variable PLAY_UNIT_TOKEN is not set"
    )


def test_errors_before_the_run_never_quote_a_secret(tmp_path: Path) -> None:
    (tmp_path / "inventory.yaml").write_text("hosts:\n  node1: {address: 127.0.0.1}\n")
    (tmp_path / "book.yaml").write_text(
        "name: t\nhosts: --all\nvars:\n  token: {secret: true, value: the-token-value}\n"
        "  lookup: {}\nsteps:\n  - {name: a, run: 'echo {{ lookup[token] }}'}\n"
    )
    book = load_playbook(tmp_path / "book.yaml")
    run = PlaybookRun(
        book, load_inventory(tmp_path / "inventory.yaml"), PlayOptions(), lambda event: None
    )
    with pytest.raises(PlaybookError) as caught:
        run.prepare()
    assert str(caught.value) == (
        f"{tmp_path / 'book.yaml'}:7: undefined variable: 'dict object' has no attribute '{MASK}'"
    )


def test_retries_and_delay_take_templates_checked_after_rendering(tmp_path: Path) -> None:
    from bastion.playbook.plan import retry_limits

    steps = (
        "  - name: a\n    run: 'true'\n    retries: '{{ tries }}'\n    delay: '{{ pause }}'\n"
        "    until: result.rc == 0\n"
    )
    book = tmp_path / "book.yaml"
    (tmp_path / "inventory.yaml").write_text("hosts:\n  node1: {address: 127.0.0.1}\n")
    book.write_text("name: t\nhosts: --all\nvars: {tries: 4, pause: 500ms}\nsteps:\n" + steps)
    step = load_playbook(book).plays[0].steps[0]
    assert isinstance(step.retries, Text) and isinstance(step.delay, Text)
    assert retry_limits(step, {"tries": 4, "pause": "500ms"}, book) == (4, 0.5)
    assert retry_limits(step, {"tries": " 0 ", "pause": 3}, book) == (0, 3.0)
    whole = r"book\.yaml:7: step 'a': retries: expected a whole number >= 0"
    for tries, pause, message in (
        ("-1", "1s", whole + ", got '-1'"),
        ("lots", "1s", whole + ", got 'lots'"),
        ("2", "soon", r"book\.yaml:8: step 'a': delay: expected a duration .* got 'soon'"),
    ):
        with pytest.raises(PlaybookError, match=message):
            retry_limits(step, {"tries": tries, "pause": pause}, book)
    # The dry render checks them before anything runs...
    with pytest.raises(PlaybookError, match=r"book\.yaml:5: .*retries: .*got 'x'"):
        prepared_run(tmp_path, "  - {name: a, run: 'true', retries: '{{ cni[:0] ~ \"x\" }}'}\n")
    with pytest.raises(PlaybookError, match=r"book\.yaml:5: undefined variable: 'nope'"):
        prepared_run(tmp_path, "  - {name: a, run: 'true', delay: '{{ nope }}'}\n")
    # ...except when they come from a value registered in the run (known only then).
    prepared_run(
        tmp_path,
        "  - {name: probe, run: 'true', register: probe}\n"
        "  - {name: b, run: 'true', retries: '{{ hosts.node1.probe.stdout }}'}\n",
    )


def test_guards_and_command_in_one_remote_command(tmp_path: Path) -> None:
    from bastion.playbook.guards import VerdictSplitter, guarded_command, without_verdict

    present = tmp_path / "present"
    present.write_text("")
    made = tmp_path / "made"
    command = f"printf 'out\\n'; echo err >&2; cat; touch {made}; exit 3"

    def remote(guards: Guards) -> tuple[str, list[tuple[str, str]], int]:
        text = guarded_command(guards, command, sudo=False, guard_timeout=60)
        done = subprocess.run(
            ["sh", "-c", text], input="from stdin\n", capture_output=True, text=True, check=False
        )
        seen: list[tuple[str, str]] = []
        splitter = VerdictSplitter(lambda stream, chunk: seen.append((stream, chunk)))
        for char in done.stdout:  # as small chunks as the transport could deliver
            splitter("stdout", char)
        splitter.flush()
        assert without_verdict(done.stdout) == "".join(c for s, c in seen if s == "stdout")
        return str(splitter.verdict), seen, done.returncode

    verdict, seen, rc = remote(Guards(creates=str(present)))
    assert (verdict, seen, rc) == ("creates", [], 0)
    assert not made.exists()  # skipped: the command never ran
    verdict, seen, rc = remote(Guards(unless="false", only_if=f"test -e {present}"))
    assert verdict == "run" and rc == 3  # the command's own exit status
    assert "".join(c for s, c in seen) == "out\nfrom stdin\n"  # the verdict line is gone
    assert made.exists()
    # A guard that cannot be checked (here sudo is missing or refuses) fails, not "run".
    text = guarded_command(
        Guards(creates="/nonexistent"), "touch never", sudo=True, guard_timeout=60
    )
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "sh").symlink_to("/bin/sh")
    env = {"PATH": str(tmp_path / "bin")}  # sh, and no sudo, on this PATH
    done = subprocess.run(
        ["/bin/sh", "-c", text], capture_output=True, text=True, env=env, cwd=tmp_path, check=False
    )
    assert done.returncode == 125 and not (tmp_path / "never").exists()
    # A guard that hangs is stopped after guard_timeout (coreutils' timeout), and fails.
    text = guarded_command(Guards(unless="sleep 30"), "touch never", sudo=False, guard_timeout=1)
    done = subprocess.run(
        ["sh", "-c", text], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 125 and done.stdout == "\n"
