"""Fan-out benchmark: `true` on N real OpenSSH lab hosts with bastion, its peers and a baseline.

A benchmark, not a test: run it by hand (``make bench``) on an otherwise idle machine.

    .venv/bin/python bench/fanout.py --hosts 100 --rounds 5 [--json FILE]
    .venv/bin/python bench/fanout.py --sweep 10,50,100 --json FILE --chart PNG

The contenders: bastion, pdsh, pssh, clush, a bare asyncssh loop (the floor for a Python
client), the parallel-ssh Python library (bench/pssh_library.py) and Ansible ad-hoc.

It starts a private lab of N sshd nodes on 127.0.7.1..N (root mode: port 22, one namespace per
node) in a temporary BASTION_LAB_DIR and always stops it again, also on Ctrl-C; the nodes'
root gets an empty ~/.bashrc (see empty_node_bashrc). Each tool runs `true` on every host
with 64 hosts at once, strict host-key checking against the lab's pinned known_hosts and the
same key exchange (see SAME_KEX). After one warm-up round that is not counted, every round
runs each tool once, in an order rotated by one each round. Per run it measures wall time,
the client CPU time of the tool's whole process tree (``RUSAGE_CHILDREN`` deltas: pdsh, pssh
and clush reap their ssh children, so those count too), the servers' CPU time and the CPU
other work took meanwhile. A run that does not succeed on every host counts as failed, not
timed. On a shared machine it waits before each run for other work to calm down (--max-wait)
and does a run again when other work took more than 10% of the run's own CPU (twice at most).
Method and results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import collections
import importlib.metadata
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from precompile import compile_bastion

from bastion.lab import manager

SUBNET = "127.0.7"
"""The benchmark's own lab network, apart from a user's lab (127.0.1) and the tests' labs."""
FANOUT = 64
"""Hosts at once, for every tool (bastion's default --forks)."""
BASELINE = "bastion"
PEERS = ("pdsh", "pssh", "clush")
"""What bastion's wall time is compared with (the bare asyncssh loop is a floor, not a peer)."""
CPU_TARGET_MS_PER_HOST = 6.0
"""Issue 7: bastion's client CPU per host at 100 hosts, at most this."""
WALL_TARGET_RATIO = 0.85
"""Issue 7: bastion's wall time at most this fraction of the fastest peer's."""
SAME_KEX = "curve25519-sha256"
"""The key exchange asyncssh negotiates with these servers, pinned for the OpenSSH peers too.

OpenSSH 9.x prefers sntrup761x25519, whose client side costs several times the CPU of a whole
curve25519 login; asyncssh (without liboqs) does not offer it. ``--openssh-default-kex``
measures the peers as shipped instead."""
RUN_TIMEOUT_S = 120.0
QUIET_SAMPLE_S = 0.5
QUIET_THRESHOLD = 0.15
"""A run starts once other work keeps less than this share of all cores busy."""
NOISY_SHARE = 0.10
"""Other work taking more than this share of a run's own CPU makes the run noisy."""
NOISY_FLOOR_S = 0.25
"""Less other CPU than this is never noise (the kernel's own work, this script's)."""
NOISY_REDOS = 2
BENCH_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True, slots=True)
class Lab:
    """A running lab and the files every tool needs to reach it."""

    directory: Path
    addresses: tuple[str, ...]
    inventory: Path
    key: Path
    known_hosts: Path
    hosts_file: Path
    node_pids: tuple[int, ...]
    """The nodes' listening sshd processes, whose reaped children are the servers' CPU."""
    env: dict[str, str]
    """The environment every tool runs in: the caller's, minus anything that changes a tool."""
    kex: str | None = SAME_KEX
    """KexAlgorithms for the OpenSSH peers; None leaves OpenSSH's default."""

    def ssh_options(self) -> list[str]:
        """OpenSSH options for pdsh, pssh and clush: the lab's key, strict pinned host keys.

        ``-F /dev/null`` keeps a user's ~/.ssh/config (a ControlMaster, say) out of the numbers.
        """
        options = ["-F", "/dev/null", "-i", str(self.key)]
        options += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        options += ["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]
        if self.kex:
            options += ["-o", f"KexAlgorithms={self.kex}"]
        return options


def _no_env(_lab: Lab) -> dict[str, str]:
    return {}


@dataclass(frozen=True, slots=True)
class Tool:
    """One way to run `true` on every host of the lab."""

    name: str
    program: str
    """Looked up on PATH unless absolute; a missing program skips the tool."""
    argv: Callable[[Lab, str], list[str]]
    """The command line, given the lab and the program's resolved path."""
    env: Callable[[Lab], dict[str, str]] = _no_env
    """Extra environment variables on top of ``Lab.env``."""
    version_args: tuple[str, ...] = ("--version",)
    helper_cpu: Callable[[Lab], float] = lambda _lab: 0.0
    """CPU seconds so far of a helper the tool leaves running (the warm agent): client CPU."""
    after: Callable[[Lab], None] = lambda _lab: None
    """Done after each run, untimed, once its CPU has been read (bastion-first stops its agent)."""

    def resolve(self) -> str | None:
        """The program's path, or None when it is not installed."""
        return shutil.which(self.program)


def tools() -> list[Tool]:
    """Every contender, bastion first."""
    return [
        Tool(
            "bastion",
            str(VENV_BIN / "bastion"),
            lambda lab, prog: [
                prog, "run", "-i", str(lab.inventory), "--all", "-o", "quiet",
                "-f", str(FANOUT), "--no-agent", "--", "true",
            ],
        ),
        warm_bastion_tool(),
        first_bastion_tool(),
        Tool(
            "pdsh",
            "pdsh",
            lambda lab, prog: [
                prog, "-R", "ssh", "-f", str(FANOUT), "-S", "-l", "root",
                "-w", ",".join(lab.addresses), "true",
            ],
            # pdsh splits these on whitespace; lab paths never contain any.
            env=lambda lab: {"PDSH_SSH_ARGS_APPEND": " ".join(lab.ssh_options())},
            version_args=("-V",),
        ),
        Tool(
            "pssh",
            "parallel-ssh",
            lambda lab, prog: [
                prog, "-p", str(FANOUT), "-h", str(lab.hosts_file), "-l", "root",
                "-x", shlex.join(lab.ssh_options()), "true",
            ],
        ),
        Tool(
            "clush",
            "clush",
            lambda lab, prog: [
                prog, "-n", "-S", "-f", str(FANOUT), "-l", "root",
                "-o", shlex.join(lab.ssh_options()), "-w", ",".join(lab.addresses), "true",
            ],
        ),
        Tool(
            "bare-asyncssh",
            sys.executable,
            lambda lab, prog: bare_asyncssh_argv(lab, "true", python=prog),
            version_args=("-c", "import asyncssh; print('asyncssh', asyncssh.__version__)"),
        ),
    ]  # fmt: skip


# --- bastion-warm: runs through the agent (docs/agent.md) ---------------------------------


def warm_bastion_tool() -> Tool:
    """``bastion run --persist 10m``: the warm-up round starts the agent (untimed) and opens
    its connections; every timed round reuses them. The agent's CPU counts as client CPU."""

    def argv(lab: Lab, prog: str) -> list[str]:
        return [
            prog, "run", "-i", str(lab.inventory), "--all", "-o", "quiet",
            "-f", str(FANOUT), "--persist", "10m", "--", "true",
        ]  # fmt: skip

    return Tool(
        "bastion-warm",
        str(VENV_BIN / "bastion"),
        argv,
        env=lambda lab: {"XDG_RUNTIME_DIR": str(warm_runtime_dir(lab))},
        helper_cpu=warm_agent_cpu_s,
    )


def first_bastion_tool() -> Tool:
    """``bastion run`` as the first command of a session: no agent runs, so the run starts one
    (warm by default, docs/agent.md) and leaves its connections there. The agent's CPU counts
    as client CPU; it is stopped after every run (untimed), so every run is a first one."""

    def argv(lab: Lab, prog: str) -> list[str]:
        return [
            prog, "run", "-i", str(lab.inventory), "--all", "-o", "quiet",
            "-f", str(FANOUT), "--", "true",
        ]  # fmt: skip

    return Tool(
        "bastion-first",
        str(VENV_BIN / "bastion"),
        argv,
        env=lambda lab: {"XDG_RUNTIME_DIR": str(first_runtime_dir(lab))},
        helper_cpu=lambda lab: agent_cpu_s(first_runtime_dir(lab)),
        after=lambda lab: stop_agent(lab, first_runtime_dir(lab)),
    )


def first_runtime_dir(lab: Lab) -> Path:
    path = lab.directory / "first-run"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def warm_runtime_dir(lab: Lab) -> Path:
    return lab.directory / "agent-run"


def warm_agent_cpu_s(lab: Lab) -> float:
    """User + system CPU seconds of the lab's warm agent so far (0 before it starts)."""
    return agent_cpu_s(warm_runtime_dir(lab))


def agent_cpu_s(runtime_dir: Path) -> float:
    """User + system CPU seconds so far of the agent of ``runtime_dir`` (0 when none runs)."""
    marker = f"XDG_RUNTIME_DIR={runtime_dir}".encode()
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        try:
            if b"bastion.agent.server" not in (proc / "cmdline").read_bytes():
                continue
            if marker not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        return (int(fields[11]) + int(fields[12])) / tick
    return 0.0


def stop_warm_agent(lab: Lab) -> None:
    """Stop the agents bastion-warm and bastion-first started, if any."""
    stop_agent(lab, warm_runtime_dir(lab))
    stop_agent(lab, lab.directory / "first-run")


def stop_agent(lab: Lab, runtime_dir: Path) -> None:
    """Stop the agent of ``runtime_dir``, if one runs."""
    env = {**lab.env, "XDG_RUNTIME_DIR": str(runtime_dir)}
    bastion = str(VENV_BIN / "bastion")
    subprocess.run([bastion, "agent", "stop"], env=env, capture_output=True, check=False)


def bare_asyncssh_argv(lab: Lab, command: str, python: str = sys.executable) -> list[str]:
    """bench/bare_asyncssh.py running ``command`` on every node."""
    return [
        python, str(BENCH_DIR / "bare_asyncssh.py"), "--key", str(lab.key),
        "--known-hosts", str(lab.known_hosts), "--user", "root", "--limit", str(FANOUT),
        "--command", command, *lab.addresses,
    ]  # fmt: skip


# --- the parallel-ssh library and Ansible ad-hoc ------------------------------------------

HOST_KEY_NOTES = {
    "pssh-library": "the library has no host-key checking: bench/pssh_library.py compares each "
    "host's key with known_hosts itself, after authentication and before the command",
}
"""Contenders that cannot verify host keys the way OpenSSH does, and what is done instead."""


def library_and_ansible_tools() -> list[Tool]:
    """The parallel-ssh Python library and Ansible ad-hoc, both with the lab's pinned keys."""
    return [
        Tool(
            "pssh-library",
            sys.executable,
            lambda lab, prog: [
                prog, str(BENCH_DIR / "pssh_library.py"), "--key", str(lab.key),
                "--known-hosts", str(lab.known_hosts), "--user", "root",
                "--limit", str(FANOUT), "--command", "true", *lab.addresses,
            ],
            version_args=(
                "-c",
                "import importlib.metadata as m; print('parallel-ssh', m.version('parallel-ssh'))",
            ),
        ),
        Tool("ansible", str(VENV_BIN / "ansible"), ansible_argv, env=ansible_env),
    ]  # fmt: skip


def all_tools() -> list[Tool]:
    """`tools` and then the library and Ansible contenders."""
    return [*tools(), *library_and_ansible_tools()]


def ansible_inventory(lab: Lab) -> Path:
    """An INI inventory of the lab's addresses with the same ssh options as pdsh/pssh/clush."""
    path = lab.hosts_file.with_name(f"ansible-{len(lab.addresses)}.ini")
    common = " ".join(lab.ssh_options())
    path.write_text(
        "[lab]\n"
        + "".join(f"{address}\n" for address in lab.addresses)
        + "\n[lab:vars]\nansible_user=root\n"
        + f"ansible_ssh_private_key_file={lab.key}\n"
        + f"ansible_ssh_common_args='{common}'\n"
        + "ansible_python_interpreter=/usr/bin/python3\n",
        encoding="utf-8",
    )
    return path


def ansible_argv(lab: Lab, program: str) -> list[str]:
    """``ansible all -m command -a true``, FANOUT forks."""
    inventory = ansible_inventory(lab)
    return [program, "all", "-i", str(inventory), "-f", str(FANOUT), "-m", "command", "-a", "true"]


def ansible_env(lab: Lab) -> dict[str, str]:
    """Host-key checking on (Ansible's default, said explicitly); no ControlPersist.

    Ansible's default ssh_args keep a master connection for 60 s, which would make every run
    after the first a warm one; the benchmark measures cold runs. An empty ansible.cfg keeps a
    user's or a directory's configuration out; everything Ansible writes goes to the temporary
    directory. Pipelining stays off, as shipped.
    """
    home = lab.hosts_file.parent / "ansible-home"
    home.mkdir(exist_ok=True)
    config = home / "ansible.cfg"
    config.touch()
    return {
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ControlPath=none",
        "ANSIBLE_NOCOLOR": "1",
    }


# --- the lab -------------------------------------------------------------------------------


def _tool_environment(state_dir: Path, lab_dir: Path) -> dict[str, str]:
    """The caller's environment without settings that would change what a tool does.

    No BASTION_* (forks, output, timeouts), no PDSH_* or WCOLL, no ssh agent (every tool uses
    the lab's key and nothing else). bastion's history goes to the temporary directory.
    """
    dropped = ("BASTION_", "PDSH_", "WCOLL", "SSH_AUTH_SOCK", "SSH_AGENT_PID")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(
        {
            "BASTION_LAB_DIR": str(lab_dir),
            "XDG_STATE_HOME": str(state_dir),
            "BASTION_HISTORY_FILE": str(state_dir / "history.jsonl"),
            "NO_COLOR": "1",
        }
    )
    return env


@contextmanager
def running_lab(count: int, kex: str | None = SAME_KEX, subnet: str = SUBNET) -> Iterator[Lab]:
    """A lab of ``count`` nodes on ``subnet`` in a temporary directory, stopped and removed."""
    tmp = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    lab_dir = tmp / "lab"
    try:
        print(f"starting {count} lab nodes on {subnet}.1-{count} in {lab_dir} ...", flush=True)
        started = time.perf_counter()
        report = manager.up(count, subnet=subnet, lab_dir=lab_dir)
        print(f"lab up in {time.perf_counter() - started:.1f} s", flush=True)
        addresses = tuple(node.address for node in report)
        hosts_file = tmp / "hosts"
        hosts_file.write_text("".join(f"{a}\n" for a in addresses), encoding="utf-8")
        assert report.inventory is not None
        yield Lab(
            directory=lab_dir,
            addresses=addresses,
            inventory=report.inventory,
            key=lab_dir / "id_ed25519",
            known_hosts=lab_dir / "known_hosts",
            hosts_file=hosts_file,
            node_pids=tuple(node.pid for node in report if node.pid is not None),
            env=_tool_environment(tmp / "state", lab_dir),
            kex=kex,
        )
    finally:
        with _signals_ignored():  # a second Ctrl-C must not leave nodes running
            print("stopping the lab ...", flush=True)
            manager.down(lab_dir)
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def cheap_lab(count: int, net: int) -> Iterator[Lab]:
    """``count`` cheap in-process SSH hosts (bench/scale.py: one asyncssh server per loopback
    address, answering every command at once) in a temporary directory, for counts past what
    real sshd nodes fit on the machine. Their one serving process is the "servers"."""
    import scale  # bench/scale.py, beside this script

    tmp = Path(tempfile.mkdtemp(prefix="bastion-bench-cheap-"))
    server = None
    try:
        print(f"starting {count} cheap hosts on 127.{net}.100.1- ...", flush=True)
        inventory = scale.write_lab(count, net, tmp)
        server = subprocess.Popen(
            [sys.executable, scale.__file__, "--hosts", str(count), "--net", str(net),
             "--serve", str(tmp)],
        )  # fmt: skip
        deadline = time.monotonic() + 180
        while not (tmp / "ready").exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the cheap hosts did not start")
            time.sleep(0.2)
        addresses = tuple(scale.address(net, i) for i in range(count))
        hosts_file = tmp / "hosts"
        hosts_file.write_text("".join(f"{a}\n" for a in addresses), encoding="utf-8")
        yield Lab(
            directory=tmp,
            addresses=addresses,
            inventory=inventory,
            key=tmp / "client_key",
            known_hosts=tmp / "known_hosts",
            hosts_file=hosts_file,
            node_pids=(server.pid,),
            env=_tool_environment(tmp / "state", tmp),
        )
    finally:
        with _signals_ignored():
            if server is not None:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
            shutil.rmtree(tmp, ignore_errors=True)


def first_hosts(lab: Lab, count: int) -> Lab:
    """The same lab seen as its first ``count`` nodes: own inventory and hosts file (--sweep)."""
    if count >= len(lab.addresses):
        return lab
    kept = {f"node{i}" for i in range(1, count + 1)}
    lines = lab.inventory.read_text(encoding="utf-8").splitlines(keepends=True)
    host_line = re.compile(r"^  (node\d+): \{address:")
    inventory = lab.inventory.with_name(f"inventory-{count}.yaml")  # paths are relative to it
    inventory.write_text(
        "".join(
            line
            for line in lines
            if (match := host_line.match(line)) is None or match.group(1) in kept
        ),
        encoding="utf-8",
    )
    hosts_file = lab.hosts_file.with_name(f"hosts-{count}")
    hosts_file.write_text("".join(f"{a}\n" for a in lab.addresses[:count]), encoding="utf-8")
    return replace(lab, addresses=lab.addresses[:count], inventory=inventory, hosts_file=hosts_file)


# Only where /root is the node's own copy-on-write overlay: never the machine's real /root.
_EMPTY_NODE_BASHRC = (
    'awk \'$2 == "/root" && $3 == "overlay" {found = 1} END {exit !found}\' /proc/mounts'
    " && : > /root/.bashrc"
)


def empty_node_bashrc(lab: Lab) -> None:
    """Give every node's root an empty ~/.bashrc, as on a fresh host.

    A root-mode node's /root is an overlay of this machine's /root, so it shows the machine's
    own ~/.bashrc, which Debian's bash sources for every command run over SSH. A developer's
    (pyenv init, say) can cost a hundred ms of server CPU per command and would swamp what is
    measured here. The change stays in the node's overlay layer and goes with the lab.
    """
    proc = subprocess.run(
        bare_asyncssh_argv(lab, _EMPTY_NODE_BASHRC),
        env=lab.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"could not empty the nodes' ~/.bashrc:\n{proc.stderr.strip()}")


def node_log_lines(lab: Lab) -> collections.Counter[str]:
    """What the nodes' sshd logged (LogLevel ERROR), by message without the pid."""
    lines: collections.Counter[str] = collections.Counter()
    for log in sorted((lab.directory / "nodes").glob("node*/sshd.log")):
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            lines[re.sub(r"\[\d+\]|port \d+", "", line).strip()] += 1
    return lines


@contextmanager
def _signals_ignored() -> Iterator[None]:
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the lab is stopped either way."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


# --- measuring -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    """One tool's run over every host."""

    tool: str
    round: int
    """0 is the warm-up round."""
    wall_s: float
    cpu_s: float
    """User + system CPU of the tool's whole process tree: the client's cost."""
    cpu_sys_s: float
    """The system part of ``cpu_s``."""
    server_cpu_s: float
    """CPU of the lab's sshd nodes meanwhile: the servers' cost, on the same cores."""
    other_cpu_s: float
    """CPU the machine spent on anything else meanwhile: noise (other users, kernel)."""
    ok: bool
    error: str | None = None
    redone: bool = False
    """Too noisy (see `noisy`) and run again: not counted."""

    @property
    def noisy(self) -> bool:
        """Whether other work took more than NOISY_SHARE of the CPU the run itself took."""
        own = self.cpu_s + self.server_cpu_s
        return self.other_cpu_s > max(NOISY_SHARE * own, NOISY_FLOOR_S)


@dataclass(frozen=True, slots=True)
class CpuClock:
    """CPU seconds consumed so far, split by whom."""

    children: float
    """This process's reaped children: the tools (the nodes are reaped only when they stop)."""
    children_sys: float
    """The system (kernel) part of ``children``."""
    servers: float
    machine: float

    @classmethod
    def read(cls, lab: Lab) -> CpuClock:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(
            children=usage.ru_utime + usage.ru_stime,
            children_sys=usage.ru_stime,
            servers=sum(_process_tree_cpu_s(pid) for pid in lab.node_pids),
            machine=_machine_busy_s(),
        )


_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _process_tree_cpu_s(pid: int) -> float:
    """CPU of ``pid``, of its children it has reaped (an sshd's finished connections) and of
    its live descendants (connections kept open, as the warm agent's are)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # utime, stime, cutime, cstime are fields 14-17
    own = sum(int(x) for x in fields[11:15]) / _TICKS_PER_S
    return own + sum(_process_tree_cpu_s(int(child)) for child in children.split())


def _machine_busy_s() -> float:
    """CPU seconds all cores spent not idle since boot (/proc/stat)."""
    with open("/proc/stat", encoding="ascii") as stat:
        ticks = [int(x) for x in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / _TICKS_PER_S


def wait_for_quiet(threshold: float, max_wait_s: float) -> float:
    """Wait until other work keeps less than ``threshold`` of all cores busy, or give up.

    The lab is idle between runs, so whatever keeps the machine busy then is someone else's.
    Returns the busy share last seen.
    """
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + max_wait_s
    while True:
        busy = _machine_busy_s()
        time.sleep(QUIET_SAMPLE_S)
        share = (_machine_busy_s() - busy) / (QUIET_SAMPLE_S * cores)
        if share < threshold or time.monotonic() > deadline:
            return share


def measure(tool: Tool, program: str, lab: Lab, round_no: int, settle_s: float) -> Run:
    """Run ``tool`` once over the whole lab; it must succeed on every host.

    The CPU readings are taken ``settle_s`` after the tool ends, so that the nodes have
    finished closing its sessions; wall time stops when the tool does.
    """
    argv = tool.argv(lab, program)
    env = {**lab.env, **tool.env(lab)}
    before = CpuClock.read(lab)
    helper_before = tool.helper_cpu(lab)
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        error = None if proc.returncode == 0 else _failure(proc)
    except subprocess.TimeoutExpired:
        error = f"timed out after {RUN_TIMEOUT_S:g} s"
    wall = time.perf_counter() - started
    time.sleep(settle_s)
    after = CpuClock.read(lab)
    client = after.children - before.children + tool.helper_cpu(lab) - helper_before
    server = after.servers - before.servers
    other = max(0.0, after.machine - before.machine - client - server)
    tool.after(lab)
    return Run(
        tool.name,
        round_no,
        wall,
        client,
        after.children_sys - before.children_sys,
        server,
        other,
        ok=error is None,
        error=error,
    )


def _failure(proc: subprocess.CompletedProcess[bytes]) -> str:
    output = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()
    tail = " | ".join(output[-3:]) or "(no output)"
    return f"exit {proc.returncode}: {tail}"


def rotated(items: Sequence[Tool], by: int) -> list[Tool]:
    """``items`` started at index ``by`` (mod length): each tool takes every position in turn."""
    shift = by % len(items) if items else 0
    return [*items[shift:], *items[:shift]]


def run_rounds(
    available: Sequence[tuple[Tool, str]],
    lab: Lab,
    rounds: int,
    pause_s: float,
    max_wait_s: float,
) -> list[Run]:
    """Round 0 (warm-up) and rounds 1..``rounds``, each tool once per round.

    Before each run, waits up to ``max_wait_s`` for the machine to be quiet (see
    `wait_for_quiet`; 0 does not wait), and a noisy run is done again, up to NOISY_REDOS
    times; the runs done again are kept, marked ``redone``.
    """
    runs: list[Run] = []
    programs = {tool.name: program for tool, program in available}
    for round_no in range(rounds + 1):
        label = "warm-up" if round_no == 0 else f"round {round_no}/{rounds}"
        for tool in rotated([tool for tool, _ in available], round_no):
            for attempt in range(NOISY_REDOS + 1):
                if max_wait_s > 0:
                    wait_for_quiet(QUIET_THRESHOLD, max_wait_s)
                run = measure(tool, programs[tool.name], lab, round_no, pause_s)
                redo = run.ok and run.noisy and attempt < NOISY_REDOS and max_wait_s > 0
                if redo:
                    run = replace(run, redone=True)
                runs.append(run)
                _print_run(label, run, len(lab.addresses))
                if not redo:
                    break
    return runs


def _print_run(label: str, run: Run, hosts: int) -> None:
    status = "ok" if run.ok else f"FAILED ({run.error})"
    if run.redone:
        status += ", noisy: again"
    print(
        f"  {label:>11}  {run.tool:<14} {run.wall_s:6.2f} s wall  "
        f"client {run.cpu_s * 1000 / hosts:5.1f} ms/host  "
        f"servers {run.server_cpu_s * 1000 / hosts:5.1f} ms/host  "
        f"other {run.other_cpu_s:4.2f} s  {status}",
        flush=True,
    )


# --- reporting -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """A tool's counted runs, reduced to medians; ``None`` figures when any run failed."""

    tool: str
    runs: int
    failed: int
    wall_s: float | None = None
    wall_min_s: float | None = None
    wall_max_s: float | None = None
    cpu_ms_per_host: float | None = None
    server_cpu_ms_per_host: float | None = None
    other_cpu_s: float | None = None
    wall_ratio: float | None = None
    cpu_ratio: float | None = None
    errors: list[str] = field(default_factory=list)


def summarize(runs: Sequence[Run], tool_names: Sequence[str], hosts: int) -> list[Summary]:
    """Medians over the counted rounds; ratios are tool / bastion."""
    summaries: dict[str, Summary] = {}
    for name in tool_names:
        counted = [r for r in runs if r.tool == name and r.round > 0 and not r.redone]
        failed = [r for r in counted if not r.ok]
        if failed or not counted:
            errors = sorted({r.error or "" for r in failed})
            summaries[name] = Summary(name, len(counted), len(failed), errors=errors)
            continue
        walls = [r.wall_s for r in counted]
        summaries[name] = Summary(
            name,
            len(counted),
            0,
            wall_s=statistics.median(walls),
            wall_min_s=min(walls),
            wall_max_s=max(walls),
            cpu_ms_per_host=statistics.median(r.cpu_s * 1000 / hosts for r in counted),
            server_cpu_ms_per_host=statistics.median(
                r.server_cpu_s * 1000 / hosts for r in counted
            ),
            other_cpu_s=statistics.median(r.other_cpu_s for r in counted),
        )
    base = summaries.get(BASELINE)
    if base is None or base.wall_s is None or base.cpu_ms_per_host is None:
        return list(summaries.values())
    return [
        _with_ratios(s, base.wall_s, base.cpu_ms_per_host) if s.wall_s is not None else s
        for s in summaries.values()
    ]


def _with_ratios(summary: Summary, base_wall: float, base_cpu: float) -> Summary:
    assert summary.wall_s is not None and summary.cpu_ms_per_host is not None
    return replace(
        summary,
        wall_ratio=summary.wall_s / base_wall,
        cpu_ratio=summary.cpu_ms_per_host / base_cpu,
    )


def markdown_table(summaries: Sequence[Summary], skipped: Sequence[str]) -> str:
    """Medians of the counted runs; servers' CPU and other CPU are there to read wall time by."""
    lines = [
        "| tool | wall s | wall s (min-max) | client CPU ms/host | wall / bastion "
        "| CPU / bastion | servers' CPU ms/host | other CPU s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summaries:
        if s.wall_s is None:
            lines.append(f"| {s.tool} | failed {s.failed}/{s.runs} runs | | | | | | |")
            continue
        ratios = (
            f"{s.wall_ratio:.2f} | {s.cpu_ratio:.2f}"
            if s.wall_ratio is not None and s.cpu_ratio is not None
            else "- | -"
        )
        lines.append(
            f"| {s.tool} | {s.wall_s:.2f} | {s.wall_min_s:.2f}-{s.wall_max_s:.2f} "
            f"| {s.cpu_ms_per_host:.1f} | {ratios} | {s.server_cpu_ms_per_host:.0f} "
            f"| {s.other_cpu_s:.2f} |"
        )
    lines += [f"| {name} | skipped: not installed | | | | | | |" for name in skipped]
    return "\n".join(lines)


def verdicts(summaries: Sequence[Summary]) -> list[str]:
    """The issue's two cold targets, met or not, in words, with the gap when missed."""
    by_name = {s.tool: s for s in summaries}
    base = by_name.get(BASELINE)
    if base is None or base.wall_s is None or base.cpu_ms_per_host is None:
        return ["targets: not evaluated (bastion did not complete every run)"]
    peers = [by_name[p] for p in PEERS if p in by_name and by_name[p].wall_s is not None]
    lines = []
    if peers:
        fastest = min(peers, key=lambda s: s.wall_s or 0.0)
        assert fastest.wall_s is not None
        ratio = base.wall_s / fastest.wall_s
        met = "MET" if ratio <= WALL_TARGET_RATIO else "NOT MET"
        lines.append(
            f"target wall <= {WALL_TARGET_RATIO:g} x fastest peer: {met} (bastion "
            f"{base.wall_s:.2f} s = {ratio:.2f} x {fastest.tool} {fastest.wall_s:.2f} s)"
        )
    else:
        lines.append("target wall vs fastest peer: not evaluated (no peer completed)")
    met = "MET" if base.cpu_ms_per_host <= CPU_TARGET_MS_PER_HOST else "NOT MET"
    floor = by_name.get("bare-asyncssh")
    versus = ""
    if floor is not None and floor.cpu_ms_per_host:
        versus = f", {base.cpu_ms_per_host / floor.cpu_ms_per_host:.2f} x the bare asyncssh loop"
    lines.append(
        f"target CPU <= {CPU_TARGET_MS_PER_HOST:g} ms/host: {met} "
        f"(bastion {base.cpu_ms_per_host:.1f} ms/host{versus})"
    )
    return lines + warm_verdict(by_name)


WARM_TARGET = 0.25
"""Warm wall time at most this share of cold pdsh's."""


def warm_verdict(by_name: dict[str, Summary]) -> list[str]:
    warm, pdsh = by_name.get("bastion-warm"), by_name.get("pdsh")
    if warm is None or pdsh is None or warm.wall_s is None or pdsh.wall_s is None:
        return []
    met = "MET" if warm.wall_s <= WARM_TARGET * pdsh.wall_s else "NOT MET"
    return [
        f"target warm wall <= {WARM_TARGET:g}x cold pdsh: {met} (bastion-warm "
        f"{warm.wall_s:.2f} s = {warm.wall_s / pdsh.wall_s:.2f}x pdsh {pdsh.wall_s:.2f} s)"
    ]


def noise_note(runs: Sequence[Run]) -> str:
    """How much CPU other work took during the counted runs, against what the runs took."""
    counted = [r for r in runs if r.round > 0 and r.ok and not r.redone]
    if not counted:
        return "other CPU: no counted run"
    worst = max(r.other_cpu_s / max(1e-9, r.cpu_s + r.server_cpu_s) for r in counted)
    redone = sum(1 for r in runs if r.redone)
    note = f"other CPU during the counted runs: at most {worst:.0%} of a run's own CPU"
    note += f" ({redone} noisy runs done again)"
    busy = sum(1 for r in counted if r.noisy)
    if busy:
        note += f"; WARNING: {busy} of {len(counted)} counted runs shared the machine"
    return note


# --- machine context -----------------------------------------------------------------------


def _first_line(argv: Sequence[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "?"
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return lines[0].strip() if lines else "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine_context(available: Sequence[tuple[Tool, str]]) -> dict[str, object]:
    versions = {tool.name: _first_line([prog, *tool.version_args]) for tool, prog in available}
    versions["openssh"] = _first_line(["ssh", "-V"])
    # The checkout bastion runs from (an editable install), with uncommitted changes marked.
    versions["checkout"] = _first_line(
        ["git", "-C", str(BENCH_DIR.parent), "describe", "--always", "--dirty"]
    )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "asyncssh": importlib.metadata.version("asyncssh"),
        "versions": versions,
    }


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100, help="lab nodes (1-254; default 100)")
    parser.add_argument("--rounds", type=int, default=5, help="counted rounds (default 5)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between runs (default 1)")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=30.0,
        help="seconds to wait before each run for other work to calm down (default 30; 0: never)",
    )
    parser.add_argument(
        "--tools", help="comma-separated subset, e.g. bastion,pdsh (default: all installed)"
    )
    parser.add_argument(
        "--openssh-default-kex",
        action="store_true",
        help=f"let pdsh, pssh and clush use OpenSSH's default key exchange (default: {SAME_KEX})",
    )
    parser.add_argument(
        "--keep-node-bashrc",
        action="store_true",
        help="leave the nodes' root ~/.bashrc (this machine's own) in place",
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument(
        "--sweep",
        help="comma-separated host counts, e.g. 10,50,100: one lab of the largest, "
        "measured at each count (instead of --hosts)",
    )
    parser.add_argument(
        "--chart", type=Path, help="also draw the results as a PNG here (bench/chart.py)"
    )
    parser.add_argument(
        "--subnet", default=SUBNET, help=f"the lab's first three octets (default {SUBNET})"
    )
    parser.add_argument(
        "--cheap-hosts",
        type=int,
        default=0,
        help="also measure this many cheap in-process hosts (bench/scale.py), e.g. 1000",
    )
    parser.add_argument(
        "--cheap-net", type=int, default=30, help="the cheap hosts' second octet (default 30)"
    )
    args = parser.parse_args(argv)
    args.counts = sorted({int(n) for n in args.sweep.split(",")}) if args.sweep else [args.hosts]
    if not all(1 <= n <= manager.MAX_NODES for n in args.counts):
        parser.error(f"host counts must be between 1 and {manager.MAX_NODES}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def select_tools(only: str | None) -> tuple[list[tuple[Tool, str]], list[str]]:
    """The (tool, program path) pairs to run, and the names of those not installed."""
    wanted = None if only is None else {name.strip() for name in only.split(",")}
    unknown = (wanted or set()) - {tool.name for tool in all_tools()}
    if unknown:
        raise SystemExit(f"unknown tools: {', '.join(sorted(unknown))}")
    available: list[tuple[Tool, str]] = []
    skipped: list[str] = []
    for tool in all_tools():
        if wanted is not None and tool.name not in wanted:
            continue
        program = tool.resolve()
        if program is None:
            skipped.append(tool.name)
        else:
            available.append((tool, program))
    return available, skipped


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/fanout.py needs root: the lab's nodes listen on port 22", file=sys.stderr)
        return 2
    available, skipped = select_tools(args.tools)
    for name in skipped:
        print(f"note: {name} is not installed; skipped", file=sys.stderr)
    if not available:
        print("no tool to benchmark", file=sys.stderr)
        return 2
    _interrupt_on_sigterm()
    try:
        return benchmark(args, available, skipped)
    except KeyboardInterrupt:
        print("interrupted (no lab left running)", file=sys.stderr)
        return 130


def benchmark(
    args: argparse.Namespace, available: Sequence[tuple[Tool, str]], skipped: Sequence[str]
) -> int:
    """Start the lab, run every round, stop the lab, report; the exit status of the script."""
    compile_bastion()  # bench/precompile.py: as an installed copy would be
    context = machine_context(available)
    context["load_before"] = _load()
    print(json.dumps(context, indent=2))
    kex = None if args.openssh_default_kex else SAME_KEX
    print(
        f"{args.hosts} hosts, {FANOUT} at once, 1 warm-up + {args.rounds} rounds; "
        f"OpenSSH peers' KexAlgorithms: {kex or 'default'}; "
        f"nodes' ~/.bashrc: {'kept' if args.keep_node_bashrc else 'emptied'}",
        flush=True,
    )
    names = [tool.name for tool, _ in available]
    points: list[Point] = []
    with running_lab(max(args.counts), kex, args.subnet) as lab:
        if not args.keep_node_bashrc:
            empty_node_bashrc(lab)
        try:
            for count in args.counts:
                print(f"\n== {count} hosts ==", flush=True)
                part = first_hosts(lab, count)
                runs = run_rounds(available, part, args.rounds, args.pause, args.max_wait)
                summaries = summarize(runs, names, count)
                points.append(Point(count, runs, summaries))
        finally:
            stop_warm_agent(lab)
        server_errors = node_log_lines(lab)
    if args.cheap_hosts:
        with cheap_lab(args.cheap_hosts, args.cheap_net) as cheap:
            try:
                print(f"\n== {args.cheap_hosts} cheap hosts ==", flush=True)
                runs = run_rounds(available, cheap, args.rounds, args.pause, args.max_wait)
                summaries = summarize(runs, names, args.cheap_hosts)
                points.append(Point(args.cheap_hosts, runs, summaries, cheap=True))
            finally:
                stop_warm_agent(cheap)
    context["load_after"] = _load()
    for point in points:
        print(f"\n== {point.hosts} hosts ==")
        print_report(context, point.summaries, skipped, point.runs, server_errors)
    if args.json:
        record = {
            "context": context,
            "config": {
                "hosts": args.counts[-1],
                "sweep": args.counts,
                "rounds": args.rounds,
                "fanout": FANOUT,
                "openssh_kex": kex or "default",
                "node_bashrc": "kept" if args.keep_node_bashrc else "emptied",
            },
            "skipped": skipped,
            "host_key_notes": {k: v for k, v in HOST_KEY_NOTES.items() if k in names},
            "sshd_log_lines": dict(server_errors),
            "points": [
                {
                    "hosts": point.hosts,
                    "servers": "cheap in-process asyncssh" if point.cheap else "OpenSSH sshd",
                    "runs": [asdict(r) for r in point.runs],
                    "summary": [asdict(s) for s in point.summaries],
                }
                for point in points
            ],
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"raw numbers: {args.json}")
    if args.chart:
        from chart import draw  # bench/chart.py, beside this script

        draw(
            [(p.hosts, [asdict(s) for s in p.summaries]) for p in points],
            args.chart,
            f"{context['date']}, {context['nproc']} cores, load {context['load_before']} "
            f"-> {context['load_after']}, {args.rounds} rounds, {FANOUT} at once",
            [p.hosts for p in points if p.cheap],
        )
        print(f"chart: {args.chart}")
    failed = [s for p in points for s in p.summaries if s.failed]
    return 0 if not failed else 1


@dataclass(frozen=True, slots=True)
class Point:
    """One host count of a run (several with --sweep)."""

    hosts: int
    runs: list[Run]
    summaries: list[Summary]
    cheap: bool = False
    """Cheap in-process hosts (bench/scale.py), not real sshd nodes."""


def print_report(
    context: dict[str, object],
    summaries: Sequence[Summary],
    skipped: Sequence[str],
    runs: Sequence[Run],
    server_errors: collections.Counter[str],
) -> None:
    load = f"before {context['load_before']}, after {context['load_after']}"
    print(f"\nload average (1/5/15 min): {load}")
    print(f"\n{markdown_table(summaries, skipped)}\n")
    for name, note in HOST_KEY_NOTES.items():
        if any(s.tool == name for s in summaries):
            print(f"host keys, {name}: {note}")
    for s in summaries:
        for error in s.errors:
            print(f"{s.tool} failed: {error}")
    print(noise_note(runs))
    print(f"lines in the nodes' sshd logs: {sum(server_errors.values())}")
    for message, count in server_errors.most_common(5):
        print(f"  {count} x {message}")
    for line in verdicts(summaries):
        print(line)


if __name__ == "__main__":
    sys.exit(main())
