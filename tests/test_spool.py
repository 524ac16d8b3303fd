"""The spool: small outputs in memory, large ones in a private file, read back in pieces."""

from __future__ import annotations

import errno
import gc
import os
import stat
import weakref
from pathlib import Path

import pytest

from bastion.models import HostOutput
from bastion.spool import Spool, SpoolDirectory, SpoolSet


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_small_output_stays_in_memory(tmp_path: Path) -> None:
    directory = SpoolDirectory(str(tmp_path))
    spool = Spool(directory, "stdout", limit=10)
    spool.write("hello\n")
    assert (spool.spilled, spool.text(), spool.chars) == (False, "hello\n", 6)
    assert directory.path is None and list(tmp_path.iterdir()) == []


def test_a_large_output_moves_to_a_private_file_and_reads_back_whole(tmp_path: Path) -> None:
    directory = SpoolDirectory(str(tmp_path))
    spool = Spool(directory, "stdout", limit=10, hashed=True)
    pieces = ["héllo\n", "wörld, and more\n", "☃" * 40]
    for piece in pieces:
        spool.write(piece)
    assert spool.spilled and directory.path is not None
    assert _mode(directory.path) == 0o700
    (spilled,) = directory.path.iterdir()
    assert _mode(spilled) == 0o600
    assert spilled.read_text(encoding="utf-8") == "".join(pieces)
    assert next(iter(spool.chunks(size=7))) == "héllo\nw"
    assert spool.text() == "".join(pieces) and spool.chars == len("".join(pieces))
    in_memory = Spool(directory, "stdout", limit=10_000, hashed=True)
    in_memory.write("".join(pieces))
    assert in_memory.digest == spool.digest
    spool.discard()
    assert not spilled.exists()


def test_a_spool_set_keeps_hosts_apart_and_removes_its_directory(tmp_path: Path) -> None:
    spools = SpoolSet(limit=4, parent=str(tmp_path))
    spools.add(HostOutput("a", "stdout", "aaaaaaaa\n"))
    spools.add(HostOutput("b", "stdout", "b\n"))
    spools.add(HostOutput("a", "stderr", "oops\n"))
    spools.seal("a")
    spools.add(HostOutput("a", "stdout", "more\n"))  # reopened for appending
    a_out, b_out = spools.get("a", "stdout"), spools.get("b", "stdout")
    assert a_out is not None and b_out is not None
    assert (a_out.text(), b_out.text()) == ("aaaaaaaa\nmore\n", "b\n")
    assert spools.get("b", "stderr") is None
    assert next(p.name for p in tmp_path.iterdir()).startswith("bastion-spool-")
    spools.close()
    assert list(tmp_path.iterdir()) == []


def test_a_removed_directory_leaves_no_exit_handler_behind(tmp_path: Path) -> None:
    # The exit handler is the clean-up for a run that ends early; once the directory is
    # removed it must go, or a process running many fan-outs (play) gathers one per run.
    spools = SpoolSet(limit=1, parent=str(tmp_path))
    spools.add(HostOutput("a", "stdout", "spilled\n"))
    assert spools.directory.path is not None
    directory = weakref.ref(spools.directory)
    spools.close()
    assert list(tmp_path.iterdir()) == []
    del spools
    gc.collect()
    assert directory() is None, "the exit handler still holds the removed directory"


def test_an_unusable_temporary_directory_keeps_a_bounded_start_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    directory = SpoolDirectory(str(not_a_dir))  # mkdtemp fails: as on a full or read-only /tmp
    spool = Spool(directory, "stdout", limit=10)
    pieces = ["0123456789", "abcdef", "ghij"]
    for piece in pieces:
        spool.write(piece)
    assert not spool.spilled and spool.text() == "0123456789"  # never more than the limit
    assert (spool.chars, spool.dropped) == (20, 10)
    other = Spool(directory, "stderr", limit=10)  # later spools do not try the disk again
    other.write("x" * 25)
    assert (other.text(), other.dropped) == ("x" * 10, 15)
    warning = capsys.readouterr().err
    assert warning.count("cannot spill large output to disk") == 1, warning
    assert str(not_a_dir) in warning and "the rest is cut" in warning


def test_a_disk_that_fills_mid_output_keeps_what_is_whole_and_cuts_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = SpoolDirectory(str(tmp_path))
    spool = Spool(directory, "stdout", limit=4)
    spool.write("abcd")
    spool.write("efgh")  # spilled: abcdefgh on disk
    assert spool.spilled
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        if len(data) > 3:
            return real_write(fd, data[:3])  # a partial write, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("bastion.spool.os.write", half_then_full)
    spool.write("ijklmnop")
    spool.write("qr")
    assert spool.text() == "abcdefgh"  # the partial "ijk" trimmed off, nothing repeated
    assert spool.dropped == 10
    assert "No space left on device" in capsys.readouterr().err


def test_a_spool_set_names_the_hosts_whose_output_was_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    spools = SpoolSet(limit=4, parent=str(not_a_dir))
    for host in ("node1", "node2", "node3"):
        spools.add(HostOutput(host, "stdout", "12345678" if host != "node3" else "1\n"))
    spools.discard("node1")
    spools.close()
    err = capsys.readouterr().err
    assert "output cut for node[1-2]" in err, err
