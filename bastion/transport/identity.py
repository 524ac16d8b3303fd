"""Local key files checked before any host is contacted: a bad ``identity_file`` is the user's
input error (exit 2), never a fleet of "unreachable" hosts (exit 3).

ssh, given an ``IdentityFile`` it cannot use, warns and goes on with the other keys (ssh-agent,
``~/.ssh/id_*``). bastion's ``identity_file`` comes from the inventory, where a wrong path is a
mistake to fix, so: a file that is missing, a directory, unreadable or not a private key stops
the run with one line naming the host and the file. An encrypted key (bastion never prompts)
is used through ssh-agent when one runs (a warning says so, as ssh would go on), and stops the
run when none does.

Only the file's framing is read here (PEM armour, the ``openssh-key-v1`` header with its cipher
name): no cryptography is imported, so a warm run through the agent stays cheap.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bastion.errors import InventoryError
from bastion.models import Host

READ_LIMIT = 256 * 1024
"""More than any private key file; a larger file is not one."""
OPENSSH_MAGIC = b"openssh-key-v1\0"

_warned: set[str] = set()


@dataclass(frozen=True, slots=True)
class KeyProblem:
    """Why an identity file cannot be used as it is; ``fatal`` unless ssh-agent can stand in."""

    message: str
    fatal: bool


def key_file_problem(path: Path, *, agent: bool) -> KeyProblem | None:
    """What is wrong with ``path`` as a private key, or None when it looks usable."""
    head = _read_head(path)
    if isinstance(head, str):
        return KeyProblem(head, fatal=True)
    if len(head) > READ_LIMIT or not _is_private_key(head):
        return KeyProblem("is not a private key (no PRIVATE KEY block)", fatal=True)
    if not _is_encrypted(head):
        return None
    if agent:
        return KeyProblem(
            "is encrypted (bastion never asks for a passphrase); using ssh-agent's keys",
            fatal=False,
        )
    return KeyProblem(
        "is encrypted and no ssh-agent runs (SSH_AUTH_SOCK): bastion never asks for a "
        "passphrase; add it to ssh-agent (ssh-add), or use an unencrypted key",
        fatal=True,
    )


def check_identity_files(hosts: Iterable[Host]) -> None:
    """Refuse, before connecting, an unusable ``identity_file`` of any host (or jump host).

    Raises `InventoryError` (exit 2) naming the first host and file; an encrypted key with
    ssh-agent running is one warning line on stderr, once per file.
    """
    agent = bool(os.environ.get("SSH_AUTH_SOCK"))
    checked: dict[str, KeyProblem | None] = {}
    for host in hosts:
        if not host.identity_file:
            continue
        name = host.identity_file
        if name not in checked:
            checked[name] = key_file_problem(Path(name).expanduser(), agent=agent)
        problem = checked[name]
        if problem is None:
            continue
        if problem.fatal:
            raise InventoryError(f"host {host.name}: identity_file {name} {problem.message}")
        if name not in _warned:
            _warned.add(name)
            sys.stderr.write(f"bastion: warning: identity_file {name} {problem.message}\n")
            sys.stderr.flush()


def _read_head(path: Path) -> bytes | str:
    """The start of a key file (one byte past `READ_LIMIT`), or why it cannot be read."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            return "is a directory, not a key file"
        if not stat.S_ISREG(info.st_mode):
            return "is not a regular file"
        with open(path, "rb") as file:
            return file.read(READ_LIMIT + 1)
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot read it: {exc.strerror}"


def encrypted_key(path: str) -> bool:
    """Whether ``path`` is an encrypted private key (the transports then use ssh-agent)."""
    try:
        with open(Path(path).expanduser(), "rb") as file:
            head = file.read(READ_LIMIT)
    except OSError:
        return False
    return _is_private_key(head) and _is_encrypted(head)


def _is_private_key(head: bytes) -> bool:
    return b"-----BEGIN " in head and b"PRIVATE KEY-----" in head


def _is_encrypted(head: bytes) -> bool:
    if b"BEGIN ENCRYPTED PRIVATE KEY" in head or b"Proc-Type: 4,ENCRYPTED" in head:
        return True
    if b"BEGIN OPENSSH PRIVATE KEY" not in head:
        return False
    body = head.split(b"-----BEGIN OPENSSH PRIVATE KEY-----", 1)[1]
    body = body.split(b"-----END", 1)[0]
    try:
        blob = base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    if not blob.startswith(OPENSSH_MAGIC):
        return False
    rest = blob[len(OPENSSH_MAGIC) :]
    size = int.from_bytes(rest[:4], "big")
    return rest[4 : 4 + size] not in (b"none", b"")
