"""Where the agent's socket, lock and log live, and the checks that make that place private.

The directory is ``$XDG_RUNTIME_DIR/bastion``, else ``/tmp/bastion-<uid>``. It must be a real
directory (not a symlink) owned by the user and writable by nobody else: anyone who could put
a socket there could receive the commands and standard input of the user's runs.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
from pathlib import Path

from bastion.errors import EnvironmentProblem

SOCKET_NAME = "agent.sock"
LOCK_NAME = "agent.lock"
LOG_NAME = "agent.log"
_CREDENTIALS = struct.Struct("3i")


def runtime_dir() -> Path:
    """The agent's directory (not created, not checked)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return Path(base) / "bastion"
    # Checked before use (owner, mode, not a symlink): see `check_private_dir`.
    return Path("/tmp") / f"bastion-{os.getuid()}"  # noqa: S108


def socket_path() -> Path:
    return runtime_dir() / SOCKET_NAME


def check_private_dir(path: Path) -> str | None:
    """Why ``path`` is not a safe place for the agent's socket, or None when it is."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return f"{path} does not exist"
    except OSError as exc:
        return f"cannot inspect {path}: {exc.strerror}"
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a directory"
    if info.st_uid != os.getuid():
        return f"{path} is owned by uid {info.st_uid}, not by you (uid {os.getuid()})"
    if info.st_mode & 0o022:
        return f"{path} is writable by others (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def ensure_private_dir() -> Path:
    """Create the agent's directory 0700, or check the one there; raises `EnvironmentProblem`."""
    path = runtime_dir()
    try:
        try:
            path.mkdir(mode=0o700, parents=False)
        except FileExistsError:
            pass
        except FileNotFoundError:  # $XDG_RUNTIME_DIR itself is missing
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot create {exc.filename or path}: {exc.strerror or exc}"
        ) from exc
    problem = check_private_dir(path)
    if problem is not None:
        raise EnvironmentProblem(f"refusing the agent directory: {problem}")
    return path


def find_socket() -> tuple[Path | None, str | None]:
    """The agent's socket if one is there, and why it must not be used (None when it may).

    No socket at all is ``(None, None)``: no agent, nothing to say.
    """
    path = socket_path()
    try:
        info = os.lstat(path)
    except OSError:
        return None, None
    if not stat.S_ISSOCK(info.st_mode):
        return None, f"{path} is not a socket"
    if info.st_uid != os.getuid():
        return None, f"{path} is owned by uid {info.st_uid}, not by you"
    problem = check_private_dir(path.parent)
    if problem is not None:
        return None, problem
    return path, None


def peer_credentials(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a Unix socket (SO_PEERCRED).

    The agent checks its clients with it, and clients check the agent: both sides refuse a
    peer of another uid.
    """
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
    pid, uid, _gid = _CREDENTIALS.unpack(raw)
    return pid, uid
