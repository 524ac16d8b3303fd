"""The lab's sshd processes: config rendering, start (in namespaces as root), probe, stop."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from bastion.errors import LabError
from bastion.lab import paths, processes
from bastion.lab.nodes import ROOT_AUTHORIZED_KEYS, NodeLayout, overlaid_dirs
from bastion.lab.state import LabMode
from bastion.lab.tools import LabPrograms
from bastion.private_files import open_private

# A minimal environment for the nodes: the caller's variables have no business in them. sshd
# writes its title over argv and environ, so the environment also leaves room for the title
# to keep the config path whole in /proc/PID/cmdline, which is how a node is recognised.
NODE_ENVIRONMENT = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}

# The root-mode launcher (node_launcher.sh, shipped beside this module) runs inside the node's
# fresh UTS and mount namespaces; see that file for what it mounts and why.
LAUNCHER_NAME = "node_launcher.sh"


@cache
def namespace_launcher() -> str:
    """The text of the root-mode node launcher (POSIX sh, passed to ``sh -c``)."""
    return resources.files("bastion.lab").joinpath(LAUNCHER_NAME).read_text(encoding="utf-8")


# Banner wait: a node normally answers in well under a second; 200 nodes starting at once on
# 2 cores need more, hence a per-node allowance on top of the base.
START_TIMEOUT_S = 10.0
START_TIMEOUT_PER_NODE_S = 0.05
_POLL_INTERVAL_S = 0.05
LOG_TAIL_LINES = 15

# Our own identification string, sent before closing a probe: without it sshd logs
# "kex_exchange_identification: Connection closed by remote host" at level ERROR.
_PROBE_IDENTIFICATION = b"SSH-2.0-bastion_lab_probe\r\n"

# Nodes started by this process, kept to poll their exit status and to reap them: a stopped
# node that nobody waits for stays a zombie for as long as the test or benchmark runs.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True, slots=True)
class SshdSettings:
    """What differs between the lab's sshd configs."""

    address: str
    port: int
    host_key: Path
    pid_file: Path
    authorized_keys: str
    """AuthorizedKeysFile: relative to the user's home, or absolute."""
    session_path: str | None = None
    """PATH for the node's sessions (``SetEnv``), None for sshd's default."""


def render_sshd_config(settings: SshdSettings) -> str:
    """A cheap sshd_config (no PAM, no DNS, no motd) for one lab node, keys only."""
    return f"""\
# written by `bastion lab up`; rewritten on every `up`
ListenAddress {settings.address}:{settings.port}
AddressFamily inet
HostKey {settings.host_key}
PidFile {settings.pid_file}
AuthorizedKeysFile {settings.authorized_keys}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes yes
# Cheap logins: the lab must run 200 nodes on 2 cores.
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
# No AcceptEnv line: the client's environment is not accepted, as on a hardened host.
Subsystem sftp internal-sftp
MaxSessions 64
# MaxStartups stays at its default (10:30:100) on purpose: the client must pace handshakes.
LogLevel ERROR
{_set_path(settings.session_path)}"""


def _set_path(session_path: str | None) -> str:
    # sshd applies SetEnv after its own default PATH, so this one wins (OpenSSH >= 7.8).
    return f"SetEnv PATH={session_path}\n" if session_path else ""


def sshd_settings(layout: NodeLayout, mode: LabMode, address: str, port: int) -> SshdSettings:
    """The settings of node ``layout`` listening on ``address:port`` in ``mode``."""
    if mode is LabMode.ROOT:
        authorized_keys = ROOT_AUTHORIZED_KEYS
    else:
        authorized_keys = str(layout.user_authorized_keys)
    return SshdSettings(
        address=address,
        port=port,
        host_key=layout.host_key,
        pid_file=layout.pid_file,
        authorized_keys=authorized_keys,
        session_path=paths.node_path(paths.lab_path_prefix()),
    )


def start_sshd(layout: NodeLayout, programs: LabPrograms) -> int:
    """Start the node's sshd in the background (not waiting for it) and return its pid.

    With ``programs.unshare`` (root mode) it runs in its own UTS and mount namespaces with
    hostname ``layout.name``. Its output (and a failed mount's) goes to ``layout.log``.
    """
    if programs.unshare and programs.mount:
        command = [
            programs.unshare,
            "--uts",
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            namespace_launcher(),
            "bastion-lab-node",
            str(layout.directory),
            layout.name,
            str(layout.config),
            programs.sshd,
            programs.mount,
            paths.lab_path_prefix() or "",
        ]
        for overlaid in overlaid_dirs():
            command += [overlaid, layout.upper(overlaid).name, layout.work(overlaid).name]
        # sshd's privilege-separated children chroot there; it is shared with the host.
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    else:
        command = [programs.sshd, "-D", "-e", "-f", str(layout.config)]
    with os.fdopen(open_private(layout.log, "a"), "ab") as log:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=NODE_ENVIRONMENT,
            # Detached from our terminal: closing it must not SIGHUP the nodes (sshd re-execs
            # on SIGHUP), and Ctrl-C on a later command must not reach them.
            start_new_session=True,
        )
    _children[proc.pid] = proc
    return proc.pid


def stop_sshd(configs: Collection[Path], *, grace_s: float = 2.0) -> set[Path]:
    """Stop every process of the nodes whose sshd runs one of ``configs``; return those configs.

    That is each node's sshd (found by its config path on its command line, so a crash
    between start and state file is covered too), its connections and sessions, and, in root
    mode, anything else left in the node's mount namespace. All nodes stop in parallel.
    """
    _reap_exited()
    table = processes.process_table()
    listeners: set[int] = set()
    stopped: set[Path] = set()
    for pid in table:
        matches = processes.configs_run_by(pid, configs)
        if matches:
            stopped |= matches
            listeners.add(pid)
    victims = listeners | processes.descendants(listeners, table)
    node_dirs = {config.parent for config in configs}
    for members in processes.namespace_members(node_dirs, table).values():
        victims.update(members)
    victims.discard(os.getpid())
    processes.terminate(
        victims,
        lambda pid: processes.same_process(table[pid]),
        grace_s=grace_s,
        on_exit=_reap,
    )
    return stopped


def is_running(pid: int | None, config: Path) -> bool:
    """Whether ``pid`` is still the node's sshd (or its launcher) for ``config``."""
    return pid is not None and processes.runs_config(pid, config)


def answers_ssh(address: str, port: int, timeout_s: float = 1.0) -> bool:
    """Whether ``address:port`` accepts a TCP connection and sends an SSH banner."""
    try:
        with socket.create_connection((address, port), timeout=timeout_s) as sock:
            banner = sock.recv(256)
            if not banner.startswith(b"SSH-"):
                return False
            sock.sendall(_PROBE_IDENTIFICATION)
            return True
    except OSError:
        return False


def answering(targets: Sequence[tuple[str, int]], timeout_s: float = 1.0) -> list[bool]:
    """`answers_ssh` for every (address, port) at once, in order."""
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(targets))) as pool:
        return list(pool.map(lambda t: answers_ssh(t[0], t[1], timeout_s), targets))


def port_is_free(address: str, port: int) -> bool:
    """Whether a listening socket could bind ``address:port`` now (like sshd, SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
        return True


def free_port(address: str) -> int:
    """A TCP port on ``address`` that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class StartingNode:
    """A node just started, awaited by `wait_until_answering`."""

    layout: NodeLayout
    address: str
    port: int
    pid: int


def wait_until_answering(nodes: Sequence[StartingNode], timeout_s: float | None = None) -> None:
    """Wait until every node sends its SSH banner; `LabError` naming the first that does not.

    Fails early when a node's process exits (a failed mount, a port in use), with the tail of
    its log.
    """
    if timeout_s is None:
        timeout_s = START_TIMEOUT_S + START_TIMEOUT_PER_NODE_S * len(nodes)
    deadline = time.monotonic() + timeout_s
    pending = list(nodes)
    while pending:
        for node in pending:
            status = _exit_status(node.pid)
            if status is not None:
                raise LabError(
                    f"{node.layout.name} ({node.address}:{node.port}): sshd exited with status "
                    f"{status}{log_tail(node.layout.log)}"
                )
        answered = answering([(n.address, n.port) for n in pending], timeout_s=0.5)
        pending = [n for n, ok in zip(pending, answered, strict=True) if not ok]
        if pending and time.monotonic() > deadline:
            node = pending[0]
            others = f" (and {len(pending) - 1} more)" if len(pending) > 1 else ""
            raise LabError(
                f"{node.layout.name} ({node.address}:{node.port}) did not answer within "
                f"{timeout_s:.0f} s{others}{log_tail(node.layout.log)}"
            )
        if pending:
            time.sleep(_POLL_INTERVAL_S)


def _exit_status(pid: int) -> int | None:
    """The exit status of node process ``pid`` if it was started here and has exited."""
    proc = _children.get(pid)
    if proc is None:
        return None
    return proc.poll()


def _reap_exited() -> None:
    """Collect nodes started here that died on their own (killed by a test, say)."""
    for pid in list(_children):
        _reap(pid)


def _reap(pid: int) -> None:
    """Collect a stopped node's exit status if this process started it (no zombie left)."""
    proc = _children.get(pid)
    if proc is not None and proc.poll() is not None:
        del _children[pid]


def log_tail(log: Path) -> str:
    """The last lines of a node's log, as a suffix for an error message."""
    try:
        lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        return ""
    if not lines:
        return f"; its log {log} is empty"
    return f"; last lines of {log}:\n" + "\n".join(f"  {line}" for line in lines)
