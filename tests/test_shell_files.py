"""copy and fetch through exec sessions only (`ShellFiles`), for an sshd without SFTP; and the
tar stream, directory modes and ``--preserve`` mtimes, over SFTP and without it.

The in-process servers of tests/sshserver.py run commands with a real /bin/sh and have no SFTP
subsystem, like a hardened sshd with ``Subsystem sftp`` removed. Names with spaces, a leading
dash, quotes, and a symlink travel both ways; modes and (with --preserve) mtimes are kept.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from bastion.executor import RunOptions, execute_work
from bastion.models import Host, HostResult, Status
from bastion.transfer.copy import CopyOptions, copy_to_host
from bastion.transfer.fetch import FetchOptions, fetch_from_host
from bastion.transfer.sources import plan_copy
from bastion.transfer.work import files_work
from bastion.transport.asyncssh_sftp import _TarReceiver, _TarSender
from bastion.transport.base import ConnectOptions
from bastion.transport.files import TarSink
from tests.hostile_sftp import SftpTestServer
from tests.sshserver import Faults, SSHServerHarness, SSHTestServer, write_known_hosts

NAMES = ["a.txt", " spaced name", "-dash", 'quote\'s "x"', "sub/b.sh", "sub/deep/c"]
NAMES += [f"many/f{n}" for n in range(10)]  # past TAR_FILES: one tar stream when tar is there


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    with SSHServerHarness(tmp_path / "client") as harness:
        yield _host(harness, harness.start_server(), tmp_path)


@pytest.fixture(params=["sftp", "no-sftp"])
def any_host(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Host]:
    """A host with a plain SFTP subsystem, and one without any."""
    with SSHServerHarness(tmp_path / "client") as harness:
        if request.param == "no-sftp":
            server = harness.start_server()
        else:
            server = SftpTestServer(Faults(), harness.client_key, asyncssh.SFTPServer)
            harness._call(server.start())
            harness.servers.append(server)
        yield _host(harness, server, tmp_path)


def _host(harness: SSHServerHarness, server: SSHTestServer, tmp_path: Path) -> Host:
    known = write_known_hosts(tmp_path / "known_hosts", [server])
    return Host(
        "node1",
        server.address,
        port=server.port,
        user="test",
        identity_file=str(harness.identity_file),
        known_hosts=str(known),
    )


def transfer(host: Host, body: object) -> HostResult:
    work = files_work(body, timeout=60)  # type: ignore[arg-type]
    options = RunOptions(connect=ConnectOptions(retries=0))
    [result] = asyncio.run(execute_work([host], options, lambda event: None, work))
    return result


def make_tree(root: Path) -> None:
    for number, name in enumerate(NAMES):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(range(256)) * (number + 1))  # every byte value
    (root / "sub" / "b.sh").chmod(0o755)
    (root / "sub" / "deep" / "c").chmod(0o600)
    (root / "link").symlink_to("a.txt")


@pytest.mark.parametrize("tar", [True, False], ids=["tar-stream", "no-tar"])
def test_copy_then_fetch_a_tree_without_sftp(
    host: Host, tmp_path: Path, tar: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    streams: list[int] = []
    real = _TarSender.put_many

    async def counted(self: _TarSender, root: str, items: list[object], **kw: bool) -> bool:
        streams.append(len(items))
        return await real(self, root, items, **kw) if tar else False  # type: ignore[arg-type]

    monkeypatch.setattr(_TarSender, "put_many", counted)
    reads: list[int] = []
    real_get = _TarReceiver.get_many

    async def counted_get(self: _TarReceiver, paths: list[str], sink: TarSink) -> set[str] | None:
        reads.append(len(paths))
        return await real_get(self, paths, sink) if tar else None

    monkeypatch.setattr(_TarReceiver, "get_many", counted_get)
    source = tmp_path / "src"
    make_tree(source)
    dest = tmp_path / "remote"
    dest.mkdir()
    plan = plan_copy([str(source)], f"{dest}/", recursive=True)

    copied = transfer(
        host,
        lambda files, h, sink: copy_to_host(files, h, plan, f"{dest}/", CopyOptions(), sink),
    )
    assert copied.status is Status.OK, copied
    assert streams == [len(NAMES) + 1]  # every file (and the link's copy) offered as one stream
    for name in NAMES:
        assert (dest / "src" / name).read_bytes() == (source / name).read_bytes(), name
    assert stat.S_IMODE((dest / "src" / "sub" / "b.sh").stat().st_mode) & 0o100

    again = transfer(
        host,
        lambda files, h, sink: copy_to_host(files, h, plan, f"{dest}/", CopyOptions(), sink),
    )
    assert again.status is Status.OK and again.files is not None
    assert again.files.changed == ()  # only what differs is sent, as over SFTP

    os.utime(dest / "src" / "a.txt", (1_000_000_000, 1_000_000_000))
    (dest / "src" / "remote-link").symlink_to("a.txt")
    out = tmp_path / "out"
    fetched = transfer(
        host,
        lambda files, h, sink: fetch_from_host(
            files, h, [str(dest / "src")], out, FetchOptions(recursive=True, preserve=True), sink
        ),
    )
    assert fetched.status is Status.OK, fetched
    assert reads == [len(NAMES) + 1]  # read back as one tar stream too (or file by file)
    local = out / "node1" / str(dest / "src").lstrip("/")
    for name in NAMES:
        assert (local / name).read_bytes() == (source / name).read_bytes(), name
    assert stat.S_IMODE((local / "sub" / "deep" / "c").stat().st_mode) == 0o600
    assert (local / "a.txt").stat().st_mtime == 1_000_000_000
    assert (local / "link").read_bytes() == (source / "a.txt").read_bytes()  # copy followed it
    assert not (local / "remote-link").exists()
    assert f"symlink {dest}/src/remote-link -> a.txt (recorded, not followed)" in fetched.stdout


def test_a_missing_path_without_sftp_is_that_paths_failure(host: Host, tmp_path: Path) -> None:
    result = transfer(
        host,
        lambda files, h, sink: fetch_from_host(
            files, h, [str(tmp_path / "nope")], tmp_path / "out", FetchOptions(), sink
        ),
    )
    assert result.status is Status.FAILED
    assert result.error == f"{tmp_path / 'nope'}: no such file or directory"


@pytest.mark.parametrize("tar", [True, False], ids=["tar-stream", "file-by-file"])
def test_new_directories_keep_their_modes_and_preserve_keeps_mtimes(
    any_host: Host, tmp_path: Path, tar: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not tar:
        monkeypatch.setattr(_TarSender, "put_many", _no_tar)
    source = tmp_path / "app"
    make_tree(source)
    (source / "sub" / "deep").chmod(0o700)
    (source / "many").chmod(0o750)
    for number, path in enumerate(sorted(p for p in source.rglob("*") if p.is_file())):
        os.utime(path, (1_500_000_000 + number, 1_500_000_000 + number))
    dest = tmp_path / "remote"
    dest.mkdir()
    plan = plan_copy([str(source)], f"{dest}/", recursive=True)

    def copy(**options: bool) -> HostResult:
        return transfer(
            any_host,
            lambda files, h, sink: copy_to_host(
                files, h, plan, f"{dest}/", CopyOptions(**options), sink
            ),
        )

    assert copy(preserve=True).status is Status.OK
    for directory in ("sub", "sub/deep", "many", "."):
        local_mode = stat.S_IMODE((source / directory).stat().st_mode)
        assert stat.S_IMODE((dest / "app" / directory).stat().st_mode) == local_mode, directory
    for path in (p for p in source.rglob("*") if p.is_file()):
        remote = dest / "app" / path.relative_to(source)
        assert remote.stat().st_mtime == int(path.stat().st_mtime), remote

    os.utime(dest / "app" / "a.txt", (5, 5))  # same content, other mtime
    again = copy(preserve=True)
    assert again.files is not None and again.files.changed == (str(dest / "app" / "a.txt"),)
    assert f"changed {dest}/app/a.txt (mtime)" in again.stdout
    assert (dest / "app" / "a.txt").stat().st_mtime == int((source / "a.txt").stat().st_mtime)
    unchanged = copy()  # without --preserve, mtimes are not compared
    assert unchanged.files is not None and unchanged.files.changed == ()


async def _no_tar(self: _TarSender, root: str, items: object, **kw: bool) -> bool:
    return False


def test_a_directory_that_cannot_be_made_is_one_failure_counting_its_files(
    any_host: Host, tmp_path: Path
) -> None:
    source = tmp_path / "app"
    make_tree(source)
    plan = plan_copy([str(source)], "/proc/bastion-no-such-dir/", recursive=True)
    result = transfer(
        any_host,
        lambda files, h, sink: copy_to_host(
            files, h, plan, "/proc/bastion-no-such-dir/", CopyOptions(), sink
        ),
    )
    assert result.status is Status.FAILED
    assert result.files is not None and len(result.files.failed) == 1
    [failure] = result.files.failed
    assert failure.path == "/proc/bastion-no-such-dir"
    assert failure.error.startswith("cannot create the directory: ")
    assert f"({len(NAMES) + 1} files not copied)" in failure.error


_LYING_TAR = """#!/bin/sh
# A node's tar that answers every read with a member named by the node, not by bastion.
case "$1" in --version) echo "tar (GNU tar) 1.34"; exit 0;; esac
cat > /dev/null
exec %s -c '
import io, sys, tarfile
out = io.BytesIO()
with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
    for name in sys.argv[1:]:
        data = b"written by a hostile node\\n"
        member = tarfile.TarInfo(name)
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
sys.stdout.buffer.write(out.getvalue())
' "$BASTION_TEST_TAR_NAMES"
"""


@pytest.mark.parametrize("name", ["../../../../escaped", "tmp/not-asked", "/etc/passwd"])
def test_a_tar_stream_naming_files_not_asked_for_fails_the_host_and_writes_nothing(
    host: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    for n in range(10):
        (remote / f"f{n}").write_text("honest\n")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "tar").write_text(_LYING_TAR % sys.executable)
    (fake / "tar").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    monkeypatch.setenv("BASTION_TEST_TAR_NAMES", name)
    out = tmp_path / "out"
    result = transfer(
        host,
        lambda files, h, sink: fetch_from_host(
            files, h, [str(remote)], out, FetchOptions(recursive=True), sink
        ),
    )
    assert result.status is Status.FAILED, result
    assert "which was not asked for as a regular file" in (result.error or ""), result.error
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "hostile" in p.read_text()]
    assert written == [fake / "tar"]
