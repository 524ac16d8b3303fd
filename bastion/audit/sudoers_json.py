"""The sudoers policy as ``cvtsudoers -f json`` prints it, reduced per account (pure).

The probe runs cvtsudoers once on /etc/sudoers (includes followed: the whole policy) and once
on each file of /etc/sudoers.d (that file alone): cvtsudoers gives no file or line, so a rule
of the whole policy is attributed to the included file that holds the same rule, else to the
main file. Only what decides a privilege is read: who (users, ``%groups``, ``#uids``), on
which hosts, as whom, which commands, and the ``authenticate`` option (NOPASSWD); every other
option and Default (``passprompt``, ``lecture_file``...) is ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bastion.audit.sudo_rules import Privilege, SudoAccess

MAIN_SUDOERS = "/etc/sudoers"
MAX_RULES = 5000
"""More rules than this in one file is an error for that file (real policies hold dozens)."""


@dataclass(frozen=True, slots=True)
class SudoersRule:
    """One Cmnd_Spec of a user specification, in sudoers spelling."""

    users: tuple[str, ...]
    """``alice``, ``%sudo``, ``#1000``, ``%#27``, ``+netgroup``, ``ALL``; ``!`` when negated."""
    hosts: tuple[str, ...]
    runas: tuple[str, ...]
    """Run-as users; empty means root (sudoers' default)."""
    commands: tuple[str, ...]
    nopasswd: bool | None
    """The rule's own NOPASSWD/PASSWD; None when the Defaults decide."""
    source: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class SudoersFile:
    """What cvtsudoers printed for one file."""

    source: str
    rules: tuple[SudoersRule, ...] = ()
    nopasswd_default: bool = False
    """``Defaults !authenticate``: no rule asks for a password unless it says PASSWD."""
    nopasswd_users: tuple[str, ...] = ()
    """``Defaults:user !authenticate``."""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SudoersGrant:
    """An account's privilege by the sudoers policy, and the rule that gives the widest one."""

    access: SudoAccess
    via: str
    """The principal of that rule as written (``ops``, ``%sudo``, ``ALL``)."""
    source: str
    """The sudoers file holding that rule."""


def parse_sudoers_json(text: str, source: str) -> SudoersFile:
    """Parse one cvtsudoers JSON document; unreadable JSON is an error, never a crash."""
    if not text.strip():  # cvtsudoers prints nothing for a file of comments (sudoers.d/README)
        return SudoersFile(source)
    try:
        doc = json.loads(text)
    except ValueError as exc:  # also a number of more than 4,300 digits
        return SudoersFile(source, error=f"{source}: cvtsudoers output is not JSON ({exc})")
    except RecursionError:  # nesting deeper than the interpreter's stack
        return SudoersFile(source, error=f"{source}: cvtsudoers output is nested too deeply")
    if not isinstance(doc, dict):
        return SudoersFile(source, error=f"{source}: cvtsudoers output is not a JSON object")
    default = False
    users: list[str] = []
    for entry in _dicts(doc.get("Defaults")):
        authenticate = _option(entry.get("Options"), "authenticate")
        if authenticate is None:
            continue
        binding = list(_dicts(entry.get("Binding")))
        if not binding and "Binding" not in entry:
            default = not authenticate
        elif not authenticate:
            users += [n for n in map(_member, binding) if n and not n.startswith("!")]
    rules = []
    for spec in _dicts(doc.get("User_Specs")):
        who = tuple(filter(None, map(_member, _dicts(spec.get("User_List")))))
        hosts = tuple(filter(None, map(_member, _dicts(spec.get("Host_List")))))
        for cmnd in _dicts(spec.get("Cmnd_Specs")):
            runas = tuple(filter(None, map(_member, _dicts(cmnd.get("runasusers")))))
            commands = tuple(filter(None, map(_member, _dicts(cmnd.get("Commands")))))
            authenticate = _option(cmnd.get("Options"), "authenticate")
            nopasswd = None if authenticate is None else not authenticate
            rules.append(SudoersRule(who, hosts, runas, commands, nopasswd, source))
    if len(rules) > MAX_RULES:  # attribution compares rules pairwise: keep it bounded
        return SudoersFile(source, error=f"{source}: more than {MAX_RULES} sudoers rules")
    return SudoersFile(source, tuple(rules), default, tuple(users))


def attribute_sources(files: Sequence[SudoersFile], main: str = MAIN_SUDOERS) -> SudoersFile:
    """The whole policy (the main file's parse) with each rule given the file it comes from."""
    whole = next((f for f in files if f.source == main and f.error is None), None)
    parts = [f for f in files if f.source != main]
    if whole is None:  # no main file parsed: the union of what was seen
        rules = tuple(r for f in parts for r in f.rules)
        return SudoersFile(
            main,
            rules,
            any(f.nopasswd_default for f in parts),
            tuple(u for f in parts for u in f.nopasswd_users),
        )
    origins: dict[SudoersRule, str] = {}  # the source is not part of a rule's identity
    for part in parts:
        for rule in part.rules:
            origins.setdefault(rule, rule.source)
    placed = []
    for rule in whole.rules:
        origin = origins.get(rule, main)
        placed.append(
            SudoersRule(rule.users, rule.hosts, rule.runas, rule.commands, rule.nopasswd, origin)
        )
    return SudoersFile(main, tuple(placed), whole.nopasswd_default, whole.nopasswd_users)


def grant_for(
    policy: SudoersFile,
    name: str,
    uid: int,
    groups: Iterable[str],
    gids: Iterable[int],
    hostname: str = "",
) -> SudoersGrant | None:
    """The account's widest grant by the policy; None when no rule names it."""
    names = {f"%{g}" for g in groups} | {f"%#{g}" for g in gids} | {name, f"#{uid}", "ALL"}
    best: tuple[int, SudoersGrant] | None = None
    listed: list[str] = []
    for rule in policy.rules:
        principal = _matching(rule.users, names)
        if principal is None or not _on_host(rule.hosts, hostname):
            continue
        nopasswd = rule.nopasswd
        if nopasswd is None:
            nopasswd = policy.nopasswd_default or name in policy.nopasswd_users
        runas = ",".join(rule.runas) or "root"
        tag = "NOPASSWD: " if nopasswd else ""
        listed.append(f"({runas}) {tag}{', '.join(rule.commands)}")
        as_root = not rule.runas or any(r in ("ALL", "root", "#0") for r in rule.runas)
        every = "ALL" in rule.commands
        privilege = Privilege.ALL if every and as_root else Privilege.SOME
        rank = 2 if privilege is Privilege.SOME else 3 + int(nopasswd)
        if best is None or rank > best[0]:
            access = SudoAccess(privilege, nopasswd and privilege is Privilege.ALL)
            best = (rank, SudoersGrant(access, principal, rule.source))
    if best is None:
        return None
    grant = best[1]
    access = SudoAccess(grant.access.privilege, grant.access.nopasswd, tuple(listed))
    return SudoersGrant(access, grant.via, grant.source)


def _matching(users: Sequence[str], names: set[str]) -> str | None:
    """The entry that makes the list match (sudoers: the last matching entry decides)."""
    found: str | None = None
    for entry in users:
        negated = entry.startswith("!")
        if entry.lstrip("!") in names:
            found = None if negated else entry
    return found


def _on_host(hosts: Sequence[str], hostname: str) -> bool:
    short = hostname.split(".", maxsplit=1)[0]
    matched = False
    for entry in hosts:
        negated = entry.startswith("!")
        if entry.lstrip("!") in ("ALL", hostname, short):
            matched = not negated
    return matched


def _dicts(value: Any) -> Iterable[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _member(entry: dict[str, Any]) -> str | None:
    """One list member in sudoers spelling: ``alice``, ``%sudo``, ``#1000``, ``!bob``..."""
    prefixes = {
        "username": "", "userid": "#", "usergroup": "%", "usergid": "%#", "netgroup": "+",
        "hostname": "", "command": "", "nonunixgroup": "%:", "nonunixgid": "%:#",
        "ipaddr": "", "networkaddr": "",
    }  # fmt: skip
    for key, prefix in prefixes.items():
        if key in entry and isinstance(entry[key], str | int):
            negated = "!" if entry.get("negated") is True else ""
            return f"{negated}{prefix}{entry[key]}"
    return None


def _option(options: Any, name: str) -> bool | None:
    for entry in _dicts(options):
        value = entry.get(name)
        if isinstance(value, bool):
            return value
    return None
