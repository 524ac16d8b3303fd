"""Where the agent's socket, lock and log live, and the checks that make that place private.

The directory is ``$XDG_RUNTIME_DIR/bastion``, else ``bastion-<uid>`` in the temporary
directory (``$TMPDIR``, else ``/tmp``, as ssh-agent does). It must be a real directory (not a
symlink) owned by the user and writable by nobody else: anyone who could put a socket there
could receive the commands and standard input of the user's runs.

The temporary directory is shared with every local user, so another user can create
``/tmp/bastion-<uid>`` first. Then that name is never used: the agent lives in
``<state home>/agent`` instead (``~/.local/state/bastion/agent``, inside the user's own home),
which every bastion process of the user finds the same way, so nobody can block the agent.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
import tempfile
from pathlib import Path

from bastion.errors import EnvironmentProblem
from bastion.lab.paths import state_home

SOCKET_NAME = "agent.sock"
LOCK_NAME = "agent.lock"
LOG_NAME = "agent.log"
_CREDENTIALS = struct.Struct("3i")
SOCKET_PATH_MAX = 100
"""Longest socket path used (the kernel's limit is 107 bytes)."""


def shared_tmp_dir() -> Path:
    """The default place in the shared temporary directory: ``$TMPDIR/bastion-<uid>``."""
    return Path(tempfile.gettempdir()) / f"bastion-{os.getuid()}"


def runtime_dir() -> Path:
    """The agent's directory (not created; see `ensure_private_dir` for the checks).

    The shared-temporary default is skipped when something that is not the user's private
    directory already holds its name (planted by another user): see the module's docstring.
    """
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return Path(base) / "bastion"
    default = shared_tmp_dir()
    if os.path.lexists(default) and check_private_dir(default) is not None:
        return state_home() / "agent"
    return default


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
    if len(os.fsencode(path / SOCKET_NAME)) > SOCKET_PATH_MAX:
        raise EnvironmentProblem(
            f"the agent's socket path {path / SOCKET_NAME} is too long for a Unix socket; "
            f"set XDG_RUNTIME_DIR to a short private directory"
            + (f" (or remove {shared_tmp_dir()}, not yours)" if path != shared_tmp_dir() else "")
        )
    try:
        try:
            path.mkdir(mode=0o700, parents=False)
        except FileExistsError:
            pass
        except FileNotFoundError:  # $XDG_RUNTIME_DIR or the state directory is missing
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot create {exc.filename or path}: {exc.strerror or exc}"
        ) from exc
    problem = check_private_dir(path)
    if problem is not None:
        raise EnvironmentProblem(
            f"refusing the agent directory: {problem}; remove it, or set XDG_RUNTIME_DIR "
            "to a private directory"
        )
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
