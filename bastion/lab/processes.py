"""Reading /proc to tell which processes belong to a lab node, and stopping them safely.

A pid alone proves nothing (pids are reused), so a node's sshd is recognised by its command
line naming the node's own sshd_config, and, in root mode, everything else the node runs by
living in the mount namespace that has the node's directory as a mount point.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bastion.errors import LabError

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """What the lab needs to know about one running process."""

    pid: int
    ppid: int
    start_time: int
    """Clock ticks after boot: with the pid, it identifies a process for its whole life."""
    mount_namespace: str | None
    """``mnt:[inode]``, or None when it cannot be read (another user's process)."""


def command_line(pid: int) -> list[str] | None:
    """The process's command line split into words, or None once it is gone or a zombie.

    sshd rewrites its argv into one title string ("sshd: /usr/sbin/sshd -D ... [listener]"),
    so NUL separators and spaces are treated alike.
    """
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    # A zombie's command line is empty: it is not running anything any more.
    return raw.replace(b"\0", b" ").decode(errors="replace").split() or None


def configs_run_by(pid: int, configs: Collection[Path]) -> set[Path]:
    """Which of ``configs`` process ``pid`` runs as a lab sshd (or its launcher), if alive."""
    words = command_line(pid)
    if not words or not any("sshd" in word for word in words):
        return set()
    # Whole words, not substrings: /lab/nodes/node1/... must not match /x/lab/nodes/node1/...
    present = set(words)
    return {config for config in configs if str(config) in present}


def runs_config(pid: int, config: Path) -> bool:
    """Whether ``pid`` is alive and is the lab's sshd (or its launcher) for ``config``."""
    return bool(configs_run_by(pid, (config,)))


def process_table() -> dict[int, ProcessInfo]:
    """Every process visible in /proc with its parent and mount namespace."""
    table: dict[int, ProcessInfo] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may contain spaces and parentheses: split after it.
        fields = stat[stat.rfind(")") + 2 :].split()
        try:
            namespace: str | None = os.readlink(entry / "ns" / "mnt")
        except OSError:
            namespace = None
        table[pid] = ProcessInfo(
            pid=pid, ppid=int(fields[1]), start_time=int(fields[19]), mount_namespace=namespace
        )
    return table


def descendants(roots: Iterable[int], table: Mapping[int, ProcessInfo]) -> set[int]:
    """The children of the ``roots``, their children, and so on (not the roots themselves)."""
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    found: set[int] = set()
    stack = [child for root in roots for child in children.get(root, ())]
    while stack:
        child = stack.pop()
        if child not in found:
            found.add(child)
            stack.extend(children.get(child, ()))
    return found


def namespace_members(
    node_dirs: Collection[Path], table: Mapping[int, ProcessInfo]
) -> dict[Path, set[int]]:
    """The processes living in each root-mode node's mount namespace, by node directory.

    A namespace belongs to a node when the node's directory is one of its mount points (the
    launcher binds it back over its own path). This also finds what a session left behind
    (`nohup cmd &`) after its sshd died.
    """
    own = _own_mount_namespace()
    by_namespace: dict[str, list[int]] = {}
    for info in table.values():
        if info.mount_namespace is not None and info.mount_namespace != own:
            by_namespace.setdefault(info.mount_namespace, []).append(info.pid)
    members: dict[Path, set[int]] = {directory: set() for directory in node_dirs}
    for pids in by_namespace.values():
        for directory in _mount_points(pids) & members.keys():
            members[directory].update(pids)
    return members


def same_process(info: ProcessInfo) -> bool:
    """Whether the process ``info`` describes is still running (not exited, not a reused pid)."""
    try:
        stat = (PROC / str(info.pid) / "stat").read_text()
    except OSError:
        return False
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[0] != "Z" and int(fields[19]) == info.start_time


def terminate(
    pids: Iterable[int],
    still_ours: Callable[[int], bool],
    *,
    grace_s: float = 2.0,
    on_exit: Callable[[int], None] = lambda pid: None,
) -> None:
    """SIGTERM every pid that ``still_ours`` confirms, then SIGKILL those alive after ``grace_s``.

    Each pid is pinned with a pidfd before it is checked, so the signal cannot reach an
    unrelated process that reused the pid in between. ``on_exit`` is called for each pid that
    exited (the caller reaps its own children there).
    """
    pidfds: dict[int, int] = {}
    try:
        for pid in set(pids):
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
            if still_ours(pid):
                pidfds[pid] = fd
            else:
                os.close(fd)
        running = _signal_and_wait(pidfds, signal.SIGTERM, grace_s)
        if running:
            _signal_and_wait({pid: pidfds[pid] for pid in running}, signal.SIGKILL, 5.0)
        for pid in pidfds:
            on_exit(pid)
    finally:
        for fd in pidfds.values():
            os.close(fd)


def _signal_and_wait(pidfds: Mapping[int, int], signum: int, timeout_s: float) -> set[int]:
    """Send ``signum`` through each pidfd and wait; return the pids still running after it."""
    for pid, fd in pidfds.items():
        try:
            signal.pidfd_send_signal(fd, signum)
        except ProcessLookupError:
            pass  # already exited: its pidfd is readable and counts as done below
        except PermissionError as exc:
            raise LabError(
                f"not allowed to stop pid {pid} (started by another user? run `down` as root)"
            ) from exc
    poller = select.poll()
    by_fd = {fd: pid for pid, fd in pidfds.items()}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    running = set(pidfds)
    deadline = time.monotonic() + timeout_s
    while running:
        left_ms = int((deadline - time.monotonic()) * 1000)
        if left_ms <= 0:
            break
        # A pidfd becomes readable when its process exits, child of ours or not.
        for fd, _ in poller.poll(left_ms):
            poller.unregister(fd)
            running.discard(by_fd[fd])
    return running


def _own_mount_namespace() -> str | None:
    try:
        return os.readlink(PROC / "self" / "ns" / "mnt")
    except OSError:
        return None


def _mount_points(pids: list[int]) -> set[Path]:
    """The mount points of the mount namespace that ``pids`` share.

    A root-mode node's launcher binds the node directory back over its own path
    (node_launcher.sh), so a node's namespace has its node directory among them. (Its overlays
    name their layers through /proc/self/fd, so their options do not say whose they are.)
    """
    for pid in pids:
        try:
            mountinfo = (PROC / str(pid) / "mountinfo").read_text()
        except OSError:
            continue  # exited meanwhile: ask another member of the same namespace
        # "267 263 254:0 /root/lab/nodes/node1 /root/lab/nodes/node1 rw,relatime - ext4 ..."
        # (the lab's paths are plain: no space or octal escape to undo)
        rows = (line.split() for line in mountinfo.splitlines())
        return {Path(fields[4]) for fields in rows if len(fields) > 4}
    return set()
