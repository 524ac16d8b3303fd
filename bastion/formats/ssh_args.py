"""The jump host in ``ansible_ssh_common_args`` / ``ansible_ssh_extra_args``, as ssh reads them.

``-J [user@]host[:port]``, ``-o ProxyJump=...`` (or ``-oProxyJump ...``, any case), and the
older ``-o ProxyCommand="ssh -W %h:%p [-p PORT] [-l USER] [user@]host"`` all become bastion's
``jump:``. Other ssh options are not bastion settings and are left out: bastion's host-key
policy stays strict whatever ``StrictHostKeyChecking=no`` says. A ProxyCommand of any other
shape, or several hops (``-J a,b``), is refused rather than silently connecting directly.
"""

from __future__ import annotations

import shlex


class SshArgsProblem(ValueError):
    """ssh arguments whose jump bastion cannot follow."""


def jump_from_ssh_args(text: str) -> str | None:
    """The ``[user@]host[:port]`` of the jump host these ssh arguments name, or None."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise SshArgsProblem(f"cannot split ssh arguments: {exc}") from None
    jump: str | None = None
    index = 0
    while index < len(words):
        word = words[index]
        value: str | None = None
        if word in ("-J", "-o"):
            if index + 1 >= len(words):
                raise SshArgsProblem(f"{word} needs a value")
            value = words[index + 1]
            index += 2
        elif word.startswith(("-J", "-o")):
            value = word[2:]
            index += 1
        else:
            index += 1
            continue
        if word.startswith("-J"):
            jump = _one_hop(value) or jump
            continue
        name, _, option = value.replace("=", " ", 1).partition(" ")
        if name.lower() == "proxyjump":
            jump = _one_hop(option.strip())
        elif name.lower() == "proxycommand":
            jump = _proxy_command(option.strip())
    return jump


def _one_hop(spec: str) -> str | None:
    if spec.lower() == "none":
        return None
    if "," in spec:
        raise SshArgsProblem(f"ProxyJump {spec!r} has several hops; bastion follows one")
    return spec.removeprefix("ssh://")


def _proxy_command(command: str) -> str | None:
    if command.lower() == "none":
        return None
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise SshArgsProblem(f"cannot split ProxyCommand {command[:60]!r}: {exc}") from None
    if not words or words[0].rsplit("/", 1)[-1] != "ssh" or "-W" not in words:
        raise SshArgsProblem(
            f"ProxyCommand {command!r} is not 'ssh -W %h:%p HOST': write ProxyJump instead"
        )
    port = user = host = None
    index = 1
    while index < len(words):
        word = words[index]
        if word in ("-p", "-l", "-W", "-o", "-i", "-F", "-J"):
            value = words[index + 1] if index + 1 < len(words) else ""
            if word == "-p":
                port = value
            elif word == "-l":
                user = value
            index += 2
        elif word.startswith("-"):
            index += 1
        else:
            host = word
            index += 1
    if host is None:
        raise SshArgsProblem(f"ProxyCommand {command!r} names no host")
    if user is not None and "@" not in host:
        host = f"{user}@{host}"
    if port and ":" in host.rpartition("@")[2]:
        user_part, _, address = host.rpartition("@")
        host = f"{user_part}@[{address}]" if user_part else f"[{address}]"
    return f"{host}:{port}" if port else host
