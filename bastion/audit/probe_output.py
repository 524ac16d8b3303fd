"""Parse the probe's sectioned output into a `HostObservation` (pure; see probe.sh)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from bastion.audit.authorized_keys import parse_authorized_keys
from bastion.audit.observation import (
    Account,
    Coverage,
    HostKey,
    HostObservation,
    KeyFile,
    KubeConfig,
    Login,
    PasswordState,
    PathStat,
    PrivateKey,
)
from bastion.audit.sshd_config import parse_sshd_t
from bastion.audit.sudo_rules import parse_sudo_list
from bastion.audit.sudoers_json import (
    SudoersFile,
    attribute_sources,
    grant_for,
    parse_sudoers_json,
)

# "256 SHA256:abc comment words (ED25519)" from ssh-keygen -lf.
_KEYGEN = re.compile(r"^(?P<bits>\d+)\s+(?P<fp>SHA256:\S+)\s.*\((?P<type>[A-Z0-9-]+)\)\s*$")
_ACCEPTED = re.compile(
    r"Accepted (?P<method>\S+) for (?P<user>\S+) from (?P<addr>\S+) port \d+ ssh2"
    r"(?::\s+\S+\s+(?P<fp>SHA256:\S+))?"
)


@dataclass
class _Section:
    name: str
    arg: str
    markers: list[tuple[str, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def parse_probe_output(host: str, address: str, text: str) -> HostObservation:
    """Build the observation of ``host`` from the probe's stdout.

    Output that stops before ``@@end`` (a killed probe) still yields what was printed, with a
    warning; the coverage is PARTIAL when the probe ran without root.
    """
    sections = _split(text)
    seen = HostObservation(host=host, address=address, coverage=Coverage.FULL)
    passwords: dict[str, tuple[PasswordState, int | None]] = {}
    members: dict[str, list[str]] = {}
    group_names: dict[int, str] = {}
    sudoers: list[SudoersFile] = []
    for section in sections:
        for marker, value in section.markers:
            if marker == "fact":
                name, _, rest = value.partition(" ")
                seen.facts[name] = rest
            elif marker == "warn":
                seen.warnings.append(value)
        _read_section(seen, section, passwords, members)
        if section.name == "group":
            group_names.update(_group_names(section.lines))
        elif section.name == "sudoers":
            sudoers.append(parse_sudoers_json("\n".join(section.lines), section.arg))
    for name, account in list(seen.accounts.items()):
        state, day = passwords.get(name, (PasswordState.UNKNOWN, None))
        gid_group = tuple(members.get(name, ()))
        seen.accounts[name] = Account(
            account.name, account.uid, account.gid, account.home, account.shell, state, day,
            gid_group,
        )  # fmt: skip
    if sudoers:
        _sudoers(seen, sudoers, group_names)
    if seen.facts.get("root") != "yes":
        seen.coverage = Coverage.PARTIAL
    if not any(s.name == "end" for s in sections):
        seen.coverage = Coverage.FAILED
        seen.warnings.append("the probe stopped before its end; what it printed is kept")
    if "root" not in seen.sshd:
        seen.warnings.append("sshd -T gave nothing: effective sshd settings unknown")
        if seen.coverage is Coverage.FULL:
            seen.coverage = Coverage.PARTIAL
    return seen


def _read_section(  # noqa: PLR0912 (one branch per probe section)
    seen: HostObservation,
    section: _Section,
    passwords: dict[str, tuple[PasswordState, int | None]],
    members: dict[str, list[str]],
) -> None:
    if section.name == "sshd_t" and section.lines:
        seen.sshd[section.arg] = parse_sshd_t("\n".join(section.lines))
    elif section.name == "passwd":
        _accounts(seen, section.lines)
    elif section.name == "group":
        for line in section.lines:
            parts = line.split(":")
            if len(parts) >= 4:
                for user in filter(None, parts[3].split(",")):
                    members.setdefault(user, []).append(parts[0])
    elif section.name == "shadow":
        for line in section.lines:
            name, state, expires = _fields(line, ":", 3)
            day = int(expires) if expires.isdigit() else None
            known = state in PasswordState.__members__
            passwords[name] = (PasswordState(state) if known else PasswordState.UNKNOWN, day)
    elif section.name == "keys":
        seen.key_files.append(_key_file(section))
    elif section.name == "hostkeys":
        seen.host_keys.extend(_host_keys(section))
    elif section.name == "privatekeys":
        seen.private_keys.extend(_private_keys(section))
    elif section.name == "sudouser":
        seen.sudo[section.arg] = parse_sudo_list("\n".join(section.lines))
    elif section.name == "kube":
        for marker, value in section.markers:
            if marker == "kubeconfig":
                path, owner, group, mode = _fields(value, "|", 4)
                seen.kubeconfigs.append(KubeConfig(path, owner, group, _octal(mode)))
    elif section.name == "logins":
        _logins(seen, section)


def _group_names(lines: list[str]) -> dict[int, str]:
    names = {}
    for line in lines:
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            names[int(parts[2])] = parts[0]
    return names


def _sudoers(seen: HostObservation, files: list[SudoersFile], group_names: dict[int, str]) -> None:
    """Each account's grant by the sudoers policy, cross-checked with what sudo -l listed."""
    seen.warnings.extend(f.error for f in files if f.error)
    policy = attribute_sources(files)
    hostname = seen.facts.get("hostname", "")
    for name, account in seen.accounts.items():
        groups = {*account.groups, group_names.get(account.gid, "")} - {""}
        grant = grant_for(policy, name, account.uid, groups, (account.gid,), hostname)
        if grant is None:
            continue
        seen.sudoers[name] = grant
        listed = seen.sudo.get(name)
        if listed is None or account.uid == 0:
            continue
        mine = (grant.access.privilege, grant.access.nopasswd)
        theirs = (listed.privilege, listed.nopasswd)
        if mine != theirs:
            seen.warnings.append(
                f"sudo -l and cvtsudoers disagree for {name}: "
                f"{theirs[0].value}{' NOPASSWD' * theirs[1]} vs "
                f"{mine[0].value}{' NOPASSWD' * mine[1]} ({grant.source})"
            )


def _split(text: str) -> list[_Section]:
    sections: list[_Section] = [_Section("preamble", "")]
    for line in text.splitlines():
        if line.startswith("|"):
            sections[-1].lines.append(line[1:])
        elif line.startswith("@@section "):
            name, _, arg = line[len("@@section ") :].partition(" ")
            sections.append(_Section(name, arg))
        elif line == "@@end":
            sections.append(_Section("end", ""))
        elif line.startswith("@@"):
            marker, _, value = line[2:].partition(" ")
            sections[-1].markers.append((marker, value))
    return sections


def _accounts(seen: HostObservation, lines: list[str]) -> None:
    for line in lines:
        parts = line.split(":")
        if len(parts) < 7 or not parts[2].isdigit() or not parts[3].isdigit():
            continue
        name = parts[0]
        seen.accounts[name] = Account(name, int(parts[2]), int(parts[3]), parts[5], parts[6])


def _key_file(section: _Section) -> KeyFile:
    account, _, path = section.arg.partition(" ")
    marks = dict(section.markers)
    kind, owner, _group, mode, mtime = ([*marks.get("stat", "").split("|"), "", "", "", "", ""])[:5]
    parents = []
    for marker, value in section.markers:
        if marker == "dir":
            d_owner, d_mode, d_path = _fields(value, "|", 3)
            parents.append(PathStat(d_path, d_owner, _octal(d_mode)))
    read_error = marks.get("readerror")
    parsed = parse_authorized_keys("\n".join(section.lines)) if read_error is None else None
    return KeyFile(
        account=account,
        path=path,
        pattern=marks.get("pattern", ""),
        kind=kind,
        owner=owner,
        mode=_octal(mode),
        mtime=int(mtime) if mtime.isdigit() else 0,
        link_target=marks.get("link"),
        parents=tuple(parents),
        keys=parsed.keys if parsed else (),
        bad_lines=parsed.bad if parsed else (),
        read_error=read_error,
        lines=tuple(section.lines) if read_error is None else (),
    )


def _host_keys(section: _Section) -> list[HostKey]:
    found = []
    for marker, value in section.markers:
        if marker != "hostkey":
            continue
        path, owner, mode, listing = _fields(value, "|", 4)
        match = _KEYGEN.match(listing)
        if match is None:
            continue
        found.append(
            HostKey(
                path,
                owner,
                _octal(mode),
                match.group("type").lower(),
                int(match.group("bits")),
                match.group("fp"),
            )
        )
    return found


def _private_keys(section: _Section) -> list[PrivateKey]:
    found = []
    for marker, value in section.markers:
        if marker != "privkey":
            continue
        path, owner, encrypted, listing = _fields(value, "|", 4)
        match = _KEYGEN.match(listing)
        found.append(
            PrivateKey(path, owner, encrypted == "yes", match.group("fp") if match else None)
        )
    return found


def _logins(seen: HostObservation, section: _Section) -> None:
    seen.login_source = dict(section.markers).get("source", "none")
    for line in section.lines:
        match = _ACCEPTED.search(line)
        if match is None:
            continue
        seen.logins.append(
            Login(log_time(line, seen.now), match.group("user"), match.group("method"),
                  match.group("addr"), match.group("fp"))
        )  # fmt: skip


def log_time(line: str, now: int) -> int:
    """Epoch seconds of a log line: journal ``short-unix``, ISO 8601, or syslog ``Mon DD HH:MM:SS``.

    A syslog stamp has no year: it is the host's current year, or the previous one when that
    would put it in the future. 0 when the stamp is unreadable.
    """
    first = line.split(None, 1)[0] if line.strip() else ""
    try:
        return int(float(first))
    except ValueError:
        pass
    try:
        return int(dt.datetime.fromisoformat(first).timestamp())
    except ValueError:
        pass
    try:
        year = dt.datetime.fromtimestamp(now or 0, dt.UTC).year
        parsed = dt.datetime.strptime(f"{year} {line[:15]}", "%Y %b %d %H:%M:%S")
    except ValueError:
        return 0
    stamp = int(parsed.replace(tzinfo=dt.UTC).timestamp())
    if now and stamp > now + 86400:
        stamp = int(parsed.replace(year=year - 1, tzinfo=dt.UTC).timestamp())
    return stamp


def _fields(text: str, separator: str, count: int) -> list[str]:
    """Exactly ``count`` fields: the last keeps any further separators, missing ones are ""."""
    parts = text.split(separator, count - 1)
    return parts + [""] * (count - len(parts))


def _octal(text: str) -> int:
    try:
        return int(text, 8)
    except ValueError:
        return 0
