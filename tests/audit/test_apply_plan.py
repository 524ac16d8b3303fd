"""`access apply` planning (pure) and its write script (run for real on a temporary file)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from bastion.audit.apply import HostPlan, plan_host, write_script
from bastion.audit.declared import load_access_list
from bastion.audit.drift import expected_keys
from bastion.audit.probe_output import parse_probe_output
from bastion.inventory import load_inventory
from tests.audit.probe_text import GOLDEN_NONCE, framed

TODAY = dt.date(2026, 6, 1)


def keygen(tmp: Path, name: str) -> tuple[str, str]:
    path = tmp / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True
    )
    public = path.with_suffix(".pub").read_text().strip()
    listed = subprocess.run(
        ["ssh-keygen", "-lf", f"{path}.pub"], capture_output=True, text=True, check=True
    )
    return public, listed.stdout.split()[1]


@pytest.fixture
def world(tmp_path: Path) -> dict[str, object]:
    keys = {n: keygen(tmp_path, n) for n in ("bastion", "alice", "intruder", "newcomer")}
    (tmp_path / "inventory.yaml").write_text(
        "hosts:\n  web1: {address: 127.0.0.1}\ngroups:\n  web: [web1]\n"
    )
    return {"tmp": tmp_path, "keys": keys}


def observe(lines: list[str], home: str = "/home/alice") -> str:
    body = "".join(f"|{line}\n" for line in lines)
    return (
        "@@section facts\n@@fact root yes\n@@fact now 1780000000\n@@fact client_addr 127.0.0.1\n"
        "@@section sshd_t root\n|usepam no\n|permitrootlogin prohibit-password\n"
        f"@@section passwd\n|root:x:0:0::/root:/bin/sh\n|alice:x:1000:1000::{home}:/bin/sh\n"
        "@@section keys root /root/.ssh/authorized_keys\n@@pattern .ssh/authorized_keys\n"
        f"{body}@@end\n"
    )


def plan(world: dict[str, object], access_text: str, lines: list[str], **kw: object) -> HostPlan:
    tmp = world["tmp"]
    assert isinstance(tmp, Path)
    (tmp / "access.yaml").write_text(access_text)
    access = load_access_list(tmp / "access.yaml")
    inventory = load_inventory(tmp / "inventory.yaml")
    seen = parse_probe_output("web1", "127.0.0.1", framed(observe(lines)), GOLDEN_NONCE)
    keys = world["keys"]
    assert isinstance(keys, dict)
    return plan_host(
        seen, access, expected_keys(access, inventory), today=TODAY,
        own_fingerprints=frozenset({keys["bastion"][1]}), login_user="root",
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def access_for(world: dict[str, object], root: list[str], options: str = "") -> str:
    keys = world["keys"]
    assert isinstance(keys, dict)
    ids = "".join(f"  {n}: {{keys: [{{key: '{keys[n][0]}'}}]}}\n" for n in keys)
    extra = f", options: '{options}'" if options else ""
    grants = "".join(f"  - {{to: {n}, hosts: web, account: root{extra}}}\n" for n in root)
    return f"version: 1\nidentities:\n{ids}grants:\n{grants}"


def test_removes_the_undeclared_key_keeps_comments_declared_and_unparseable_lines(
    world: dict[str, object],
) -> None:
    keys = world["keys"]
    assert isinstance(keys, dict)
    lines = ["# managed by hand", keys["bastion"][0], keys["intruder"][0], "garbage line"]
    result = plan(world, access_for(world, ["bastion"]), lines)
    [file_plan] = result.files
    assert [(c.sign, c.reason) for c in file_plan.changes] == [("-", "undeclared")]
    assert file_plan.new_lines == ("# managed by hand", keys["bastion"][0], "garbage line")
    assert result.refused is None


def test_adds_missing_and_restores_declared_options(world: dict[str, object]) -> None:
    keys = world["keys"]
    assert isinstance(keys, dict)
    lines = [keys["bastion"][0]]
    result = plan(world, access_for(world, ["bastion", "newcomer"], 'from="10.0.0.0/8"'), lines)
    [file_plan] = result.files
    assert [c.sign for c in file_plan.changes] == ["~", "+"]
    assert all(line.startswith('from="10.0.0.0/8" ssh-ed25519') for line in file_plan.new_lines)


def test_the_lockout_guard_refuses_unless_allowed(world: dict[str, object]) -> None:
    keys = world["keys"]
    assert isinstance(keys, dict)
    lines = [keys["bastion"][0], keys["alice"][0]]
    refused = plan(world, access_for(world, ["alice"]), lines)
    assert refused.refused is not None and keys["bastion"][1] in refused.refused
    allowed = plan(world, access_for(world, ["alice"]), lines, allow_lockout=True)
    assert allowed.refused is None and allowed.changed


def test_an_unreadable_file_is_never_replaced(world: dict[str, object]) -> None:
    tmp = world["tmp"]
    assert isinstance(tmp, Path)
    (tmp / "access.yaml").write_text(access_for(world, ["alice"]).replace("root", "alice"))
    access = load_access_list(tmp / "access.yaml")
    text = observe([]).replace(
        "@@end\n",
        "@@section keys alice /home/alice/.ssh/authorized_keys\n@@pattern .ssh/authorized_keys\n"
        "@@link /etc/shadow\n@@readerror could not read as alice\n@@end\n",
    )
    seen = parse_probe_output("web1", "127.0.0.1", framed(text), GOLDEN_NONCE)
    result = plan_host(
        seen, access, expected_keys(access, load_inventory(tmp / "inventory.yaml")),
        today=TODAY, own_fingerprints=frozenset(), login_user="root",
    )  # fmt: skip
    assert result.files == [] and not result.changed
    assert any("unreadable as alice; skipped" in note for note in result.notes)


def test_nothing_to_do_is_no_change(world: dict[str, object]) -> None:
    keys = world["keys"]
    assert isinstance(keys, dict)
    result = plan(world, access_for(world, ["bastion"]), [keys["bastion"][0]])
    assert not result.changed and write_script(result.files, "X").count("runuser") == 0


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root")
def test_write_script_backs_up_and_replaces_atomically_as_the_owner(
    world: dict[str, object], tmp_path: Path
) -> None:
    keys = world["keys"]
    assert isinstance(keys, dict)
    target = tmp_path / "ssh" / "authorized_keys"
    target.parent.mkdir(mode=0o700)
    target.write_text(f"{keys['bastion'][0]}\n{keys['intruder'][0]}\n")
    result = plan(world, access_for(world, ["bastion"]), target.read_text().splitlines())
    [file_plan] = result.files
    moved = dataclasses.replace(file_plan, path=str(target))
    script = write_script([moved], "STAMP")
    done = subprocess.run(["sh", "-s"], input=script, text=True, check=False, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"@@written root {target}\n"
    assert target.read_text() == f"{keys['bastion'][0]}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    backup = target.with_name("authorized_keys.bastion-backup-STAMP")
    assert keys["intruder"][0] in backup.read_text()
    assert sorted(p.name for p in target.parent.iterdir()) == [
        "authorized_keys", "authorized_keys.bastion-backup-STAMP"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("options", "needs", "blocked_by"),
    [
        ('from="10.9.9.9"', {}, 'from="10.9.9.9" does not match 127.0.0.1'),
        ('from="127.0.0.0/8"', {}, None),
        ('from="*"', {}, None),
        ('from="127.0.0.*,!127.0.0.1"', {}, "does not match"),
        ('from="bastion.example.org"', {}, "does not match"),
        ('restrict,command="/bin/false"', {}, 'command="/bin/false" replaces every command'),
        ('command="/usr/bin/true"', {}, "replaces every command"),
        ("restrict", {}, None),
        ("restrict", {"needs_pty": True}, "mosh needs one"),
        ("restrict,pty", {"needs_pty": True}, None),
        ("no-pty", {"needs_pty": True}, "mosh needs one"),
        ("no-pty", {}, None),
        ('expiry-time="20200101"', {}, "expiry-time=20200101 is past"),
        ('expiry-time="29991231"', {}, None),
        ('principals="ops"', {}, "trust certificates"),
        ("restrict", {"needs_forwarding": True}, "other hosts are reached through this one"),
        ("restrict,port-forwarding", {"needs_forwarding": True}, None),
        ('permitopen="10.0.0.1:22"', {"needs_forwarding": True}, "no port forwarding"),
    ],
)
def test_the_lockout_guard_counts_options_that_stop_bastions_login_as_removal(
    world: dict[str, object], options: str, needs: dict[str, bool], blocked_by: str | None
) -> None:
    keys = world["keys"]
    assert isinstance(keys, dict)
    result = plan(world, access_for(world, ["bastion"], options), [keys["bastion"][0]], **needs)
    [file_plan] = result.files
    assert file_plan.changed  # the line is rewritten with the declared options
    if blocked_by is None:
        assert result.refused is None
    else:
        assert result.refused is not None and blocked_by in result.refused
        assert result.refused.startswith("would lock bastion out")
        assert plan(world, access_for(world, ["bastion"], options), [keys["bastion"][0]],
                    allow_lockout=True, **needs).refused is None  # fmt: skip


def test_a_usable_line_elsewhere_keeps_the_guard_quiet(world: dict[str, object]) -> None:
    keys = world["keys"]
    assert isinstance(keys, dict)
    tmp = world["tmp"]
    assert isinstance(tmp, Path)
    (tmp / "access.yaml").write_text(access_for(world, ["alice"]))
    access = load_access_list(tmp / "access.yaml")
    text = observe([keys["bastion"][0], keys["alice"][0]]).replace(
        "@@end\n",
        "@@section keys root /root/.ssh/authorized_keys2\n@@pattern .ssh/authorized_keys2\n"
        f"|{keys['bastion'][0]}\n@@end\n",
    )
    seen = parse_probe_output("web1", "127.0.0.1", framed(text), GOLDEN_NONCE)
    result = plan_host(
        seen, access, expected_keys(access, load_inventory(tmp / "inventory.yaml")),
        today=TODAY, own_fingerprints=frozenset({keys["bastion"][1]}), login_user="root",
    )  # fmt: skip
    assert result.refused is None  # bastion still gets in through authorized_keys2
    assert [c.reason for c in result.files[0].changes] == ["undeclared"]
    alone = plan(world, access_for(world, ["alice"]), [keys["bastion"][0], keys["alice"][0]])
    assert alone.refused is not None and "its line would be removed" in alone.refused
