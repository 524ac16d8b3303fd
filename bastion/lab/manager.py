"""`bastion lab up|down|status`: orchestration that returns data; the CLI does the printing.

`up` is declarative and idempotent, like `docker-compose up`: the lab ends with exactly
node1..nodeN running, nodes already up are left alone, dead ones are restarted, extra ones
are stopped. Keys are generated once and kept, so host keys stay pinned across restarts.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import pwd
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import overload

from bastion.errors import EnvironmentProblem, LabError, UsageError
from bastion.lab import DEFAULT_NODES, DEFAULT_SUBNET, faults, paths, sshd
from bastion.lab.inventory_file import InventoryHost, node_role, write_lab_inventory
from bastion.lab.keys import (
    DEFAULT_SSH_PORT,
    KNOWN_HOSTS_NAME,
    PinnedHost,
    ensure_client_key,
    ensure_host_keys,
    public_key,
    write_known_hosts,
)
from bastion.lab.nodes import (
    NODES_DIR_NAME,
    NodeLayout,
    node_layout,
    prepare_node_dir,
    remove_node_dir,
    upper_layer_problem,
)
from bastion.lab.state import LabMode, LabState, NodeRecord, load_state, remove_state, save_state
from bastion.lab.tools import LabPrograms, find_lab_programs
from bastion.private_files import open_private, private_dir, write_private

MAX_NODES = 254
USER_MODE_ADDRESS = "127.0.0.1"
HOST_KEYS_DIR_NAME = "host_keys"
_LOCK_NAME = ".lock"

# Paths end up in sshd_config, in overlay mount options (where "," and ":" are separators)
# and in /proc/PID/cmdline, which is split on spaces to recognise a node's sshd.
_SAFE_PATH = re.compile(r"[A-Za-z0-9._/@+=~-]+")


class NodeAction(StrEnum):
    """What `up` or `down` did to a node."""

    STARTED = "started"
    RESTARTED = "restarted"
    ALREADY_UP = "already up"
    STOPPED = "stopped"
    NOT_RUNNING = "not running"


@dataclass(frozen=True, slots=True)
class LabNodeStatus:
    """One lab node: where it listens, its sshd's pid, whether it answers, what was done."""

    name: str
    address: str
    port: int
    pid: int | None
    """The sshd listener's pid while it runs, else None."""
    up: bool
    """The pid is the node's sshd and its port answers with an SSH banner."""
    mode: LabMode
    action: NodeAction | None = None


@dataclass(frozen=True, slots=True)
class LabReport(Sequence[LabNodeStatus]):
    """The result of `up`, `down` or `status`: a sequence of the lab's nodes, plus context.

    After `up`, the sequence is exactly node1..nodeN; ``removed`` holds the nodes `--nodes N`
    stopped. After `down`, the sequence holds the nodes that were recorded. An empty report
    from `status` means there is no lab.
    """

    lab_dir: Path
    nodes: tuple[LabNodeStatus, ...]
    removed: tuple[LabNodeStatus, ...] = ()
    inventory: Path | None = None
    """The inventory `up` wrote (`bastion run -i lab`), None after `down` or without a lab."""

    @overload
    def __getitem__(self, index: int) -> LabNodeStatus: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[LabNodeStatus]: ...
    def __getitem__(self, index: int | slice) -> LabNodeStatus | Sequence[LabNodeStatus]:
        return self.nodes[index]

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def all_up(self) -> bool:
        """Whether there is a lab and every node in it answers."""
        return bool(self.nodes) and all(node.up for node in self.nodes)


def up(
    nodes: int = DEFAULT_NODES,
    *,
    subnet: str = DEFAULT_SUBNET,
    lab_dir: Path | None = None,
    mode: LabMode | None = None,
) -> LabReport:
    """Make the lab exactly node1..node``nodes``, all answering; start only what is not up.

    ``mode`` defaults to root when running as root, else user. Raises `UsageError` for a bad
    count or subnet, `EnvironmentProblem` when sshd, ssh-keygen or unshare is missing, and
    `LabError` when a node does not come up (nodes already started keep running: `down`).
    """
    _check_node_count(nodes)
    _check_subnet(subnet)
    directory = _resolve_lab_dir(lab_dir)
    mode = mode or (LabMode.ROOT if os.geteuid() == 0 else LabMode.USER)
    if mode is LabMode.ROOT and os.geteuid() != 0:
        raise EnvironmentProblem("the root-mode lab needs root (namespaces, port 22, overlays)")
    programs = find_lab_programs(namespaces=mode is LabMode.ROOT)
    private_dir(directory)
    with _locked(directory):
        return _up_locked(directory, nodes, subnet, mode, programs)


def down(lab_dir: Path | None = None) -> LabReport:
    """Stop every process the lab started and delete the nodes' directories.

    Keys and known_hosts are kept (the next `up` reuses them); the state file and the
    inventory are removed. Running it again, or without a lab, does nothing.
    """
    directory = _resolve_lab_dir(lab_dir)
    if not directory.is_dir():
        return LabReport(lab_dir=directory, nodes=())
    with _locked(directory):
        try:
            state = load_state(directory)
        except LabError:
            state = None  # unreadable: the scan for the nodes' configs below still finds them
        records = state.nodes if state else ()
        configs = {r.config for r in records} | {lay.config for lay in _node_dirs(directory)}
        stopped = sshd.stop_sshd(configs)
        report = tuple(
            _node_status(
                r,
                pid=None,
                up=False,
                action=NodeAction.STOPPED if r.config in stopped else NodeAction.NOT_RUNNING,
            )
            for r in records
        )
        faults.clear_lab_faults(directory)
        shutil.rmtree(directory / NODES_DIR_NAME, ignore_errors=True)
        remove_state(directory)
        _inventory_path(directory).unlink(missing_ok=True)
    return LabReport(lab_dir=directory, nodes=report)


def inject_fault(node: str, fault: faults.Fault | None, lab_dir: Path | None = None) -> str:
    """Give ``node`` the network fault ``fault``, or clear its fault (None); root-mode lab only.

    Returns the node's address. Raises `UsageError` for a node the lab does not have and
    `EnvironmentProblem` without root or iptables.
    """
    directory = _resolve_lab_dir(lab_dir)
    state = load_state(directory)
    if state is None:
        raise LabError("no lab (run `bastion lab up`)")
    records = {r.name: r for r in state.nodes}
    record = records.get(node)
    if record is None:
        known = ", ".join(records) or "none"
        raise UsageError(f"the lab has no node {node!r} (nodes: {known})", source="NODE")
    if record.mode is not LabMode.ROOT:
        # In user mode every node listens on 127.0.0.1: a rule would hit all of them.
        raise EnvironmentProblem("lab faults need the root-mode lab (one address per node)")
    if fault is None:
        faults.clear_fault(directory, node)
    else:
        faults.apply_fault(directory, node, record.address, fault)
    return record.address


def status(lab_dir: Path | None = None) -> LabReport:
    """Each recorded node: pid if its sshd still runs, and whether its port answers SSH.

    An empty report means there is no lab.
    """
    directory = _resolve_lab_dir(lab_dir)
    state = load_state(directory)
    if state is None:
        return LabReport(lab_dir=directory, nodes=())
    running = [sshd.is_running(r.pid, r.config) for r in state.nodes]
    answering = sshd.answering([(r.address, r.port) for r in state.nodes])
    nodes = tuple(
        _node_status(r, pid=r.pid if alive else None, up=alive and answers)
        for r, alive, answers in zip(state.nodes, running, answering, strict=True)
    )
    inventory = _inventory_path(directory)
    return LabReport(
        lab_dir=directory, nodes=nodes, inventory=inventory if inventory.exists() else None
    )


def _up_locked(
    directory: Path, count: int, subnet: str, mode: LabMode, programs: LabPrograms
) -> LabReport:
    previous = load_state(directory)
    old = {r.name: r for r in previous.nodes} if previous else {}
    names = [f"node{i}" for i in range(1, count + 1)]
    wanted = {name: _wanted_address(mode, subnet, index) for index, name in enumerate(names, 1)}
    keygen = programs.ssh_keygen
    client_public_key = public_key(ensure_client_key(directory, keygen))
    host_keys = ensure_host_keys(private_dir(directory / HOST_KEYS_DIR_NAME), names, keygen)
    private_dir(directory / NODES_DIR_NAME)
    kept = _nodes_already_up(directory, mode, wanted, old)

    # What is believed to run, kept up to date step by step and saved whatever happens, so
    # that `down` (or the next `up`) always knows every process the lab started.
    running = dict(old)
    try:
        # Declarative: nodes beyond the requested count go away. Everything wanted but not
        # already up is (re)started: what is left of it is stopped first. All in one go.
        extra = [r for name, r in old.items() if name not in wanted]
        extra_was_up = {r.name for r in extra if sshd.is_running(r.pid, r.config)}
        to_start = [name for name in names if name not in kept]
        sshd.stop_sshd(
            {r.config for r in extra} | {node_layout(directory, n).config for n in to_start}
        )
        for name in [r.name for r in extra] + to_start:
            running.pop(name, None)
        for record in extra:
            remove_node_dir(node_layout(directory, record.name))
        planned = _prepare_nodes(
            directory,
            mode,
            wanted=wanted,
            names=to_start,
            old=old,
            kept=kept,
            host_keys=host_keys,
            client_public_key=client_public_key,
        )
        starting: list[sshd.StartingNode] = []
        for record in planned:
            layout = node_layout(directory, record.name)
            pid = sshd.start_sshd(layout, programs)
            running[record.name] = replace(record, pid=pid)
            starting.append(sshd.StartingNode(layout, record.address, record.port, pid))
    finally:
        ordered = tuple(sorted(running.values(), key=lambda r: _node_index(r.name)))
        save_state(directory, LabState(subnet=subnet, mode=mode, nodes=ordered))

    write_known_hosts(
        directory / KNOWN_HOSTS_NAME,
        [PinnedHost(r.address, r.port, public_key(host_keys[r.name])) for r in ordered],
    )
    inventory = _inventory_path(directory)
    write_lab_inventory(
        inventory,
        [InventoryHost(r.name, r.address, r.port, node_role(_node_index(r.name))) for r in ordered],
        user=_login_user(mode),
    )
    sshd.wait_until_answering(starting)

    def action(name: str) -> NodeAction:
        if name in kept:
            return NodeAction.ALREADY_UP
        return NodeAction.RESTARTED if name in old else NodeAction.STARTED

    return LabReport(
        lab_dir=directory,
        nodes=tuple(_node_status(r, pid=r.pid, up=True, action=action(r.name)) for r in ordered),
        removed=tuple(
            _node_status(
                r,
                pid=None,
                up=False,
                action=NodeAction.STOPPED if r.name in extra_was_up else NodeAction.NOT_RUNNING,
            )
            for r in extra
        ),
        inventory=inventory,
    )


def _nodes_already_up(
    directory: Path, mode: LabMode, wanted: dict[str, str], old: dict[str, NodeRecord]
) -> dict[str, NodeRecord]:
    """The recorded nodes that run as wanted (same mode, address, config) and answer SSH."""
    candidates = [
        record
        for name, record in old.items()
        if name in wanted
        and record.mode is mode
        and record.address == wanted[name]
        and sshd.is_running(record.pid, record.config)
        and _config_is_current(node_layout(directory, name), record)
    ]
    answers = sshd.answering([(r.address, r.port) for r in candidates])
    return {r.name: r for r, ok in zip(candidates, answers, strict=True) if ok}


def _prepare_nodes(
    directory: Path,
    mode: LabMode,
    *,
    wanted: dict[str, str],
    names: Sequence[str],
    old: dict[str, NodeRecord],
    kept: dict[str, NodeRecord],
    host_keys: dict[str, Path],
    client_public_key: str,
) -> list[NodeRecord]:
    """Choose ports and write each node's directory and sshd_config; start nothing yet.

    Everything that can fail for a reason of the environment (a port in use, StrictModes) is
    found here, before the first node starts.
    """
    if mode is LabMode.USER and names:
        _check_strict_modes_path(directory)
    if mode is LabMode.ROOT and names:
        _check_path_prefix_exists()
        if problem := upper_layer_problem(directory):
            raise LabError(problem)
    planned: list[NodeRecord] = []
    taken = {r.port for r in kept.values()}
    for name in names:
        layout = node_layout(directory, name)
        port = _choose_port(mode, wanted[name], old.get(name), taken)
        taken.add(port)
        prepare_node_dir(
            layout,
            mode,
            address=wanted[name],
            host_key=host_keys[name],
            client_public_key=client_public_key,
        )
        settings = sshd.sshd_settings(layout, mode, wanted[name], port)
        write_private(layout.config, sshd.render_sshd_config(settings))
        planned.append(
            NodeRecord(
                name=name,
                address=wanted[name],
                port=port,
                pid=None,
                config=layout.config,
                mode=mode,
            )
        )
    return planned


def _node_index(name: str) -> int:
    return int(name.removeprefix("node"))


def _wanted_address(mode: LabMode, subnet: str, index: int) -> str:
    return f"{subnet}.{index}" if mode is LabMode.ROOT else USER_MODE_ADDRESS


def _choose_port(mode: LabMode, address: str, previous: NodeRecord | None, taken: set[int]) -> int:
    """Port 22 as root; else the node's previous port if still free, so addresses stay stable."""
    if mode is LabMode.ROOT:
        if not sshd.port_is_free(address, DEFAULT_SSH_PORT):
            raise LabError(
                f"{address}:{DEFAULT_SSH_PORT} is already in use (another lab on this --subnet, "
                "or a system sshd listening on all addresses: give it a ListenAddress)"
            )
        return DEFAULT_SSH_PORT
    if (
        previous is not None
        and previous.mode is LabMode.USER
        and previous.port not in taken
        and sshd.port_is_free(address, previous.port)
    ):
        return previous.port
    while (port := sshd.free_port(address)) in taken:
        pass  # the kernel may hand out a port another node was just given
    return port


def _config_is_current(layout: NodeLayout, record: NodeRecord) -> bool:
    """Whether the node's sshd runs the config this version of `up` would write."""
    expected = sshd.render_sshd_config(
        sshd.sshd_settings(layout, record.mode, record.address, record.port)
    )
    try:
        return layout.config.read_text(encoding="utf-8") == expected
    except OSError:
        return False


def _node_status(
    record: NodeRecord, *, pid: int | None, up: bool, action: NodeAction | None = None
) -> LabNodeStatus:
    return LabNodeStatus(
        name=record.name,
        address=record.address,
        port=record.port,
        pid=pid,
        up=up,
        mode=record.mode,
        action=action,
    )


def _login_user(mode: LabMode) -> str:
    return "root" if mode is LabMode.ROOT else pwd.getpwuid(os.geteuid()).pw_name


def _inventory_path(directory: Path) -> Path:
    return directory / paths.lab_inventory_path().name


def _node_dirs(directory: Path) -> list[NodeLayout]:
    nodes_dir = directory / NODES_DIR_NAME
    if not nodes_dir.is_dir():
        return []
    return [node_layout(directory, entry.name) for entry in sorted(nodes_dir.iterdir())]


def _resolve_lab_dir(lab_dir: Path | None) -> Path:
    directory = (lab_dir if lab_dir is not None else paths.lab_dir()).expanduser().resolve()
    if not _SAFE_PATH.fullmatch(str(directory)):
        raise UsageError(
            f"lab directory {str(directory)!r} may only contain letters, digits and ._/@+=~- "
            "(its paths go into sshd_config and overlay mount options)",
            source="BASTION_LAB_DIR",
        )
    return directory


def _check_node_count(count: int) -> None:
    if not 1 <= count <= MAX_NODES:
        raise UsageError(f"must be between 1 and {MAX_NODES}, got {count}", source="--nodes")


def _check_subnet(subnet: str) -> None:
    """``A.B.C`` (the first three octets), inside the loopback network 127.0.0.0/8."""
    try:
        valid = subnet.count(".") == 2 and ipaddress.IPv4Address(f"{subnet}.1").is_loopback
    except ValueError:
        valid = False
    if not valid:
        raise UsageError(
            f"expected the first three octets of a loopback network (127.B.C), got {subnet!r}",
            source="--subnet",
        )


def _check_strict_modes_path(lab_dir: Path) -> None:
    """Refuse early what sshd's StrictModes would refuse at every user-mode login, saying why.

    A user-mode node's AuthorizedKeysFile is in the lab directory. sshd checks its directories
    up to the user's home (or up to / when outside it): each must belong to root or the user
    and not be group/world-writable. A lab directory under /tmp fails that check.
    """
    uid = os.geteuid()
    home = Path(pwd.getpwuid(uid).pw_dir).resolve()
    for directory in (lab_dir, *lab_dir.parents):
        info = directory.stat()
        if info.st_uid not in (0, uid) or info.st_mode & 0o022:
            raise LabError(
                f"sshd's StrictModes would refuse every login: {directory} is writable by others "
                f"or not yours; put the lab elsewhere (BASTION_LAB_DIR under your home)"
            )
        if directory == home:
            return


def _check_path_prefix_exists() -> None:
    """A root-mode node binds the path prefix into itself, so it must be a directory now."""
    prefix = paths.lab_path_prefix()
    if prefix is not None and not Path(prefix).is_dir():
        raise UsageError(f"no such directory: {prefix}", source=paths.PATH_PREFIX_ENV)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise `up` and `down` on one lab directory (two `up` would start nodes twice)."""
    fd = open_private(directory / _LOCK_NAME, "a")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
