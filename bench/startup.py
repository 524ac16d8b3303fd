"""Start-up benchmark: what one command on one host costs bastion, its peers and plain ssh.

A benchmark, not a test. It starts a one-node lab of real sshd (root: port 22 in its own
namespace) in a temporary directory and always stops it, then runs each command ``--rounds``
times and reports the median wall time and the mean client CPU (user + system of the whole
process tree, from ``RUSAGE_CHILDREN``; less sensitive to a loaded machine than wall time):

    .venv/bin/python bench/startup.py --rounds 10 [--subnet 127.0.8] [--json FILE]

``bastion --help`` and ``bastion --version`` show what the CLI costs before any work;
``python -c pass`` is the interpreter's own floor, ``bench/bare_asyncssh.py`` a Python SSH
client's. bastion is byte-compiled first (bench/precompile.py), as an installed copy is.
Method and results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from precompile import compile_bastion

from bastion.lab import manager

VENV_BIN = Path(sys.executable).parent
SAME_KEX = "curve25519-sha256"


@dataclass(frozen=True, slots=True)
class Measured:
    """One command's runs: median wall time, mean CPU, and whether every run succeeded."""

    name: str
    argv: list[str]
    wall_ms: float
    cpu_ms: float
    ok: bool


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(name: str, argv: list[str], env: dict[str, str], rounds: int) -> Measured:
    """Run ``argv`` once to warm the page cache, then ``rounds`` times counted."""
    subprocess.run(argv, env=env, capture_output=True, check=False, timeout=60)
    walls: list[float] = []
    ok = True
    cpu_before = _children_cpu_s()
    for _ in range(rounds):
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, check=False, timeout=60)
        walls.append(time.perf_counter() - started)
        ok = ok and done.returncode == 0
    cpu = (_children_cpu_s() - cpu_before) / rounds
    return Measured(name, argv, statistics.median(walls) * 1000, cpu * 1000, ok)


@contextmanager
def one_node_lab(subnet: str) -> Iterator[tuple[Path, str]]:
    """A one-node lab in a temporary directory: (lab directory, address)."""
    tmp = Path(tempfile.mkdtemp(prefix="bastion-startup-"))
    lab_dir = tmp / "lab"
    try:
        report = manager.up(1, subnet=subnet, lab_dir=lab_dir)
        yield lab_dir, report[0].address
    finally:
        manager.down(lab_dir)
        shutil.rmtree(tmp, ignore_errors=True)


def commands(lab_dir: Path, address: str) -> list[tuple[str, list[str]]]:
    """Every command measured, those whose program is missing left out."""
    ssh_options = [
        "-F", "/dev/null", "-i", str(lab_dir / "id_ed25519"),
        "-o", f"UserKnownHostsFile={lab_dir / 'known_hosts'}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
        "-o", f"KexAlgorithms={SAME_KEX}",
    ]  # fmt: skip
    bastion = str(VENV_BIN / "bastion")
    inventory = str(lab_dir / "inventory.yaml")
    listed: list[tuple[str, list[str]]] = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("bastion --version", [bastion, "--version"]),
        ("bastion --help", [bastion, "--help"]),
        ("bastion run --help", [bastion, "run", "--help"]),
        ("bastion run -H node1 true", [bastion, "run", "-i", inventory, "-H", "node1", "true"]),
        ("ssh host true", ["ssh", *ssh_options, f"root@{address}", "true"]),
    ]
    if shutil.which("pdsh"):
        listed.append(("pdsh (1 host)", ["pdsh", "-R", "ssh", "-l", "root", "-w", address, "true"]))
    if shutil.which("parallel-ssh"):
        extra = " ".join(ssh_options)
        listed.append(
            ("pssh (1 host)", ["parallel-ssh", "-H", address, "-l", "root", "-x", extra, "true"])
        )
    listed += python_clients(lab_dir, address)
    return listed


def python_clients(lab_dir: Path, address: str) -> list[tuple[str, list[str]]]:
    """The bare asyncssh loop (the floor for a Python client) and the parallel-ssh library."""
    bench = Path(__file__).resolve().parent
    common = ["--key", str(lab_dir / "id_ed25519"), "--known-hosts", str(lab_dir / "known_hosts")]
    return [
        ("bare asyncssh loop (1 host)",
         [sys.executable, str(bench / "bare_asyncssh.py"), *common, address]),
        ("parallel-ssh library (1 host)",
         [sys.executable, str(bench / "pssh_library.py"), *common, address]),
    ]  # fmt: skip


def tool_env(lab_dir: Path, state: Path) -> dict[str, str]:
    """The caller's environment without settings that change what a tool does."""
    dropped = ("BASTION_", "PDSH_", "WCOLL", "SSH_AUTH_SOCK", "SSH_AGENT_PID")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(
        {
            "BASTION_LAB_DIR": str(lab_dir),
            "BASTION_HISTORY_FILE": str(state / "history.jsonl"),
            "BASTION_PERSIST": "off",  # cold, direct runs: no agent started (warm by default)
            "XDG_STATE_HOME": str(state),
            "NO_COLOR": "1",
            "PDSH_SSH_ARGS_APPEND": (
                f"-F /dev/null -i {lab_dir / 'id_ed25519'} "
                f"-o UserKnownHostsFile={lab_dir / 'known_hosts'} "
                f"-o StrictHostKeyChecking=yes -o BatchMode=yes -o KexAlgorithms={SAME_KEX}"
            ),
        }
    )
    return env


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--subnet", default="127.0.8", help="the lab node's /24 (default 127.0.8)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/startup.py needs root: the lab node listens on port 22", file=sys.stderr)
        return 2
    compile_bastion()  # bench/precompile.py: as an installed copy would be
    load_before = os.getloadavg()
    with one_node_lab(args.subnet) as (lab_dir, address):
        env = tool_env(lab_dir, lab_dir.parent / "state")
        results = [measure(n, a, env, args.rounds) for n, a in commands(lab_dir, address)]
    load_after = os.getloadavg()
    loads = f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f}"
    print(f"{loads}; {args.rounds} rounds")
    print("| command | wall ms (median) | client CPU ms (mean) | ok |")
    print("| --- | ---: | ---: | --- |")
    for r in results:
        print(f"| {r.name} | {r.wall_ms:.0f} | {r.cpu_ms:.0f} | {'yes' if r.ok else 'NO'} |")
    if args.json:
        record = {"load": [load_before, load_after], "results": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
