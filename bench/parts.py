"""Where a one-host `bastion run` spends its client CPU, part by part, cold and warm.

A benchmark, not a test. Each part is the difference between two probes that run one after
the other in fresh processes (alternating, rounds rotated, medians): the interpreter alone,
then the CLI's imports, then the inventory read and the selection, then the run machinery
(driver, executor, renderers, asyncio), then the SSH library (asyncssh and cryptography), then
the whole run, direct (``--no-agent``) and through a warm agent. Client CPU is user + system of
the probe's process (``RUSAGE_CHILDREN``); the warm agent's own CPU during the run is added.

    .venv/bin/python bench/parts.py --rounds 10 [--subnet 127.0.8] [--json FILE]

Starts a one-node lab of real sshd (root) in a temporary directory and always stops it.
Method and results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from fanout import agent_cpu_s, running_lab, stop_agent
from precompile import compile_bastion

VENV_BIN = Path(sys.executable).parent

CLI = "import bastion.cli.main, bastion.cli.run_cmd, bastion.cli.options"
INVENTORY = (
    CLI + "\nfrom bastion.cli.options import inventory_of, selection_from\n"
    "from bastion.select import select_hosts\n"
    "select_hosts(inventory_of({inv!r}), selection_from(False, [], ['node1'], None, []))"
)
MACHINERY = (
    INVENTORY + "\nimport bastion.cli.driver, bastion.executor, bastion.agent.client, "
    "bastion.render.inline, bastion.render.quiet, asyncio"
)
SSH_LIBRARY = MACHINERY + "\nimport bastion.transport.asyncssh_transport"
THIN = """
import asyncio, os, sys
from pathlib import Path
from bastion.agent.client import AgentTransport
from bastion.models import Host
from bastion.transport.base import CommandSpec, ConnectOptions
host = Host("node1", {address!r}, user="root", identity_file={key!r}, known_hosts={known!r})
async def main():
    agent = AgentTransport(Path(os.environ["XDG_RUNTIME_DIR"]) / "bastion" / "agent.sock",
                           ConnectOptions())
    result = await agent.run(host, CommandSpec("true"), lambda *_: None)
    await agent.close()
    return result
result = asyncio.run(main())
sys.stdout.write(result.status + chr(10))
os._exit(0 if result.status == "ok" else 1)
"""
"""The floor of a thin client: a warm run's one request to the agent with nothing else
(no typer, no inventory parsing, no renderer), as a client that only served warm runs would."""
SYNC = """
import json, os, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect(os.path.join(os.environ["XDG_RUNTIME_DIR"], "bastion", "agent.sock"))
lines = sock.makefile("rb")
lines.readline()  # hello
sock.sendall({request!r})
while True:
    answer = json.loads(lines.readline())
    if "result" in answer:
        break
sys.stdout.write(answer["result"]["status"] + chr(10))
os._exit(0 if answer["result"]["status"] == "ok" else 1)
"""
"""The floor of any Python client: the same request, prepared beforehand, on a blocking socket
with the standard library alone (no asyncio, no bastion module)."""


def sync_request(address: str, key: Path, known: Path) -> bytes:
    """The agent request of `THIN`, as bytes, made here so the probe imports nothing."""
    from bastion.agent.protocol import encode, host_to_wire, options_to_wire
    from bastion.models import Host
    from bastion.transport.base import ConnectOptions

    host = Host("node1", address, user="root", identity_file=str(key), known_hosts=str(known))
    message = {
        "op": "run", "id": 1, "host": host_to_wire(host), "jumps": {},
        "options": options_to_wire(ConnectOptions()), "command": "true", "timeout": None,
        "stdin": None,
    }  # fmt: skip
    return encode(message)


PARTS = (
    ("interpreter", "interpreter", None),
    ("CLI imports (typer, options)", "cli", "interpreter"),
    ("inventory: import, read, select", "inventory", "cli"),
    ("run machinery imports (driver, executor, render, asyncio)", "machinery", "inventory"),
    ("SSH library imports (asyncssh, cryptography)", "ssh", "machinery"),
    ("connect + run + render, direct", "direct", "ssh"),
    ("agent round trip + render, warm", "warm", "machinery"),
    ("thin client floor: one agent request, no CLI or inventory", "thin", "interpreter"),
    ("the same, blocking socket, standard library only", "sync", "interpreter"),
)
"""(label, probe, the probe it is measured against)."""


EXIT = "\nimport os; os._exit(0)"
"""Every probe ends as `bastion` does (bastion.cli.main.entry): no interpreter teardown."""


def probes(inventory: Path, address: str, key: Path, known: Path) -> dict[str, list[str]]:
    python = sys.executable
    bastion = str(VENV_BIN / "bastion")
    run = [bastion, "run", "-i", str(inventory), "-H", "node1", "-o", "quiet"]
    inv = str(inventory)
    return {
        "interpreter": [python, "-c", EXIT],
        "cli": [python, "-c", CLI + EXIT],
        "inventory": [python, "-c", INVENTORY.format(inv=inv) + EXIT],
        "machinery": [python, "-c", MACHINERY.format(inv=inv) + EXIT],
        "ssh": [python, "-c", SSH_LIBRARY.format(inv=inv) + EXIT],
        "direct": [*run, "--no-agent", "true"],
        "warm": [*run, "--persist", "10m", "true"],
        "thin": [python, "-c", THIN.format(address=address, key=str(key), known=str(known))],
        "sync": [python, "-c", SYNC.format(request=sync_request(address, key, known))],
    }


def measure(argv: list[str], env: dict[str, str], runtime: Path) -> tuple[float, float]:
    """(wall s, client CPU s) of one run; the warm agent's CPU meanwhile counts as client."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    agent_before = agent_cpu_s(runtime)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {done.stderr.decode(errors='replace')[-300:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu + agent_cpu_s(runtime) - agent_before


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--subnet", default="127.0.8")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    compile_bastion()
    with running_lab(1, subnet=args.subnet) as lab:
        runtime = lab.directory / "parts-run"
        runtime.mkdir(mode=0o700)
        env = {**lab.env, "XDG_RUNTIME_DIR": str(runtime), "BASTION_PERSIST": "off"}
        commands = probes(lab.inventory, lab.addresses[0], lab.key, lab.known_hosts)
        try:
            measure(commands["warm"], env, runtime)  # starts the agent, opens the connection
            samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
            names = list(commands)
            for round_no in range(args.rounds + 1):
                shift = round_no % len(names)
                for name in names[shift:] + names[:shift]:
                    sample = measure(commands[name], env, runtime)
                    if round_no:  # round 0 warms the page cache
                        samples[name].append(sample)
        finally:
            stop_agent(lab, runtime)
    median = {
        name: (statistics.median(w for w, _ in s), statistics.median(c for _, c in s))
        for name, s in samples.items()
    }
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"one host, {args.rounds} rounds, medians; load average after: {load}")
    print("| part | client CPU ms | wall ms |")
    print("| --- | ---: | ---: |")
    rows = []
    for label, probe, base in PARTS:
        wall, cpu = median[probe]
        if base is not None:
            wall, cpu = wall - median[base][0], cpu - median[base][1]
        rows.append({"part": label, "cpu_ms": cpu * 1000, "wall_ms": wall * 1000})
        print(f"| {label} | {cpu * 1000:.0f} | {wall * 1000:.0f} |")
    for name in ("direct", "warm", "thin", "sync"):
        wall, cpu = median[name]
        print(f"| whole run, {name} | {cpu * 1000:.0f} | {wall * 1000:.0f} |")
    if args.json:
        record = {
            "load_after": load,
            "rounds": args.rounds,
            "python": sys.version.split()[0],
            "parts": rows,
            "probes": {n: {"wall_s": m[0], "cpu_s": m[1]} for n, m in median.items()},
            "samples": samples,
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
