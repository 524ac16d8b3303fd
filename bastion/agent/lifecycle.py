"""Starting, stopping and asking the agent, from the client side (no asyncssh here).

``start`` runs ``python -m bastion.agent.server`` in a new session (it outlives the command
that started it) and waits until its socket answers. ``status`` and ``stop`` are requests on
the socket. ``parse_duration`` reads ``--persist`` and ``--idle`` values.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from bastion.agent.paths import LOG_NAME, ensure_private_dir, find_socket, peer_credentials
from bastion.agent.protocol import VERSION, Message, decode, encode
from bastion.errors import BastionError, EnvironmentProblem, UsageError
from bastion.private_files import open_private

DEFAULT_PERSIST_S = 600.0
AUTO_PERSIST_S = 60.0
"""Warm by default: how long the agent a run starts on its own stays up unused (and keeps its
connections open), like Ansible's ``ControlPersist=60s``. ``--persist`` sets it per run."""
PERSIST_ENV = "BASTION_PERSIST"
"""A duration for runs that start the agent on their own, or ``off`` (``0``, ``no``): never."""
_OFF = frozenset({"off", "0", "no", "false", "never"})
START_WAIT_S = 15.0
START_POLL_S = 0.01
"""How often `start` asks the new agent whether it answers: its first answer ends the wait."""
STOP_WAIT_S = 15.0
REQUEST_TIMEOUT_S = 5.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, source: str) -> float:
    """``90``, ``90s``, ``10m``, ``1h``, ``500ms`` in seconds; a usage error otherwise."""
    match = _DURATION.match(text)
    if match is None or float(match[1]) <= 0:
        raise UsageError(
            f"{text!r} is not a duration (like 90s, 10m or 1h, more than zero)", source=source
        )
    return float(match[1]) * _UNITS[match[2] or "s"]


def request(op: str, timeout: float = REQUEST_TIMEOUT_S) -> Message | None:
    """Send one ``status`` or ``stop`` request; the answer, or None when no agent answers."""
    path, _ = find_socket()
    if path is None:
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            if peer_credentials(sock)[1] != os.getuid():
                return None  # served by another user: not our agent (as `AgentChannel`)
            reader = sock.makefile("rb")
            hello = decode(reader.readline())
            if hello.get("hello") != VERSION:
                return None
            sock.sendall(encode({"op": op, "id": 1}))
            return decode(reader.readline())
    except (OSError, ValueError):
        return None


class MalformedStatus(BastionError):
    """The agent answered ``status`` with something that is not a status (exit code 2)."""


_NUMBER = (int, float)
_STATUS_FIELDS: dict[str, tuple[type, ...]] = {
    "pid": (int,),
    "socket": (str,),
    "log": (str,),
    "uptime_s": _NUMBER,
    "exits_in_s": _NUMBER,
    "persist_s": _NUMBER,
    "idle_s": _NUMBER,
    "requests": (int,),
    "connections": (list,),
}
_CONNECTION_FIELDS: dict[str, tuple[type, ...]] = {
    "host": (str,),
    "address": (str,),
    "port": (int,),
    "user": (str, type(None)),
    "accept_new": (bool,),
    "age_s": _NUMBER,
    "idle_s": _NUMBER,
    "uses": (int,),
}


def status() -> Message | None:
    """The running agent's status (see `AgentServer.status`), or None; raises
    `MalformedStatus` when a same-user agent answers with a status missing a field."""
    answer = request("status")
    if answer is None:
        return None
    running = answer.get("status")
    problem = _status_problem(running)
    if problem is not None:
        path, _ = find_socket()
        raise MalformedStatus(f"the bastion agent at {path} sent a malformed status: {problem}")
    assert isinstance(running, dict)
    return running


def _status_problem(running: object) -> str | None:
    """What is wrong with a status answer, or None."""
    if not isinstance(running, dict):
        return f"expected an object, got {type(running).__name__}"
    connections = running.get("connections")
    records: list[tuple[str, object, dict[str, tuple[type, ...]]]] = [("", running, _STATUS_FIELDS)]
    if isinstance(connections, list):
        records += [
            (f"connections[{i}].", c, _CONNECTION_FIELDS) for i, c in enumerate(connections)
        ]
    for where, record, fields in records:
        if not isinstance(record, dict):
            return f"{where.rstrip('.')} is not an object"
        for name, types in fields.items():
            if name not in record:
                return f"no {where}{name!r}"
            value = record[name]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                return f"{where}{name!r} is {type(value).__name__}"
    return None


_spawned: list[subprocess.Popen[bytes]] = []
"""The agent `prestart` started for this run, not yet waited for by `start` (one at most)."""


def start(persist_s: float, idle_s: float | None = None) -> Message:
    """Start the agent unless one runs; its status. Raises `EnvironmentProblem`."""
    running = status()
    if running is not None:
        return running
    directory = ensure_private_dir()
    process = _spawned.pop() if _spawned else _spawn(directory, persist_s, idle_s)
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        running = status()
        if running is not None:
            return running
        if process.poll() not in (None, 0):
            break
        time.sleep(START_POLL_S)
    raise EnvironmentProblem(
        f"the bastion agent did not start; see {directory / LOG_NAME}{_log_tail(directory)}"
    )


def _spawn(directory: Path, persist_s: float, idle_s: float | None) -> subprocess.Popen[bytes]:
    """``python -m bastion.agent.server`` in a session of its own, logging to ``agent.log``."""
    log_fd = open_private(directory / LOG_NAME, "a")
    try:
        argv = [sys.executable, "-m", "bastion.agent.server", "--persist", f"{persist_s:g}"]
        argv += ["--idle", f"{idle_s or persist_s:g}"]
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(log_fd)


def prestart(persist: str | None, no_agent: bool, durable: bool, transport: str | None) -> None:
    """Start the agent `socket_for` will start, now, without waiting for it: its start-up
    (asyncssh, the crypto libraries) then overlaps the run's own (inventory, selection).

    Does nothing when an agent's socket is there or the run goes direct; any problem is left
    for `socket_for` to report.
    """
    try:
        seconds = _start_for(persist, _bypass(no_agent, durable, transport))
        if seconds is None or _spawned or find_socket() != (None, None):
            return
        _spawned.append(_spawn(ensure_private_dir(), seconds, None))
    except (BastionError, OSError):
        return


def stop() -> int | None:
    """Stop the running agent and wait until it is gone; its pid, or None if none ran."""
    running = status()
    if running is None:
        return None
    pid = int(running["pid"])
    request("stop")
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline:
        if not _alive(pid):
            return pid
        time.sleep(0.05)
    raise EnvironmentProblem(f"the bastion agent (pid {pid}) did not stop in {STOP_WAIT_S:g}s")


def ensure_running(persist_s: float) -> Path | None:
    """``--persist``: the agent's socket, starting the agent if needed; None (and a notice)
    when it cannot be started, so that the run goes direct."""
    from bastion.agent.client import notice

    try:
        start(persist_s)
    except EnvironmentProblem as exc:
        notice(f"{exc}; connecting directly")
        return None
    path, _ = find_socket()
    return path


def socket_for_run() -> Path | None:
    """The socket a run should use when the agent is on by default: the agent's, if there is
    one; a socket in an unsafe place is ignored, with a notice."""
    path, problem = find_socket()
    if problem is not None:
        from bastion.agent.client import notice

        notice(f"ignoring the bastion agent's socket: {problem}; connecting directly")
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own child, not reaped yet) is gone for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _log_tail(directory: Path, lines: int = 5) -> str:
    try:
        text = (directory / LOG_NAME).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "".join(f"\n  {line}" for line in text)


def auto_persist_s() -> float | None:
    """How long an agent a run starts on its own lives (`PERSIST_ENV`, default
    `AUTO_PERSIST_S`); None when runs must not start one."""
    text = os.environ.get(PERSIST_ENV, "").strip()
    if not text:
        return AUTO_PERSIST_S
    if text.lower() in _OFF:
        return None
    return parse_duration(text, PERSIST_ENV)


def _bypass(no_agent: bool, durable: bool, transport: str | None) -> str | None:
    """The option that makes a run bypass the agent, or None."""
    if no_agent:
        return "--no-agent"
    if durable:
        return "--durable"
    if transport not in (None, "asyncssh"):
        return f"--transport {transport}"
    return None


def _start_for(persist: str | None, bypass: str | None) -> float | None:
    """How long an agent this run would start lives (None: it starts none)."""
    if persist is not None:
        seconds = parse_duration(persist, "--persist")
        if bypass is not None:
            raise UsageError(f"{bypass} does not go through the agent", source="--persist")
        return seconds
    return None if bypass is not None else auto_persist_s()


def socket_for(
    persist: str | None, no_agent: bool, durable: bool, transport: str | None
) -> Path | None:
    """The agent socket a ``bastion run`` uses: None goes direct.

    ``--persist`` starts the agent when none runs; otherwise a running agent is used, and
    when none runs one is started for `auto_persist_s` (warm by default, off with
    ``BASTION_PERSIST=off``). ``--no-agent``, ``--durable`` and the paramiko, mosh and auto
    transports bypass it.
    """
    bypass = _bypass(no_agent, durable, transport)
    seconds = _start_for(persist, bypass)
    if persist is not None and seconds is not None:
        return ensure_running(seconds)
    if bypass is not None:
        return None
    if find_socket() != (None, None):
        return socket_for_run()  # an agent's socket (or a notice why it is not used)
    return None if seconds is None else ensure_running(seconds)
