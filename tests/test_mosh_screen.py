"""Reading pages off a screen (`bastion.transport.mosh_screen`) with pyte, without mosh.

Screens are drawn here as the node's pager draws them, with the checksums computed by the
real `cksum` program; the last tests run the real pager (`wrapper.sh serve`) in a local
pseudo-terminal and read it with `PageReader`, as through mosh but without the network.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pty
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from bastion.durable import script
from bastion.models import Stream
from bastion.transport.mosh_screen import (
    NEXT,
    QUIT,
    REDRAW,
    REDRAW_AFTER_S,
    End,
    Page,
    PageReader,
    page_geometry,
    posix_cksum,
    read_screen,
)

WINDOW = (12, 80)
CLEAR = b"\x1b[H\x1b[2J\r\n"
"""The pager's clear and blank first row (the terminal turns its newlines into CR LF)."""


def cksum(data: bytes) -> int:
    """What the POSIX `cksum` program says of ``data``."""
    done = subprocess.run(["cksum"], input=data, capture_output=True, check=True)
    return int(done.stdout.split()[0])


def page_screen(
    screen: int, stream: str, offset: int, data: bytes, *, crc: int | None = None
) -> bytes:
    """The bytes the pager writes for a page (base64 lines of 40 characters)."""
    fields = f"{screen} {stream} {offset} {len(data)} {offset + len(data)} b64"
    if crc is None:
        crc = cksum(f"{fields}\n".encode() + data)
    text = base64.b64encode(data).decode()
    lines = [text[i : i + 40] for i in range(0, len(text), 40)]
    body = "\r\n".join([f"BASTION-PAGE {fields} {crc}", *lines, f"BASTION-FIN {screen}", ""])
    return CLEAR + body.encode()


def end_screen(screen: int, rc: int, out: int, err: int) -> bytes:
    fields = f"{screen} {rc} 0 {out} {err}"
    crc = cksum(f"{fields}\n".encode())
    return CLEAR + f"BASTION-END {fields} {crc}\r\nBASTION-FIN {screen}\r\n".encode()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Received:
    """What a reader delivered, and the offsets it reads back."""

    def __init__(self) -> None:
        self.offsets: dict[Stream, int] = {"stdout": 0, "stderr": 0}
        self.data: dict[Stream, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

    def __call__(self, stream: Stream, data: bytes) -> None:
        self.offsets[stream] += len(data)
        self.data[stream] += data


def reader(received: Received, clock: Clock | None = None) -> PageReader:
    return PageReader(WINDOW, received.offsets, received, clock or Clock())


def test_the_checksum_is_posix_cksum() -> None:
    for data in (b"", b"a", b"BASTION-PAGE 0 stdout 0 3 3 b64\nabc", bytes(range(256)) * 300):
        assert posix_cksum(data) == cksum(data)


def test_a_complete_page_is_read_and_acknowledged_once() -> None:
    received = Received()
    pages = reader(received)
    data = b"line 1\n\xff\xfe not UTF-8\x00\x1b[2J"
    assert pages.feed(page_screen(0, "stdout", 0, data)) == NEXT
    assert bytes(received.data["stdout"]) == data
    # Drawn again (a redraw, or mosh showing the same state twice): nothing new, no key.
    assert pages.feed(page_screen(0, "stdout", 0, data)) == b""
    assert bytes(received.data["stdout"]) == data
    assert pages.pages == 1


def test_a_half_drawn_page_is_not_accepted() -> None:
    received = Received()
    pages = reader(received)
    full = page_screen(0, "stderr", 0, bytes(range(200)))
    cut_in_data = full.index(b"\r\n", full.index(b"BASTION-PAGE") + 60) + 10
    for cut in (len(CLEAR) + 5, cut_in_data, full.index(b"BASTION-FIN") + 8):
        half = reader(received)
        assert half.feed(full[:cut]) == b"", cut
    assert received.data["stderr"] == b""
    # The rest of the same page arrives: now it counts.
    assert pages.feed(full[:cut_in_data]) == b""
    assert pages.feed(full[cut_in_data:]) == NEXT
    assert bytes(received.data["stderr"]) == bytes(range(200))


def test_a_page_with_a_wrong_checksum_is_not_accepted() -> None:
    received = Received()
    pages = reader(received)
    data = b"hello world\n" * 5
    good = cksum(b"0 stdout 0 60 60 b64\n" + data)
    assert pages.feed(page_screen(0, "stdout", 0, data, crc=good ^ 1)) == b""
    # A header that lies about the offset fails the checksum too.
    lying = page_screen(0, "stdout", 0, data).replace(b" stdout 0 60 ", b" stdout 6 60 ")
    assert pages.feed(lying) == b""
    # A corrupted character in the data (still valid base64) fails it as well.
    corrupt = bytearray(page_screen(0, "stdout", 0, data))
    at = corrupt.index(b"BASTION-PAGE")
    at = corrupt.index(b"\r\n", at) + 3
    corrupt[at] = ord("A") if corrupt[at] != ord("A") else ord("B")
    assert pages.feed(bytes(corrupt)) == b""
    assert received.data["stdout"] == b""
    assert pages.feed(page_screen(0, "stdout", 0, data)) == NEXT


def test_reshown_and_overlapping_pages_are_not_duplicated() -> None:
    received = Received()
    received.offsets["stdout"] = 5  # a previous session already brought 5 bytes
    received.data["stdout"] += b"01234"
    pages = reader(received)
    # The node pages from 0 (it did not know): the first 5 bytes are not added again.
    assert pages.feed(page_screen(3, "stdout", 0, b"0123456789")) == NEXT
    assert pages.feed(page_screen(3, "stdout", 0, b"0123456789")) == b""
    assert pages.feed(page_screen(4, "stdout", 10, b"abc")) == NEXT
    assert pages.feed(page_screen(4, "stdout", 10, b"abc")) == b""
    # An older screen coming back (mosh showing a stale state) is ignored.
    assert pages.feed(page_screen(3, "stdout", 0, b"0123456789")) == b""
    assert bytes(received.data["stdout"]) == b"0123456789abc"
    assert pages.feed(end_screen(5, 7, 13, 0)) == QUIT
    assert pages.end == End(5, 7, False, 13, 0)


def test_a_page_past_the_received_bytes_is_a_protocol_error() -> None:
    received = Received()
    pages = reader(received)
    assert pages.feed(page_screen(0, "stdout", 4, b"late")) == b""
    assert pages.error is not None and "starts at byte 4" in pages.error
    assert pages.finished and received.data["stdout"] == b""


def test_the_end_must_match_what_arrived() -> None:
    received = Received()
    pages = reader(received)
    assert pages.feed(end_screen(0, 0, 3, 0)) == b""
    assert pages.end is None
    assert pages.error is not None and "3 and 0 bytes" in pages.error


def test_a_redraw_is_asked_for_when_no_new_screen_comes() -> None:
    received = Received()
    clock = Clock()
    pages = reader(received, clock)
    assert pages.tick() == b""
    clock.now = REDRAW_AFTER_S + 0.1
    assert pages.tick() == REDRAW
    assert pages.tick() == b""  # not again at once
    waiting = CLEAR + b"BASTION-WAIT 0 0 0\r\nBASTION-FIN 0\r\n"
    assert pages.feed(waiting) == b""
    clock.now += 3 * REDRAW_AFTER_S
    assert pages.tick() == b""  # the node is waiting for output: nothing to redraw
    assert pages.feed(page_screen(1, "stdout", 0, b"x")) == NEXT
    clock.now += REDRAW_AFTER_S + 0.1
    assert pages.tick() == REDRAW
    assert pages.redraws == 2


def test_read_screen_ignores_the_mosh_notification_bar() -> None:
    data = b"abc"
    crc = cksum(b"2 stderr 0 3 3 b64\n" + data)
    rows = [
        "mosh: Last contact 12 seconds ago.  [To quit: Ctrl-^ .]",
        f"BASTION-PAGE 2 stderr 0 3 3 b64 {crc}",
        base64.b64encode(data).decode(),
        "BASTION-FIN 2",
    ]
    assert read_screen(rows) == Page(2, "stderr", 0, data)
    assert read_screen(rows[:-1]) is None
    assert read_screen([*rows[:-1], "BASTION-FIN 1"]) is None


def run_pager(tmp_path: Path, command: str) -> tuple[Received, End, list[str]]:
    """Run the real pager (`wrapper.sh serve`) in a local pty and read it with PageReader.

    Returns what arrived, the end screen, and the job directories left afterwards.
    """
    home = tmp_path / "home"
    home.mkdir()
    received = Received()
    pages = PageReader(WINDOW, received.offsets, received)
    argv = script.serve("local-job", command, None, (0, 0), page_geometry(WINDOW))
    master, slave = pty.openpty()
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "SHELL": "/bin/sh", "LC_ALL": "C"}
    process = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    deadline = time.monotonic() + 60
    try:
        while process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if keys := pages.feed(data):
                    os.write(master, keys)
            elif keys := pages.tick():
                os.write(master, keys)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        os.close(master)
    assert pages.error is None
    assert pages.end is not None
    assert process.returncode == 0  # it left on the QUIT key
    return received, pages.end, [p.name for p in (home / ".bastion" / "jobs").iterdir()]


@pytest.mark.skipif(shutil.which("setsid") is None, reason="the pager needs setsid")
def test_the_real_pager_pages_binary_output_byte_exact(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(bytes(range(256)) * 20 + b"\xc3\x28 invalid UTF-8 \xff" + os.urandom(3000))
    received, end, left = run_pager(
        tmp_path, f"cat {blob}; printf 'e1\\ne2\\n' >&2; sleep 0.3; echo tail; exit 5"
    )
    expected = blob.read_bytes() + b"tail\n"
    assert hashlib.sha256(received.data["stdout"]).digest() == hashlib.sha256(expected).digest()
    assert bytes(received.data["stderr"]) == b"e1\ne2\n"
    assert (end.rc, end.timed_out, left) == (5, False, [])
