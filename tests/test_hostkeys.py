"""known_hosts writing for --accept-new: atomic, private, idempotent."""

from __future__ import annotations

import stat
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
