"""The floor for a Python SSH client: a bare asyncssh loop, no bastion around it.

Connects to every host with strict host-key checking, runs one command, closes; at most
``--limit`` hosts at a time. Exits 0 only if the command succeeded on every host, else 1 with
one line per failed host on stderr. Used by ``bench/fanout.py`` as a baseline:

    python bench/bare_asyncssh.py --key KEY --known-hosts FILE --user root ADDRESS... -- true
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes.util
import sys

# At import, asyncssh looks for liboqs and nettle with ctypes.util.find_library, which on Linux
# runs ldconfig, gcc and ld: about 30 ms of CPU in seven processes. bastion skips that probe
# (bastion/transport/library_probe.py), so the floor does too. Only optional algorithms depend
# on those libraries (post-quantum key exchange, UMAC), and neither is negotiated here.
_find_library = ctypes.util.find_library
ctypes.util.find_library = lambda name: None
import asyncssh  # noqa: E402

ctypes.util.find_library = _find_library


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", required=True, help="client private key")
    parser.add_argument("--known-hosts", required=True, help="known_hosts pinning every host")
    parser.add_argument("--user", default="root")
    parser.add_argument("--limit", type=int, default=64, help="hosts at once")
    parser.add_argument("--command", default="true")
    parser.add_argument("hosts", nargs="+", help="addresses (port 22)")
    return parser.parse_args(argv)


async def run_one(
    address: str,
    args: argparse.Namespace,
    key: asyncssh.SSHKey,
    known: asyncssh.SSHKnownHosts,
    limit: asyncio.Semaphore,
) -> str | None:
    """None on success, else why this host failed."""
    async with limit:
        try:
            async with asyncssh.connect(
                address,
                username=args.user,
                client_keys=[key],
                known_hosts=known,
                config=None,  # no ~/.ssh/config: the same for every machine
                agent_path=None,
            ) as connection:
                result = await connection.run(args.command, check=False)
        except (OSError, asyncssh.Error) as exc:
            return f"{address}: {type(exc).__name__}: {exc}"
    if result.exit_status != 0:
        return f"{address}: exit status {result.exit_status}"
    return None


async def run_all(args: argparse.Namespace) -> list[str]:
    # Key and known_hosts are read once, as any sane client does.
    key = asyncssh.read_private_key(args.key)
    known = asyncssh.read_known_hosts(args.known_hosts)
    limit = asyncio.Semaphore(args.limit)
    outcomes = await asyncio.gather(*(run_one(a, args, key, known, limit) for a in args.hosts))
    return [failure for failure in outcomes if failure is not None]


def main() -> int:
    args = parse_args()
    failures = asyncio.run(run_all(args))
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
