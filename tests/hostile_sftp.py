"""Test harness: an in-process SFTP server that lies about file names, for fetch's defences.

It serves a real directory (``root``, chrooted), except the directory ``/evil``, whose listing
is whatever the test chooses: names such as ``../../x``, ``a/b``, ``..``, an empty name, a NUL,
or symlinks pointing anywhere. Every file below ``/evil`` reads as `PAYLOAD`. This is what a
compromised node's sftp-server can send (the scp/sftp client bug class of CVE-2019-6111).

Not part of bastion; built on `tests.sshserver` (same keys, same loopback-only rule). Also a
tiny helper to run the real ``bastion`` CLI against such servers from an inventory file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from tests.sshserver import Faults, SSHServerHarness, SSHTestServer

PAYLOAD = b"written by a hostile node\n"
EVIL = b"/evil"


@dataclass(frozen=True, slots=True)
class Listed:
    """One entry of the hostile listing: a raw name, its claimed type, a symlink's target."""

    name: bytes
    kind: int = asyncssh.FILEXFER_TYPE_REGULAR
    target: bytes = b""


class HostileSFTPServer(asyncssh.SFTPServer):
    """Honest for ``root``, a liar below ``/evil``."""

    def __init__(
        self, chan: asyncssh.SSHServerChannel, root: Path, listing: Sequence[Listed]
    ) -> None:
        super().__init__(chan, chroot=os.fsencode(root))
        self._listing = list(listing)
        self._payload = root / ".payload"
        self._payload.write_bytes(PAYLOAD)

    @staticmethod
    def _evil(path: bytes) -> bool:
        return path == EVIL or path.startswith(EVIL + b"/")

    def _attrs(self, kind: int) -> asyncssh.SFTPAttrs:
        # SFTP v3 sends no type: the client reads it from the S_IFMT bits of the mode.
        mode = {
            asyncssh.FILEXFER_TYPE_DIRECTORY: 0o40755,
            asyncssh.FILEXFER_TYPE_SYMLINK: 0o120777,
        }.get(kind, 0o100644)
        return asyncssh.SFTPAttrs(type=kind, size=len(PAYLOAD), permissions=mode, mtime=1)

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        if path == EVIL:
            for entry in self._listing:
                yield asyncssh.SFTPName(entry.name, attrs=self._attrs(entry.kind))
            return
        async for name in super().scandir(path):
            yield name

    def stat(self, path: bytes) -> object:
        if path == EVIL:
            return self._attrs(asyncssh.FILEXFER_TYPE_DIRECTORY)
        if self._evil(path):  # what a followed symlink, or any odd name, claims to be
            return self._attrs(asyncssh.FILEXFER_TYPE_REGULAR)
        return super().stat(path)

    def lstat(self, path: bytes) -> object:
        return self.stat(path)

    def readlink(self, path: bytes) -> bytes:
        for entry in self._listing:
            if path == EVIL + b"/" + entry.name:
                return entry.target
        raise asyncssh.SFTPNoSuchFile("not a link")

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        if self._evil(path):
            return self._payload.open("rb")
        return super().open(path, pflags, attrs)


class SftpTestServer(SSHTestServer):
    """An `SSHTestServer` that also runs an SFTP subsystem made by ``sftp_factory``."""

    def __init__(
        self,
        faults: Faults,
        client_key: asyncssh.SSHKey,
        sftp_factory: Callable[[asyncssh.SSHServerChannel], asyncssh.SFTPServer],
    ) -> None:
        super().__init__("127.0.0.1", faults, client_key)
        self._sftp_factory = sftp_factory

    async def start(self) -> None:
        from tests.sshserver import _ServerConnection  # the same counting callbacks

        self._acceptor = await asyncssh.create_server(
            lambda: _ServerConnection(self),
            self.address,
            0,
            server_host_keys=[self.presented_key],
            process_factory=self._run_command,
            sftp_factory=self._sftp_factory,
            encoding=None,
        )
        self.port = self._acceptor.get_port()


def start_hostile_sftp(
    harness: SSHServerHarness, root: Path, listing: Sequence[Listed] = ()
) -> SftpTestServer:
    """Start a server on 127.0.0.1 whose SFTP subsystem is a `HostileSFTPServer` over ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    server = SftpTestServer(
        Faults(),
        harness.client_key,
        lambda chan: HostileSFTPServer(chan, root, listing),
    )
    harness._call(server.start())
    harness.servers.append(server)
    return server


def write_inventory(
    path: Path, harness: SSHServerHarness, known_hosts: Path, servers: Sequence[SSHTestServer]
) -> Path:
    """An inventory naming each server node1, node2, ... with the harness's key."""
    lines = [
        "defaults:",
        "  user: test",
        f"  identity_file: {harness.identity_file}",
        f"  known_hosts: {known_hosts}",
        "hosts:",
    ]
    for number, server in enumerate(servers, start=1):
        lines += [f"  node{number}:", f"    address: {server.address}", f"    port: {server.port}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_bastion(
    args: Sequence[str], home: Path, *, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process, with its own HOME and state directory."""
    environment = {
        **os.environ,
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / "state"),
        "BASTION_HISTORY_FILE": str(home / "state" / "history.jsonl"),
        "XDG_RUNTIME_DIR": str(home / "run"),  # never another session's agent
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )
