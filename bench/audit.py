"""Audit benchmark: `bastion audit` against `bastion run --all true` on the same N lab hosts.

A benchmark, not a test: run it by hand on an otherwise idle machine (and say what else ran).

    .venv/bin/python bench/audit.py --hosts 100 --rounds 3 [--subnet 127.0.8]

It starts a private lab of N sshd nodes in a temporary BASTION_LAB_DIR (always stopped again),
then per round runs `run --all true` and `audit --all -F json` (order alternating), measuring
wall time and the client CPU of each command (RUSAGE_CHILDREN). The issue's target: the audit
(one round trip per host) takes no more than about twice `run --all true`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASTION = [sys.executable, "-m", "bastion"]


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, client CPU seconds, exit code) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(
        [*BASTION, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stderr.decode(errors="replace")[-2000:])
    return wall, cpu, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--subnet", default="127.0.8")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bastion-audit-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
        env.update(
            BASTION_LAB_DIR=str(Path(tmp) / "lab"),
            XDG_STATE_HOME=str(Path(tmp) / "state"),
            BASTION_HISTORY_FILE=str(Path(tmp) / "history.jsonl"),
            BASTION_PERSIST="off",  # cold, direct runs: no agent started (warm by default)
            NO_COLOR="1",
        )
        up = subprocess.run(
            [*BASTION, "lab", "up", "--nodes", str(options.hosts), "--subnet", options.subnet],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if up.returncode != 0:
            sys.stderr.write(up.stderr)
            return 1
        try:
            commands = {
                "run true": ["run", "-i", "lab", "--all", "-o", "quiet", "true"],
                "audit": ["audit", "-i", "lab", "--all", "-o", "json"],
            }
            for args in commands.values():  # warm-up, not counted
                timed(args, env)
            walls: dict[str, list[float]] = {name: [] for name in commands}
            cpus: dict[str, list[float]] = {name: [] for name in commands}
            for round_ in range(options.rounds):
                order = list(commands) if round_ % 2 == 0 else list(reversed(commands))
                for name in order:
                    wall, cpu, code = timed(commands[name], env)
                    walls[name].append(wall)
                    cpus[name].append(cpu)
                    print(
                        f"round {round_ + 1} {name:8} wall {wall:6.2f}s cpu {cpu:6.2f}s exit {code}"
                    )
        finally:
            subprocess.run([*BASTION, "lab", "down"], env=env, capture_output=True, check=False)
    load = os.getloadavg()
    print(f"load average during the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    for name, times in walls.items():
        wall, cpu = statistics.median(times), statistics.median(cpus[name])
        print(f"{name:8} median wall {wall:6.2f}s  client cpu {cpu:6.2f}s "
              f"({1000 * cpu / options.hosts:.1f} ms/host)")  # fmt: skip
    ratio = statistics.median(walls["audit"]) / statistics.median(walls["run true"])
    print(f"audit / run-true wall ratio: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
