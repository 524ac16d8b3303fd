"""Records never cost the run: a full disk for --out-dir, the spool or the history.

A 1 MiB tmpfs (root only) stands for a full disk. Whatever cannot be written is one warning
line; the streamed output, the summary and the exit code stay those of the hosts, and a host is
never "unreachable" for a local disk problem. An --out-dir that cannot be used at all is exit 2
before any host is contacted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.spool import SPILL_CHARS
from tests.hostile_sftp import run_bastion, start_hostile_sftp, write_inventory
from tests.sshserver import SSHServerHarness, SSHTestServer, write_known_hosts

BIG = "head -c 3000000 /dev/zero | tr '\\0' a | fold -w 99"
BIG_LINES = 3000000 // 99 + 1


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    path = tmp_path / "tiny"
    path.mkdir(mode=0o700)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[list[SSHTestServer], Path]]:
    with SSHServerHarness(tmp_path / "client") as harness:
        servers = [start_hostile_sftp(harness, tmp_path / f"node{n}") for n in (1, 2)]
        known = write_known_hosts(tmp_path / "known_hosts", servers)
        yield servers, write_inventory(tmp_path / "inv.yaml", harness, known, servers)


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("bastion: warning:")]


def test_a_full_out_dir_is_one_warning_and_the_run_is_the_hosts(
    tiny: Path, hosts: tuple[list[SSHTestServer], Path], tmp_path: Path
) -> None:
    _, inventory = hosts
    done = run_bastion(
        ["run", "-i", str(inventory), "--all", "--out-dir", f"{tiny}/run", BIG], tmp_path / "home"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(done.stdout.splitlines()) == 2 * BIG_LINES  # streaming kept every line
    [warning] = warnings_of(done.stderr)
    assert "cannot write the --out-dir record" in warning and "No space left" in warning
    assert "unreachable" not in done.stderr and "Traceback" not in done.stderr


def test_stdout_on_a_full_disk_is_one_warning_and_the_exit_code_is_the_hosts(
    tiny: Path, hosts: tuple[list[SSHTestServer], Path], tmp_path: Path
) -> None:
    _, inventory = hosts
    home = tmp_path / "home"
    command = [sys.executable, "-m", "bastion", "run", "-i", str(inventory), "--all", BIG]
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_RUNTIME_DIR": str(home / "run"),
    }
    with (tiny / "out.txt").open("w") as out:
        done = subprocess.run(
            command, stdout=out, stderr=subprocess.PIPE, text=True, env=env, check=False
        )
    assert done.returncode == 0, done.stderr[-2000:]
    [warning] = warnings_of(done.stderr)
    assert "cannot write stdout (No space left on device)" in warning
    assert "2 ok" in done.stderr and "Traceback" not in done.stderr


def test_a_full_history_disk_is_one_warning(
    tiny: Path, hosts: tuple[list[SSHTestServer], Path], tmp_path: Path
) -> None:
    _, inventory = hosts
    (tiny / "state").mkdir(mode=0o700)
    with (tiny / "filler").open("wb") as filler, pytest.raises(OSError):
        while True:
            filler.write(b"x" * 65536)
            filler.flush()
    done = run_bastion(
        ["run", "-i", str(inventory), "--all", "echo hi"],
        tmp_path / "home",
        env={"BASTION_HISTORY_FILE": f"{tiny}/state/history.jsonl"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("hi") == 2
    [warning] = warnings_of(done.stderr)
    assert "cannot write the history" in warning and "No space left" in warning


def test_a_full_tmpdir_cuts_json_output_at_the_spool_limit_never_memory(
    tiny: Path, hosts: tuple[list[SSHTestServer], Path], tmp_path: Path
) -> None:
    _, inventory = hosts
    done = run_bastion(
        ["run", "-i", str(inventory), "--all", "-o", "json", BIG],
        tmp_path / "home",
        env={"TMPDIR": str(tiny)},
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(r["host"] for r in records) == ["node1", "node2"]
    assert all(r["status"] == "ok" for r in records)
    assert all(len(r["stdout"]) <= SPILL_CHARS for r in records), [
        len(r["stdout"]) for r in records
    ]
    assert all(r["stdout"].startswith("a" * 99 + "\n") for r in records)
    found = warnings_of(done.stderr)
    assert any("cannot spill large output to disk" in w for w in found), done.stderr
    assert any("output cut for node" in w for w in found), done.stderr
    assert list(tiny.iterdir()) == []  # the spool's directory is removed


def test_a_fetch_onto_a_full_disk_fails_the_path_not_the_connection(
    tiny: Path, hosts: tuple[list[SSHTestServer], Path], tmp_path: Path
) -> None:
    _, inventory = hosts
    for n in (1, 2):
        (tmp_path / f"node{n}" / "big").write_bytes(b"b" * 3_000_000)
    done = run_bastion(
        ["fetch", "-i", str(inventory), "--all", "/big", f"{tiny}/fetched"], tmp_path / "home"
    )
    assert done.returncode == 1, done.stderr
    assert "No space left on device" in done.stdout + done.stderr
    assert "unreachable" not in done.stderr


@pytest.mark.parametrize("kind", ["a file", "a file as parent", "uncreatable"])
def test_an_unusable_out_dir_is_exit_2_before_any_host(
    kind: str, hosts: tuple[list[SSHTestServer], Path], tmp_path: Path
) -> None:
    servers, inventory = hosts
    plain = tmp_path / "plain"
    plain.write_text("")
    out_dir = {
        "a file": plain,
        "a file as parent": plain / "run",
        "uncreatable": Path("/proc/bastion-no-such/run"),
    }[kind]
    for command in (["run", "--out-dir", str(out_dir), "true"], ["fetch", "/f", str(out_dir)]):
        done = run_bastion(
            [command[0], "-i", str(inventory), "--all", *command[1:]], tmp_path / "h"
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("bastion: error: "), done.stderr
        assert all(server.connections == 0 for server in servers)


def test_check_output_file_refuses_a_directory_and_a_missing_parent(tmp_path: Path) -> None:
    from bastion.private_files import UnsafeLocation, check_output_file

    check_output_file(tmp_path / "report.html")
    for bad, why in ((tmp_path, "is a directory"), (tmp_path / "no" / "r.html", "does not exist")):
        with pytest.raises(UnsafeLocation, match=why):
            check_output_file(bad)
