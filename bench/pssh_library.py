"""A contender: the parallel-ssh Python library (``pssh.clients.ParallelSSHClient``, libssh2).

Connects to every host (``--limit`` at a time), runs one command, waits for all. Exits 0 only
if the command succeeded on every host, else 1 with one line per failed host on stderr. Used
by ``bench/fanout.py``:

    python bench/pssh_library.py --key KEY --known-hosts FILE --user root ADDRESS... -- true

Host keys: the library has no host-key checking of its own (no known_hosts option; libssh2
accepts any key). So this script checks each host's key itself, against the pinned
known_hosts, once the library has connected and authenticated and before any command runs:
a wrong key fails the host, but only after authentication, not before it as OpenSSH, asyncssh
and bastion do.
"""

from __future__ import annotations

import argparse
import base64
import sys

from pssh.clients import ParallelSSHClient


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", required=True, help="client private key")
    parser.add_argument("--known-hosts", required=True, help="known_hosts pinning every host")
    parser.add_argument("--user", default="root")
    parser.add_argument("--limit", type=int, default=64, help="hosts at once")
    parser.add_argument("--command", default="true")
    parser.add_argument("hosts", nargs="+", help="addresses (port 22)")
    return parser.parse_args(argv)


def pinned_keys(path: str) -> dict[str, set[bytes]]:
    """Address -> the key blobs known_hosts pins for it (plain entries, no hashing)."""
    pinned: dict[str, set[bytes]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) < 3 or line.startswith("#"):
                continue
            for name in fields[0].split(","):
                pinned.setdefault(name, set()).add(base64.b64decode(fields[2]))
    return pinned


def main() -> int:
    args = parse_args()
    pinned = pinned_keys(args.known_hosts)
    client = ParallelSSHClient(
        args.hosts,
        user=args.user,
        pkey=args.key,
        pool_size=args.limit,
        allow_agent=False,
        num_retries=1,
    )
    failures: list[str] = []
    greenlets = client.connect_auth()
    for greenlet in greenlets:
        greenlet.join()
    for index, address in enumerate(args.hosts):
        host_client = client._host_clients.get((index, address))
        if host_client is None or host_client.session is None:
            failures.append(f"{address}: could not connect")
            continue
        key, _kind = host_client.session.hostkey()
        if key not in pinned.get(address, set()):
            failures.append(f"{address}: host key does not match known_hosts")
    if failures:
        for failure in failures:
            print(failure, file=sys.stderr)
        return 1
    output = client.run_command(args.command, stop_on_errors=False)
    client.join(output, consume_output=True)
    for host_output in output:
        if host_output.exception is not None:
            failures.append(f"{host_output.host}: {host_output.exception!r}")
        elif host_output.exit_code != 0:
            failures.append(f"{host_output.host}: exit status {host_output.exit_code}")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
