"""fetch against a node that lies about file names (CVE-2019-6111 class) and local symlinks.

A hostile sftp-server lists names such as ``../../x``, ``a/b``, ``..``, an empty name or a NUL,
and symlinks pointing out of the tree (tests/hostile_sftp.py). Whatever it sends, nothing may
be written outside LOCALDIR/HOST, the host fails with the reason, and other hosts are fine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from bastion.executor import RunOptions, execute_work
from bastion.models import Host, HostResult, Status
from bastion.transfer.fetch import FetchOptions, fetch_from_host, refused_name
from bastion.transfer.work import files_work
from bastion.transport.base import ConnectOptions
from tests.hostile_sftp import PAYLOAD, Listed, run_bastion, start_hostile_sftp, write_inventory
from tests.sshserver import SSHServerHarness, write_known_hosts

DIR = asyncssh.FILEXFER_TYPE_DIRECTORY
LINK = asyncssh.FILEXFER_TYPE_SYMLINK


@pytest.fixture
def ssh(tmp_path: Path) -> Iterator[SSHServerHarness]:
    with SSHServerHarness(tmp_path / "client") as harness:
        yield harness


def payload_outside(top: Path, inside: Path) -> set[Path]:
    """Files under ``top`` (the test's whole directory) holding the node's bytes, not inside."""
    return {
        p
        for p in top.rglob("*")
        if p.is_file()
        and p.name != ".payload"
        and not p.is_relative_to(inside)
        and p.read_bytes() == PAYLOAD
    }


def fetch(
    ssh: SSHServerHarness, tmp_path: Path, listing: list[Listed], paths: list[str], **opts: bool
) -> tuple[HostResult, Path]:
    server = start_hostile_sftp(ssh, tmp_path / "node", listing)
    known = write_known_hosts(tmp_path / "known_hosts", [server])
    host = Host(
        "node1",
        server.address,
        port=server.port,
        user="test",
        identity_file=str(ssh.identity_file),
        known_hosts=str(known),
    )
    local = tmp_path / "deep" / "er" / "out"
    local.mkdir(parents=True, mode=0o700, exist_ok=True)
    work = files_work(
        lambda files, h, sink: fetch_from_host(files, h, paths, local, FetchOptions(**opts), sink),
        timeout=30,
    )
    options = RunOptions(connect=ConnectOptions(retries=0))
    [result] = asyncio.run(execute_work([host], options, lambda event: None, work))
    return result, local


@pytest.mark.parametrize(
    "name",
    [
        b"../../../../escaped",
        b"a/b",
        b"/abs/olute",
        b"..",
        b".",
        b"",
        b"nul\x00byte",
    ],
    ids=["dotdot-path", "slash", "absolute", "dotdot", "dot", "empty", "nul"],
)
@pytest.mark.parametrize("kind", [asyncssh.FILEXFER_TYPE_REGULAR, DIR])
def test_a_hostile_entry_name_fails_the_host_and_writes_nothing_outside(
    ssh: SSHServerHarness, tmp_path: Path, name: bytes, kind: int
) -> None:
    listing = [Listed(b"honest.txt"), Listed(name, kind)]
    result, local = fetch(ssh, tmp_path, listing, ["/evil"], recursive=True)

    assert payload_outside(tmp_path, local / "node1") == set()
    if name in (b".", b"..") and kind == DIR:  # every server lists these: skipped, never walked
        assert result.status is Status.OK, result
        return
    assert result.status is Status.FAILED, result
    assert (
        result.error is not None and "refusing a directory entry sent by the host" in result.error
    )
    assert (local / "node1" / "evil" / "honest.txt").read_bytes() == PAYLOAD
    assert [p.name for p in (local / "node1").rglob("*") if p.is_file()] == ["honest.txt"]


def test_remote_symlinks_are_recorded_and_not_followed(
    ssh: SSHServerHarness, tmp_path: Path
) -> None:
    listing = [
        Listed(b"to-shadow", LINK, b"/etc/shadow"),
        Listed(b"to-root", LINK, b"../../../.."),
        Listed(b"plain", asyncssh.FILEXFER_TYPE_REGULAR),
    ]
    result, local = fetch(ssh, tmp_path, listing, ["/evil"], recursive=True)

    assert result.status is Status.OK, result
    assert "symlink /evil/to-shadow -> /etc/shadow (recorded, not followed)" in result.stdout
    assert "symlink /evil/to-root -> ../../../.. (recorded, not followed)" in result.stdout
    host_dir = local / "node1" / "evil"
    assert sorted(p.name for p in host_dir.iterdir()) == ["plain"]


def test_a_planted_local_symlink_inside_the_host_directory_is_not_followed(
    ssh: SSHServerHarness, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    local = tmp_path / "deep" / "er" / "out"
    (local / "node1").mkdir(parents=True, mode=0o700)
    (local / "node1" / "evil").symlink_to(elsewhere)
    (tmp_path / "node").mkdir()
    (tmp_path / "node" / "etc").mkdir()
    (tmp_path / "node" / "etc" / "hostname").write_text("node1\n")
    (local / "node1" / "etc").symlink_to(elsewhere)
    result, _ = fetch(ssh, tmp_path, [Listed(b"x")], ["/evil", "/etc/hostname"], recursive=True)

    assert list(elsewhere.iterdir()) == []
    assert result.status is Status.FAILED, result
    assert result.error is not None and "symlink here: refusing to follow it" in result.error


def test_a_single_file_fetch_replaces_a_planted_symlink_and_never_writes_through_it(
    ssh: SSHServerHarness, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    local = tmp_path / "deep" / "er" / "out"
    (local / "node1" / "evil").mkdir(parents=True, mode=0o700)
    (local / "node1" / "evil" / "file").symlink_to(victim)
    result, _ = fetch(ssh, tmp_path, [], ["/evil/file"])

    assert result.status is Status.OK, result
    assert victim.read_text() == "precious\n"
    assert (local / "node1" / "evil" / "file").read_bytes() == PAYLOAD
    assert not (local / "node1" / "evil" / "file").is_symlink()


def test_the_cli_fails_that_host_names_the_refusal_and_writes_nothing_outside(
    ssh: SSHServerHarness, tmp_path: Path
) -> None:
    hostile = start_hostile_sftp(ssh, tmp_path / "node-a", [Listed(b"../../../../../escaped")])
    honest = start_hostile_sftp(ssh, tmp_path / "node-b", [Listed(b"fine")])
    known = write_known_hosts(tmp_path / "known_hosts", [hostile, honest])
    inventory = write_inventory(tmp_path / "inv.yaml", ssh, known, [hostile, honest])
    local = tmp_path / "a" / "b" / "out"

    done = run_bastion(
        ["fetch", "-i", str(inventory), "--all", "-r", "/evil", str(local)], tmp_path / "home"
    )

    assert payload_outside(tmp_path, local / "node2") == set()
    assert done.returncode == 1, done.stderr
    assert "refusing a directory entry sent by the host" in done.stdout + done.stderr
    assert (local / "node2" / "evil" / "fine").read_bytes() == PAYLOAD


@pytest.mark.parametrize(
    ("name", "why"),
    [("", "empty"), (".", "'.'"), ("..", "'..'"), ("a/b", "'/'"), ("a\0b", "NUL"), ("ok", None)],
)
def test_refused_names(name: str, why: str | None) -> None:
    reason = refused_name(name)
    assert (reason is None) if why is None else (reason is not None and why in reason)


def test_the_playbook_fetch_step_never_writes_through_a_planted_symlink(
    ssh: SSHServerHarness, tmp_path: Path
) -> None:
    server = start_hostile_sftp(ssh, tmp_path / "node", [Listed(b"file")])
    known = write_known_hosts(tmp_path / "known_hosts", [server])
    inventory = write_inventory(tmp_path / "inv.yaml", ssh, known, [server])
    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir(mode=0o700)
    (out / "node1").symlink_to(elsewhere)
    playbook = tmp_path / "get.yaml"
    playbook.write_text(
        "name: get\nhosts: --all\nsteps:\n"
        f'  - name: get\n    fetch: {{src: /evil/file, dest: "{out}/"}}\n'
    )

    done = run_bastion(["play", str(playbook), "-i", str(inventory)], tmp_path / "home")

    assert done.returncode == 1, done.stdout + done.stderr
    assert list(elsewhere.iterdir()) == []
    assert "symlink" in done.stdout + done.stderr
    (out / "node1").unlink()
    done = run_bastion(["play", str(playbook), "-i", str(inventory)], tmp_path / "home")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / "node1" / "evil" / "file").read_bytes() == PAYLOAD
