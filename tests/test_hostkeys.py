"""known_hosts writing for --accept-new: atomic, private, idempotent."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from bastion.hostkeys import append_known_host, known_hosts_entry_name, known_hosts_files

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def test_entry_name_uses_brackets_off_port_22() -> None:
    assert known_hosts_entry_name("127.0.1.1", 22) == "127.0.1.1"
    assert known_hosts_entry_name("127.0.1.1", 2222) == "[127.0.1.1]:2222"


def test_append_creates_a_private_file_and_does_not_repeat(tmp_path: Path) -> None:
    path = tmp_path / "ssh" / "known_hosts"
    append_known_host(path, "127.0.1.1", 22, KEY)
    append_known_host(path, "127.0.1.1", 22, KEY)
    append_known_host(path, "127.0.1.2", 2200, KEY + " comment")
    assert path.read_text() == f"127.0.1.1 {KEY}\n[127.0.1.2]:2200 {KEY} comment\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".known_hosts")]


def test_configured_file_replaces_the_defaults() -> None:
    assert known_hosts_files("/x/known") == [Path("/x/known")]
    assert len(known_hosts_files(None)) == 2


def test_a_symlinked_known_hosts_stays_a_symlink_and_its_target_gets_the_line(
    tmp_path: Path,
) -> None:
    real = tmp_path / "dotfiles" / "known_hosts"
    real.parent.mkdir()
    real.write_text(f"127.0.1.9 {KEY}\n")
    real.chmod(0o644)
    link = tmp_path / "ssh" / "known_hosts"
    link.parent.mkdir()
    link.symlink_to("../dotfiles/known_hosts")

    append_known_host(link, "127.0.1.1", 22, KEY)

    assert link.is_symlink() and link.readlink() == Path("../dotfiles/known_hosts")
    assert real.read_text() == f"127.0.1.9 {KEY}\n127.0.1.1 {KEY}\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o644  # the user's mode is kept


_ADDER = """
import sys
from pathlib import Path
from bastion.hostkeys import append_known_host
path, who, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
sys.stdin.readline()  # start together
for n in range(count):
    append_known_host(path, f"{who}.{n}.example.test", 22, sys.argv[4])
"""


def test_two_processes_adding_200_keys_each_keep_all_400(tmp_path: Path) -> None:
    path = tmp_path / "ssh" / "known_hosts"
    adders = [
        subprocess.Popen(
            [sys.executable, "-c", _ADDER, str(path), who, "200", KEY],
            stdin=subprocess.PIPE,
            text=True,
        )
        for who in ("a", "b")
    ]
    for adder in adders:
        assert adder.stdin is not None
        adder.stdin.write("go\n")
        adder.stdin.close()
    for adder in adders:
        assert adder.wait(timeout=300) == 0
    lines = path.read_text().splitlines()
    expected = {f"{who}.{n}.example.test {KEY}" for who in "ab" for n in range(200)}
    assert len(lines) == 400 and set(lines) == expected
