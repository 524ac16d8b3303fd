"""copy/fetch without SSH: templates, the local plan, the remote-state helper, the work adapter.

The helper scripts are run here with the local ``sh``, as they run on a node.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from bastion.errors import UsageError
from bastion.models import Host, HostResult, Status
from bastion.transfer.copy import Owner, parse_mode
from bastion.transfer.remote_state import STATE_SCRIPT, parse_state, state_request
from bastion.transfer.sources import plan_copy
from bastion.transfer.template import render, render_all
from bastion.transfer.work import files_work
from bastion.transport.base import CommandSpec, OutputSink

HOST = Host(
    "node1",
    "127.0.0.1",
    port=2222,
    user="ops",
    vars={"dc": "par1", "rack": 7, "tags": ["a"], "flag": True},
)


# --- templates ---------------------------------------------------------------------------


def test_placeholders_take_the_host_builtins_and_vars() -> None:
    template = "/etc/{dc}/{host}-{rack}-{address}:{port}-{user}.conf"
    assert render(template, HOST, {}, source="DEST") == (
        "/etc/par1/node1-7-127.0.0.1:2222-ops.conf"
    )


def test_host_vars_win_over_inventory_vars_which_still_apply() -> None:
    assert render("{dc}/{zone}", HOST, {"dc": "x", "zone": "z1"}, source="DEST") == "par1/z1"


def test_braces_can_be_literal() -> None:
    assert render("/srv/{{x}}/{host}", HOST, {}, source="DEST") == "/srv/{x}/node1"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("/etc/{nope}.conf", "unknown placeholder {nope} in '/etc/{nope}.conf' for host node1"),
        ("/etc/{}", "bad placeholder {}"),
        ("/etc/{0}", "bad placeholder {0}"),
        ("/etc/{host.name}", "bad placeholder {host.name}"),
        ("/etc/{host!r}", "bad placeholder {host!r}"),
        ("/etc/{host:>9}", "bad placeholder {host:>9}"),
        ("/etc/{host", "bad template"),
        ("/etc/{tags}", "placeholder {tags} of host node1 is a list"),
        ("/etc/{flag}", "placeholder {flag} of host node1 is a bool"),
    ],
)
def test_bad_templates_are_usage_errors_naming_the_placeholder(template: str, message: str) -> None:
    with pytest.raises(UsageError, match=r"^DEST: ") as raised:
        render(template, HOST, {}, source="DEST")
    assert message in str(raised.value)


def test_a_value_is_data_never_shell_and_a_newline_is_refused() -> None:
    nasty = Host("node2", "127.0.0.2", vars={"v": "$(touch /tmp/x); `id` 'q' \"d\""})
    assert render("/tmp/{v}", nasty, {}, source="DEST") == "/tmp/$(touch /tmp/x); `id` 'q' \"d\""
    broken = Host("node3", "127.0.0.3", vars={"v": "a\nb"})
    with pytest.raises(UsageError, match="newline"):
        render("/tmp/{v}", broken, {}, source="DEST")


def test_every_host_is_checked_before_anything_runs() -> None:
    good = Host("node1", "127.0.0.1", vars={"v": "1"})
    bad = Host("node2", "127.0.0.2")
    with pytest.raises(UsageError, match="for host node2"):
        render_all("/tmp/{v}", [good, bad], {}, source="DEST")


# --- the local plan ----------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "conf" / "empty").mkdir(parents=True)
    (root / "a.txt").write_text("a\n")
    (root / "conf" / "b.conf").write_text("b\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "link-to-a").symlink_to("a.txt")
    (root / "link-to-dir").symlink_to("conf")
    (root / "dangling").symlink_to("nowhere")
    return root


def test_a_tree_goes_under_its_own_name(tree: Path) -> None:
    plan = plan_copy([str(tree)], "/srv", recursive=True)
    assert plan.into_dir
    assert plan.dirs == ("app", "app/conf", "app/conf/empty")
    assert [f.relpath for f in plan.files] == [
        "app/a.txt",
        "app/link-to-a",
        "app/run.sh",
        "app/conf/b.conf",
    ]
    by_path = {f.relpath: f for f in plan.files}
    assert by_path["app/run.sh"].mode == 0o755
    assert by_path["app/a.txt"].sha256 == hashlib.sha256(b"a\n").hexdigest()
    assert by_path["app/link-to-a"].sha256 == by_path["app/a.txt"].sha256
    assert sorted(s.split(" (")[0].rsplit("/", 1)[1] for s in plan.skipped) == [
        "dangling",
        "link-to-dir",
    ]


def test_a_trailing_slash_copies_the_contents(tree: Path) -> None:
    plan = plan_copy([f"{tree}/"], "/srv/app", recursive=True)
    assert plan.dirs == ("conf", "conf/empty")
    assert "a.txt" in [f.relpath for f in plan.files]


def test_one_file_may_go_to_a_file_or_into_a_directory(tree: Path) -> None:
    assert not plan_copy([str(tree / "a.txt")], "/etc/a.conf", recursive=False).into_dir
    assert plan_copy([str(tree / "a.txt")], "/etc/", recursive=False).into_dir
    both = plan_copy([str(tree / "a.txt"), str(tree / "run.sh")], "/etc", recursive=False)
    assert both.into_dir and [f.relpath for f in both.files] == ["a.txt", "run.sh"]


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (None, ["missing"], "local source {tmp}/missing does not exist"),
        (None, ["app"], "{tmp}/app is a directory: use -r to copy it"),
        (None, ["app/a.txt", "app/conf/../a.txt"], "two sources go to the same place 'a.txt'"),
        ("newline", ["bad\nname"], "file names with a newline cannot be copied"),
        ("fifo", ["pipe"], "is not a regular file or a directory"),
        ("unreadable", ["secret"], "cannot read local file"),
    ],
)
def test_bad_sources_are_found_before_any_host(
    tree: Path, make: str | None, args: list[str], message: str
) -> None:
    tmp = tree.parent
    if make == "newline":
        (tmp / "bad\nname").write_text("x")
    elif make == "fifo":
        os.mkfifo(tmp / "pipe")
    elif make == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads every file")
        (tmp / "secret").write_text("x")
        (tmp / "secret").chmod(0)
    with pytest.raises(UsageError, match=r"^SRC: ") as raised:
        plan_copy([str(tmp / a) for a in args], "/srv/", recursive=False)
    assert message.format(tmp=tmp) in str(raised.value)


@pytest.mark.parametrize(("spec", "mode"), [("0644", 0o644), ("755", 0o755), ("4755", 0o4755)])
def test_modes_are_octal(spec: str, mode: int) -> None:
    assert parse_mode(spec) == mode


@pytest.mark.parametrize("spec", ["rw-r--r--", "888", "17777", "-1", ""])
def test_bad_modes_are_refused(spec: str) -> None:
    with pytest.raises(UsageError, match=r"^--mode: bad mode"):
        parse_mode(spec)


def test_owners() -> None:
    assert Owner.parse("app") == Owner("app")
    assert Owner.parse("app:web") == Owner("app", "web")
    assert Owner.parse("1000:1000").install_args() == ["-o", "1000", "-g", "1000"]
    for bad in ("", ":web", "a b", "app;rm"):
        with pytest.raises(UsageError, match=r"^--owner: bad owner"):
            Owner.parse(bad)


# --- the remote-state helper, run by the local shell ---------------------------------------


def run_state_script(paths: list[str], hashed: list[str]) -> bytes:
    done = subprocess.run(
        ["sh", "-c", STATE_SCRIPT],
        input=state_request(paths, hashed),
        capture_output=True,
        check=True,
    )
    return done.stdout


def test_the_state_helper_reports_types_sizes_modes_and_hashes(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    plain = tmp_path / "plain file"
    plain.write_bytes(b"hello\n")
    plain.chmod(0o640)
    odd = tmp_path / "back\\slash -dash 'q' $x"
    odd.write_bytes(b"")
    missing = tmp_path / "missing"
    state = parse_state(
        run_state_script([str(tmp_path / "dir")], [str(plain), str(odd), str(missing)])
    )
    assert set(state) == {str(tmp_path / "dir"), str(plain), str(odd)}
    assert state[str(tmp_path / "dir")].kind == "dir"
    assert state[str(tmp_path / "dir")].sha256 is None
    assert state[str(plain)].kind == "file"
    assert state[str(plain)].size == 6
    assert state[str(plain)].mode == 0o640
    assert state[str(plain)].sha256 == hashlib.sha256(b"hello\n").hexdigest()
    assert state[str(odd)].sha256 == hashlib.sha256(b"").hexdigest()
    assert state[str(odd)].type_name == "regular empty file"


def test_the_state_helper_with_nothing_to_check() -> None:
    assert parse_state(run_state_script([], [])) == {}


# --- the work adapter --------------------------------------------------------------------


class CommandOnlyTransport:
    """A transport without file transfer (as mosh would be)."""

    name = "mosh"

    async def run(self, host: Host, spec: CommandSpec, on_output: OutputSink) -> HostResult:
        raise AssertionError("not used")

    async def close(self) -> None:
        pass


def test_a_transport_without_file_transfer_fails_that_host_clearly() -> None:
    async def body(files: object, host: Host, sink: OutputSink) -> HostResult:
        raise AssertionError("never reached")

    work = files_work(body, timeout=None)  # type: ignore[arg-type]
    result = asyncio.run(work(CommandOnlyTransport(), HOST, lambda stream, text: None))
    assert result.status is Status.FAILED
    assert (
        result.error
        == "transport 'mosh' cannot transfer files (copy and fetch need transport: asyncssh)"
    )
