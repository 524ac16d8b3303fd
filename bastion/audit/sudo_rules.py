"""What ``sudo -l -U USER`` says a user may run, reduced to a privilege level (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_ENTRY = re.compile(r"^\((?P<runas>[^)]*)\)\s*(?P<rest>.*)$")
_TAG = re.compile(r"(NOPASSWD|PASSWD|NOEXEC|EXEC|SETENV|NOSETENV|LOG_INPUT|LOG_OUTPUT|MAIL|NOMAIL)")


class Privilege(StrEnum):
    """How far sudo takes an account."""

    NONE = "none"
    SOME = "some"
    """Some commands, or all commands as a non-root user."""
    ALL = "all"
    """Any command as root."""


@dataclass(frozen=True, slots=True)
class SudoAccess:
    """One account's sudo privilege and whether it needs a password for the widest grant."""

    privilege: Privilege = Privilege.NONE
    nopasswd: bool = False
    """NOPASSWD on a grant of every command as root."""
    commands: tuple[str, ...] = ()
    """The command entries as sudo listed them (for the report)."""


def parse_sudo_list(text: str) -> SudoAccess:
    """Parse ``sudo -l -U USER``: the indented entries after "may run the following commands"."""
    in_entries = False
    privilege = Privilege.NONE
    nopasswd = False
    commands: list[str] = []
    for raw in text.split("\n"):
        line = raw.strip()
        if "may run the following commands" in line:
            in_entries = True
            continue
        if not in_entries or not line:
            continue
        match = _ENTRY.match(line)
        if match is None:
            continue
        commands.append(line)
        runas = match.group("runas").split(":")[0].strip()
        tags, cmds = _split_tags(match.group("rest"))
        as_root = runas in ("", "ALL", "root") or "ALL" in runas.split(",")
        every = any(c.strip() == "ALL" for c in cmds.split(","))
        if every and as_root:
            privilege = Privilege.ALL
            nopasswd = nopasswd or "NOPASSWD" in tags
        elif privilege is Privilege.NONE:
            privilege = Privilege.SOME
    return SudoAccess(privilege, nopasswd, tuple(commands))


def _split_tags(rest: str) -> tuple[set[str], str]:
    """Split ``NOPASSWD: SETENV: cmd, cmd`` into its tags and the command list.

    Walks an index (no re-slicing per tag): linear in the line, however many tags it repeats.
    """
    tags: set[str] = set()
    text = rest.strip()
    pos = 0
    while True:
        match = _TAG.match(text, pos)
        if match is None or not text.startswith(":", match.end()):
            return tags, text[pos:]
        tags.add(match.group(1))
        pos = match.end() + 1
        while pos < len(text) and text[pos] in " \t":
            pos += 1
