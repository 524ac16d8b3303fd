"""`bastion shell`: the ssh (or mosh) command line for an interactive session to one host.

Built from the inventory alone (user, port, key, known_hosts, jump), with host keys checked
strictly, like every connection bastion makes. The programs are run by the CLI.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from bastion.hostkeys import known_hosts_files
from bastion.jumps import resolve_jump
from bastion.models import Host


def ssh_argv(
    host: Host, jump_hosts: Mapping[str, Host], *, command: str | None = None
) -> list[str]:
    """``ssh`` with the host's settings; a jump host is reached with its own settings too."""
    argv = ["ssh", *_options(host)]
    if host.jump:
        jump = resolve_jump(host, jump_hosts)
        # ProxyCommand rather than -J: -J would not give the jump host our known_hosts and key.
        proxy = ["ssh", *_options(jump), "-W", "%h:%p", jump.address]
        argv += ["-o", "ProxyCommand=" + " ".join(shlex.quote(word) for word in proxy)]
    argv.append(host.address)
    if command is not None:
        argv += ["--", command]
    return argv


def _options(host: Host) -> list[str]:
    files = " ".join(str(path) for path in known_hosts_files(host.known_hosts))
    words = ["-p", str(host.port), "-o", "StrictHostKeyChecking=yes"]
    words += ["-o", f"UserKnownHostsFile={files}"]
    words += ["-o", f"ConnectTimeout={max(1, round(host.connect_timeout))}"]
    if host.user:
        words += ["-l", host.user]
    if host.identity_file:
        words += ["-i", host.identity_file, "-o", "IdentitiesOnly=yes"]
    return words
