"""Scale benchmark: bastion against 1,000 cheap SSH hosts, for memory, descriptors and JSON.

A benchmark, not a test. 1,000 sshd processes do not fit two cores, so the hosts are served
cheaply: a separate process runs one in-process asyncssh server per loopback address
(127.<net>.<100 + i // 250>.<1 + i % 250>, port 22), all with one host key pinned per address
in a known_hosts file and the benchmark's client key authorised. A "cheap host" runs no real
command: it answers any command with bastion's pid line and its own name, exit status 0. So
the numbers are the *client's*: peak RSS, CPU per host, open descriptors, and that ``-o json``
prints exactly one valid line per host.

    .venv/bin/python bench/scale.py --hosts 1000 --forks 64,1000 [--net 30]

Needs root only to bind port 22 on many addresses; every address is on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import asyncssh
from precompile import compile_bastion

VENV_BIN = Path(sys.executable).parent


def address(net: int, index: int) -> str:
    """The loopback address of host ``index`` (0-based)."""
    return f"127.{net}.{100 + index // 250}.{1 + index % 250}"


class _CheapSession(asyncssh.SSHServerSession[bytes]):
    """Answers any command with the pid line bastion expects, the host's name, exit 0."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:  # type: ignore[override]
        self._chan = chan

    def shell_requested(self) -> bool:
        return False

    def exec_requested(self, command: str) -> bool:
        return True

    def session_started(self) -> None:
        assert self._chan is not None
        self._chan.write(b"\x1fbastion-pid:1\n" + self._name.encode() + b"\n")
        self._chan.exit(0)


class _CheapServer(asyncssh.SSHServer):
    def __init__(self, name: str) -> None:
        self._name = name

    def begin_auth(self, username: str) -> bool:
        return True  # authorized_client_keys decides

    def session_requested(self) -> _CheapSession:
        return _CheapSession(self._name)


async def serve(hosts: int, net: int, directory: Path) -> None:
    """Listen on every host's address until SIGTERM; write ``ready`` when listening."""
    # A listener and a connection per host: far past the usual soft limit of 1024.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    host_key = asyncssh.read_private_key(str(directory / "host_key"))
    authorized = asyncssh.import_authorized_keys(
        (directory / "client_key.pub").read_text(encoding="ascii")
    )
    servers = []
    for index in range(hosts):
        name = f"host{index + 1}"
        servers.append(
            await asyncssh.create_server(
                lambda name=name: _CheapServer(name),  # type: ignore[misc]
                address(net, index),
                22,
                server_host_keys=[host_key],
                authorized_client_keys=authorized,
                encoding=None,
                backlog=1024,
            )
        )
    (directory / "ready").write_text("ready\n", encoding="ascii")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def write_lab(hosts: int, net: int, directory: Path) -> Path:
    """Keys, known_hosts and an inventory for ``hosts`` cheap hosts; returns the inventory."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    host_key.write_private_key(str(directory / "host_key"))
    client_key.write_private_key(str(directory / "client_key"))
    client_key.write_public_key(str(directory / "client_key.pub"))
    public = host_key.export_public_key("openssh").decode("ascii").split()
    lines = [f"{address(net, i)} {public[0]} {public[1]}\n" for i in range(hosts)]
    (directory / "known_hosts").write_text("".join(lines), encoding="ascii")
    entries = [f"  host{i + 1}: {{address: {address(net, i)}}}\n" for i in range(hosts)]
    inventory = directory / "inventory.yaml"
    inventory.write_text(
        "defaults: {user: root, identity_file: client_key, known_hosts: known_hosts, "
        "connect_timeout: 60}\nhosts:\n" + "".join(entries),
        encoding="ascii",
    )
    for path in directory.iterdir():
        path.chmod(0o600)
    return inventory


PROBE = (
    "import resource, subprocess, sys, time\n"
    "soft = int(sys.argv.pop(1))\n"
    "if soft:\n"
    "    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
    "    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))\n"
    "t = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "sys.stderr.write(done.stderr)\n"
    "print(time.perf_counter() - t, u.ru_utime + u.ru_stime, u.ru_maxrss, done.returncode)\n"
    "sys.stdout.write(done.stdout)\n"
)
"""Runs bastion as its only child, so ``ru_maxrss`` of the children is bastion's peak RSS."""


def run_bastion(
    inventory: Path, forks: int, env: dict[str, str], soft_nofile: int
) -> dict[str, object]:
    argv = [str(VENV_BIN / "bastion"), "run", "-i", str(inventory), "--all", "-o", "json"]
    argv += ["-f", str(forks), "--connect-timeout", "60", "--no-agent", "true"]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(soft_nofile), *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    head, _, body = done.stdout.partition("\n")
    wall, cpu, rss, rc = head.split()
    records = []
    invalid = 0
    for line in body.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            invalid += 1
    return {
        "forks": forks,
        "exit": int(rc),
        "wall_s": float(wall),
        "cpu_s": float(cpu),
        "peak_rss_mb": int(rss) / 1024,
        "json_lines": len(records),
        "invalid_lines": invalid,
        "ok_hosts": sum(1 for r in records if r.get("status") == "ok"),
        "stderr_tail": done.stderr.strip().splitlines()[-3:],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--forks", default="64,1000", help="comma-separated --forks to try")
    parser.add_argument("--net", type=int, default=30, help="second octet (default 30)")
    parser.add_argument(
        "--client-nofile",
        type=int,
        default=1024,
        help="bastion's soft open-files limit at start (default 1024, the usual; 0 leaves it)",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.hosts, args.net, args.serve))
        return 0
    compile_bastion()  # bench/precompile.py: as an installed copy would be
    with tempfile.TemporaryDirectory(prefix="bastion-scale-") as tmp:
        directory = Path(tmp)
        inventory = write_lab(args.hosts, args.net, directory)
        server = subprocess.Popen(
            [sys.executable, __file__, "--hosts", str(args.hosts), "--net", str(args.net),
             "--serve", str(directory)],
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while not (directory / "ready").exists():
                if server.poll() is not None or time.monotonic() > deadline:
                    print("the cheap hosts did not start", file=sys.stderr)
                    return 1
                time.sleep(0.2)
            env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
            env.update(
                {
                    "BASTION_HISTORY_FILE": str(directory / "history.jsonl"),
                    "XDG_STATE_HOME": str(directory / "state"),
                    "NO_COLOR": "1",
                }
            )
            results = [
                run_bastion(inventory, int(f), env, args.client_nofile)
                for f in args.forks.split(",")
            ]
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    limit = args.client_nofile or "unchanged"
    print(f"{args.hosts} cheap hosts; bastion's soft open-files limit at start: {limit}")
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(
        "| --forks | exit | wall s | client CPU ms/host | peak RSS MB | JSON lines (valid) | ok |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        cpu_ms = float(r["cpu_s"]) * 1000 / args.hosts  # type: ignore[arg-type]
        print(
            f"| {r['forks']} | {r['exit']} | {r['wall_s']:.1f} | {cpu_ms:.1f} "
            f"| {r['peak_rss_mb']:.0f} | {r['json_lines']} ({r['invalid_lines']} invalid) "
            f"| {r['ok_hosts']} |"
        )
        if r["exit"] != 0:
            print(f"  stderr: {r['stderr_tail']}")
    good = all(r["json_lines"] == args.hosts and r["ok_hosts"] == args.hosts for r in results)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
