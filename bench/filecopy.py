"""Copy benchmark: one 50 MB file, and a tree of 1,000 small files, to N real lab hosts.

A benchmark, not a test: run it by hand on an otherwise idle machine.

    .venv/bin/python bench/filecopy.py --hosts 20 --rounds 3 [--json FILE]

It starts its own lab of N sshd nodes on 127.0.6.1..N (root mode: one mount namespace per node,
so each node writes its own copy under its private /root) in a temporary BASTION_LAB_DIR, and
always stops it again. Contenders, each pushing the same data to /root/bench-copy/ on every
host, 64 hosts at once, with the lab's key, strict pinned host keys and the same key exchange:

- ``bastion copy`` to empty destinations, and ``bastion copy`` again with nothing changed (the
  checksum pass alone: what a re-run costs);
- ``parallel-scp`` (pssh), which runs ``scp`` per host;
- ``pdcp`` (pdsh), which needs ``pdcp`` installed on every target (true in this lab, whose nodes
  share this machine's /usr; often not on real nodes);
- ``clush --copy`` (ClusterShell), which runs ``scp`` per host.

``--no-sftp`` removes ``Subsystem sftp`` from every node's sshd_config (and makes sshd re-read
it with SIGHUP), as on a hardened host: bastion then copies over exec sessions (a tar stream,
or ``cat`` per file), as pdcp and clush do anyway. ``--subnet`` moves the lab (a helper shares
the machine: use its test net, e.g. ``127.12.6``), ``--tools bastion,pdcp,clush`` picks
contenders.

Before each timed run (except bastion's unchanged case) the destination is removed on every
host, and after it every host is checked to hold every file (untimed). Per run: wall time and
the client CPU time of the tool's whole process tree (``RUSAGE_CHILDREN``). One warm-up round
is not counted; tools take turns in an order rotated each round. Method and results:
docs/files.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from bastion.lab import manager

SUBNET = "127.0.6"
"""The copy benchmark's own lab network (fanout uses 127.0.7, the tests 127.N.3/4/9)."""
FANOUT = 64
KEX = "curve25519-sha256"
"""Pinned for the OpenSSH-based peers: the key exchange asyncssh negotiates (see fanout.py)."""
DEST = "/root/bench-copy"
RUN_TIMEOUT_S = 600.0
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True, slots=True)
class Lab:
    directory: Path
    addresses: tuple[str, ...]
    inventory: Path
    hosts_file: Path
    env: dict[str, str]

    @property
    def ssh_options(self) -> list[str]:
        return [
            "-F", "/dev/null", "-i", str(self.directory / "id_ed25519"),
            "-o", f"UserKnownHostsFile={self.directory / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            "-o", f"KexAlgorithms={KEX}",
        ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Case:
    """What is copied: a local path, whether it is a tree, and how many files land per host."""

    name: str
    source: Path
    recursive: bool
    files: int


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    program: str
    argv: Callable[[Lab, Case], list[str]]
    env: Callable[[Lab], dict[str, str]] = lambda lab: {}
    fresh: bool = True
    """Whether the destination is emptied before each run (False: measure a no-change re-run)."""


def tools(no_sftp: bool = False) -> list[list[Tool]]:
    """The contenders, in turns: bastion's unchanged re-run must follow its full copy.

    Without SFTP on the nodes, OpenSSH >= 9's scp (which speaks SFTP by default) needs ``-O``,
    its legacy protocol: given to clush --copy then (pdcp speaks its own).
    """
    bastion = str(VENV_BIN / "bastion")
    legacy_scp = ["-O", "scp_options=-O"] if no_sftp else []

    def bastion_argv(lab: Lab, case: Case) -> list[str]:
        recursive = ["-r"] if case.recursive else []
        return [
            bastion, "copy", "-i", str(lab.inventory), "--all", "-o", "quiet",
            "-f", str(FANOUT), *recursive, str(case.source), f"{DEST}/",
        ]  # fmt: skip

    return [
        [
            Tool("bastion", bastion, bastion_argv),
            Tool("bastion (unchanged)", bastion, bastion_argv, fresh=False),
        ],
        [Tool(
            "parallel-scp",
            "parallel-scp",
            lambda lab, case: [
                "parallel-scp", "-p", str(FANOUT), "-h", str(lab.hosts_file), "-l", "root",
                "-x", shlex.join(lab.ssh_options), *(["-r"] if case.recursive else []),
                str(case.source), f"{DEST}/",
            ],
        )],
        [Tool(
            "pdcp",
            "pdcp",
            lambda lab, case: [
                "pdcp", "-R", "ssh", "-f", str(FANOUT), "-l", "root",
                "-w", ",".join(lab.addresses), *(["-r"] if case.recursive else []),
                str(case.source), f"{DEST}/",
            ],
            env=lambda lab: {"PDSH_SSH_ARGS_APPEND": " ".join(lab.ssh_options)},
        )],
        [Tool(
            "clush --copy",
            "clush",
            lambda lab, case: [
                "clush", "-S", "-f", str(FANOUT), "-l", "root", *legacy_scp,
                "-o", shlex.join(lab.ssh_options),
                "-w", ",".join(lab.addresses), "--copy", str(case.source), "--dest", f"{DEST}/",
            ],
        )],
    ]  # fmt: skip


# --- data and lab --------------------------------------------------------------------------


def make_cases(root: Path, big_mb: int, small: int) -> list[Case]:
    big = root / "big.bin"
    with big.open("wb") as handle:
        for _ in range(big_mb):
            handle.write(os.urandom(1024 * 1024))
    tree = root / "tree"
    for index in range(small):
        folder = tree / f"d{index % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index:04d}.conf").write_bytes(os.urandom(512 + (index * 37) % 3584))
    return [
        Case(f"{big_mb} MB file", big, False, 1),
        Case(f"{small} small files", tree, True, small),
    ]


def remove_sftp(lab_dir: Path, report: manager.LabReport) -> None:
    """Take ``Subsystem sftp`` out of every node's sshd_config; sshd re-reads it on SIGHUP."""
    from bastion.lab.nodes import node_layout

    for node in report:
        config = node_layout(lab_dir, node.name).config
        kept = [
            line for line in config.read_text().splitlines() if not line.startswith("Subsystem")
        ]
        config.write_text("\n".join(kept) + "\n")
        if node.pid is not None:
            os.kill(node.pid, signal.SIGHUP)
    time.sleep(1.0)  # sshd re-executes itself on SIGHUP


@contextmanager
def running_lab(
    count: int, tmp: Path, subnet: str = SUBNET, no_sftp: bool = False
) -> Iterator[Lab]:
    lab_dir = tmp / "lab"
    state = tmp / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BASTION_", "PDSH_", "SSH_A"))}
    env.update(
        BASTION_LAB_DIR=str(lab_dir),
        XDG_STATE_HOME=str(state),
        BASTION_HISTORY_FILE=str(state / "history.jsonl"),
        BASTION_PERSIST="off",  # cold, direct runs: no agent started (warm by default)
        NO_COLOR="1",
    )
    try:
        print(f"starting {count} lab nodes on {subnet}.1-{count} ...", flush=True)
        report = manager.up(count, subnet=subnet, lab_dir=lab_dir)
        if no_sftp:
            remove_sftp(lab_dir, report)
        addresses = tuple(node.address for node in report)
        hosts_file = tmp / "hosts"
        hosts_file.write_text("".join(f"{a}\n" for a in addresses))
        assert report.inventory is not None
        yield Lab(lab_dir, addresses, report.inventory, hosts_file, env)
    finally:
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            print("stopping the lab ...", flush=True)
            manager.down(lab_dir)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def on_every_host(lab: Lab, command: str) -> subprocess.CompletedProcess[str]:
    argv = [str(VENV_BIN / "bastion"), "run", "-i", str(lab.inventory), "--all", "-o", "json"]
    return subprocess.run(
        [*argv, command], env=lab.env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip


def landed(lab: Lab, case: Case) -> str | None:
    """None when every host holds every file of ``case`` under DEST, else what is wrong."""
    done = on_every_host(lab, f"find {DEST} -type f | wc -l")
    counts = {
        json.loads(line)["host"]: json.loads(line)["stdout"].strip()
        for line in done.stdout.splitlines()
    }
    wrong = {host: count for host, count in counts.items() if count != str(case.files)}
    if done.returncode != 0 or wrong or len(counts) != len(lab.addresses):
        return f"expected {case.files} files per host, found {wrong or counts}"
    return None


# --- measuring -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    case: str
    tool: str
    round: int
    wall_s: float
    cpu_s: float
    error: str | None = None


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(tool: Tool, lab: Lab, case: Case, round_no: int) -> Run:
    if tool.fresh:
        on_every_host(lab, f"rm -rf {DEST} && mkdir -p {DEST}")
    before = children_cpu_s()
    started = time.perf_counter()
    proc = subprocess.run(
        tool.argv(lab, case), env={**lab.env, **tool.env(lab)}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip
    wall, cpu = time.perf_counter() - started, children_cpu_s() - before
    error = None
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        error = f"exit {proc.returncode}: {tail}"
    else:
        error = landed(lab, case)
    return Run(case.name, tool.name, round_no, wall, cpu, error)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big-mb", type=int, default=50)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="also write every run and the summary here")
    parser.add_argument("--subnet", default=SUBNET, help=f"the lab's /24 (default {SUBNET})")
    parser.add_argument("--no-sftp", action="store_true", help="nodes without Subsystem sftp")
    parser.add_argument("--tools", help="comma-separated programs to run (default: all)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root: each node needs its own /root for the copies")
    wanted = set(args.tools.split(",")) if args.tools else None
    turns = [
        turn
        for turn in tools(args.no_sftp)
        if shutil.which(turn[0].program) and (wanted is None or turn[0].name.split()[0] in wanted)
    ]
    missing = sorted({turn[0].name for turn in tools()} - {turn[0].name for turn in turns})
    if missing:
        print(f"not installed, skipped: {', '.join(missing)}")
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.1f} {load_before[1]:.1f} {load_before[2]:.1f}")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bastion-bench-copy-") as name:
        tmp = Path(name)
        cases = make_cases(tmp, args.big_mb, args.small)
        with running_lab(args.hosts, tmp, args.subnet, args.no_sftp) as lab:
            for case in cases:
                print(f"\n{case.name} to {args.hosts} hosts", flush=True)
                for round_no in range(args.rounds + 1):
                    shift = round_no % len(turns)
                    for tool in [tool for turn in turns[shift:] + turns[:shift] for tool in turn]:
                        run = measure(tool, lab, case, round_no)
                        runs.append(run)
                        label = "warm-up" if round_no == 0 else f"round {round_no}"
                        status = "ok" if run.error is None else f"FAILED: {run.error}"
                        print(
                            f"  {label:>8}  {tool.name:<20} {run.wall_s:7.2f} s wall  "
                            f"{run.cpu_s:6.2f} s CPU  {status}",
                            flush=True,
                        )
    summary = summarize(runs, args.hosts)
    print_summary(summary)
    print("load average after: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                    "load_before": load_before,
                    "load_after": os.getloadavg(),
                    "hosts": args.hosts,
                    "no_sftp": args.no_sftp,
                    "runs": [asdict(run) for run in runs],
                    "summary": summary,
                },
                indent=2,
            )
        )
    return 0 if all(row["failed"] == 0 for row in summary) else 1


def summarize(runs: list[Run], hosts: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for case in dict.fromkeys(run.case for run in runs):
        counted = [r for r in runs if r.case == case and r.round > 0]
        walls = {
            tool: [r.wall_s for r in counted if r.tool == tool]
            for tool in dict.fromkeys(r.tool for r in counted)
        }
        ours = [r for r in counted if r.tool == "bastion"]
        base = (
            statistics.median(walls["bastion"])
            if ours and all(r.error is None for r in ours)
            else None
        )
        for tool, tool_walls in walls.items():
            mine = [r for r in counted if r.tool == tool]
            failed = [r for r in mine if r.error is not None]
            row: dict[str, object] = {
                "case": case,
                "tool": tool,
                "runs": len(mine),
                "failed": len(failed),
            }
            if failed:
                row["errors"] = sorted({r.error or "" for r in failed})
            else:
                wall = statistics.median(tool_walls)
                cpu = statistics.median(r.cpu_s for r in mine)
                row.update(
                    wall_s=round(wall, 2),
                    wall_range_s=[round(min(tool_walls), 2), round(max(tool_walls), 2)],
                    cpu_ms_per_host=round(cpu * 1000 / hosts, 1),
                    vs_bastion=round(wall / base, 2) if base else None,
                )
            rows.append(row)
    return rows


def print_summary(rows: list[dict[str, object]]) -> None:
    print("\nmedians of the counted rounds (vs_bastion: wall time / bastion's)")
    for row in rows:
        if "wall_s" in row:
            print(
                f"  {row['case']:<18} {row['tool']:<20} {row['wall_s']:7.2f} s "
                f"{row['wall_range_s']!s:<15} {row['cpu_ms_per_host']:7.1f} ms CPU/host  "
                f"x{row['vs_bastion']}"
            )
        else:
            print(f"  {row['case']:<18} {row['tool']:<20} FAILED {row.get('errors')}")


if __name__ == "__main__":
    sys.exit(main())
