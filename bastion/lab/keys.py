"""The lab's keys: one client key, one ed25519 host key per node, and the pinned known_hosts.

Keys are generated once and reused by every later `bastion lab up`, so the known_hosts the lab
writes stays valid across restarts and strict host-key checking works without trust on first
use.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.errors import LabError
from bastion.private_files import private_dir, write_private

CLIENT_KEY_NAME = "id_ed25519"
HOST_KEY_NAME = "ssh_host_ed25519_key"
KNOWN_HOSTS_NAME = "known_hosts"
DEFAULT_SSH_PORT = 22


@dataclass(frozen=True, slots=True)
class PinnedHost:
    """One known_hosts entry: the address (and port) a node listens on, and its host key."""

    address: str
    port: int
    public_key: str
    """``"<type> <base64>"``, without the comment."""


def ensure_client_key(lab_dir: Path, keygen: str) -> Path:
    """The lab's client private key (ed25519, no passphrase, 0600), generated if missing."""
    key = lab_dir / CLIENT_KEY_NAME
    _ensure_keys(keygen, [(key, "bastion-lab-client")])
    return key


def ensure_host_keys(keys_dir: Path, names: Sequence[str], keygen: str) -> dict[str, Path]:
    """Each node's host private key, ``keys_dir/<name>/ssh_host_ed25519_key``; missing ones made.

    Generated in parallel: ssh-keygen is cheap, but 200 of them one after another are not.
    """
    paths = {name: private_dir(keys_dir / name) / HOST_KEY_NAME for name in names}
    _ensure_keys(keygen, [(paths[name], f"root@{name}") for name in names])
    return paths


def public_key(private_key: Path) -> str:
    """``"<type> <base64>"`` from the ``.pub`` file beside ``private_key`` (comment dropped)."""
    fields = private_key.with_name(private_key.name + ".pub").read_text(encoding="utf-8").split()
    if len(fields) < 2:
        raise LabError(f"{private_key}.pub: not an OpenSSH public key")
    return f"{fields[0]} {fields[1]}"


def known_hosts_line(host: PinnedHost) -> str:
    """One known_hosts line; ``[addr]:port`` is how OpenSSH and asyncssh look up port != 22."""
    if host.port == DEFAULT_SSH_PORT:
        return f"{host.address} {host.public_key}"
    return f"[{host.address}]:{host.port} {host.public_key}"


def write_known_hosts(path: Path, hosts: Iterable[PinnedHost]) -> None:
    """Write the lab's known_hosts (atomically, 0600) pinning every node's host key."""
    header = (
        "# written by `bastion lab up`: the lab nodes' host keys, pinned (no trust on first use)\n"
    )
    write_private(path, header + "".join(known_hosts_line(h) + "\n" for h in hosts))


def _ensure_keys(keygen: str, wanted: Sequence[tuple[Path, str]]) -> None:
    """Generate each missing (private key path, comment) pair, all ssh-keygen runs at once."""
    missing = [(path, comment) for path, comment in wanted if not _key_pair_exists(path)]
    running: list[tuple[Path, Path, subprocess.Popen[bytes]]] = []
    try:
        for path, comment in missing:
            # Generate under a temporary name and rename: an interrupted run never leaves a
            # half-written key that a later `up` would take for a good one.
            tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
            for stale in (tmp, tmp.with_name(tmp.name + ".pub")):
                stale.unlink(missing_ok=True)
            command = [keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(tmp)]
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            running.append((path, tmp, proc))
        for path, tmp, proc in running:
            output, _ = proc.communicate()
            if proc.returncode != 0:
                message = output.decode(errors="replace").strip()
                raise LabError(f"ssh-keygen failed for {path}: {message}")
            os.chmod(tmp, 0o600)
            # The private key is renamed last: its presence means the pair is complete.
            os.replace(tmp.with_name(tmp.name + ".pub"), path.with_name(path.name + ".pub"))
            os.replace(tmp, path)
    finally:
        for _, _, proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _key_pair_exists(private_key: Path) -> bool:
    return private_key.is_file() and private_key.with_name(private_key.name + ".pub").is_file()
