"""Parse the probe's output into a `HostObservation` (pure; see probe.sh and probe_frames)."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import sys
import traceback

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
from bastion.audit.probe_frames import Frames, Section, read_frames
from bastion.audit.sshd_config import parse_sshd_t
from bastion.audit.sudo_rules import parse_sudo_list
from bastion.audit.sudoers_json import (
    SudoersFile,
    attribute_sources,
    grant_for,
    parse_sudoers_json,
)

_ACCEPTED = re.compile(
    r"Accepted (?P<method>\S+) for (?P<user>\S+) from (?P<addr>\S+) port [0-9]+ ssh2"
    r"(?::\s+\S+\s+(?P<fp>SHA256:\S+))?",
    re.ASCII,
)
_DIGITS = re.compile(r"[0-9]{1,18}")
_MODE = re.compile(r"[0-7]{1,6}")
MAX_ID = 2**32 - 1
"""The largest uid or gid Linux has."""
MAX_EPOCH = 253402300799
"""9999-12-31T23:59:59Z: the last second Python's datetime (and any report) can show."""
MAX_DAY = MAX_EPOCH // 86400
MAX_KEY_BITS = 16384
"""OpenSSH's own limit for RSA keys (SSH_RSA_MAXIMUM_MODULUS_SIZE)."""
_LISTING_CHARS = 4096
_LOGIN_CHARS = 4096


def parse_probe_output(host: str, address: str, text: str, nonce: str) -> HostObservation:
    """Build the observation of ``host`` from the probe's stdout (framed with ``nonce``).

    Total: any text gives an observation. Output that stops before its end marker (a killed
    probe) still yields what was printed, coverage FAILED; unreadable output (a forged or
    broken frame, see `probe_frames`) is coverage FAILED with ``probe output unreadable: ...``
    and keeps what came before the bad line; a bug while reading is the same, for this host
    only. The coverage is PARTIAL when the probe ran without root.
    """
    try:
        return _observe(host, address, read_frames(text, nonce))
    except Exception as exc:  # one host's bad output must not cost the others
        if os.environ.get("BASTION_DEBUG"):
            traceback.print_exc(file=sys.stderr)
        return unreadable(host, address, f"{type(exc).__name__}: {exc}")


def unreadable(host: str, address: str, reason: str) -> HostObservation:
    """A host whose probe output could not be read: not audited, and why."""
    return HostObservation(
        host=host, address=address, coverage=Coverage.FAILED,
        error=f"probe output unreadable: {_shorten(reason)}",
    )  # fmt: skip


def _observe(host: str, address: str, frames: Frames) -> HostObservation:
    seen = HostObservation(host=host, address=address, coverage=Coverage.FULL)
    passwords: dict[str, tuple[PasswordState, int | None]] = {}
    members: dict[str, list[str]] = {}
    group_names: dict[int, str] = {}
    sudoers: list[SudoersFile] = []
    for section in frames.sections:
        seen.warnings.extend(_shorten(w, 400) for w in section.texts("warn"))
        _read_section(seen, section, passwords, members)
        if section.name == "group":
            group_names.update(_group_names(_lines(section.text("output"))))
        elif section.name == "sudoers":
            sudoers.append(parse_sudoers_json(section.text("output"), section.text("file")))
    for name, account in list(seen.accounts.items()):
        state, day = passwords.get(name, (PasswordState.UNKNOWN, None))
        gid_group = tuple(members.get(name, ()))
        seen.accounts[name] = Account(
            account.name, account.uid, account.gid, account.home, account.shell, state, day,
            gid_group,
        )  # fmt: skip
    if sudoers:
        _sudoers(seen, sudoers, group_names)
    _check_clock(seen)
    if frames.ignored:
        seen.warnings.append(f"{frames.ignored} lines before the probe started were skipped")
    if seen.facts.get("root") != "yes":
        seen.coverage = Coverage.PARTIAL
    if frames.error is not None:
        seen.coverage = Coverage.FAILED
        seen.error = f"probe output unreadable: {frames.error}"
    elif not frames.ended:
        seen.coverage = Coverage.FAILED
        seen.error = "the probe stopped before its end"
        seen.warnings.append("the probe stopped before its end; what it printed is kept")
    if "root" not in seen.sshd:
        seen.warnings.append("sshd -T gave nothing: effective sshd settings unknown")
        if seen.coverage is Coverage.FULL:
            seen.coverage = Coverage.PARTIAL
    return seen


def _read_section(  # noqa: PLR0912 (one branch per probe section)
    seen: HostObservation,
    section: Section,
    passwords: dict[str, tuple[PasswordState, int | None]],
    members: dict[str, list[str]],
) -> None:
    name = section.name
    if name == "facts":
        for entry in section.text("facts").split("\0"):
            key, sep, value = entry.partition("=")
            if sep:
                seen.facts[key] = value
    elif name == "sshd_t" and section.text("output"):
        seen.sshd[section.text("account")] = parse_sshd_t(section.text("output"))
    elif name == "passwd":
        _accounts(seen, _lines(section.text("output")))
    elif name == "group":
        for line in _lines(section.text("output")):
            parts = line.split(":")
            if len(parts) >= 4:
                for user in filter(None, parts[3].split(",")):
                    members.setdefault(user, []).append(parts[0])
    elif name == "shadow":
        for line in _lines(section.text("output")):
            user, state, expires = _fields(line, ":", 3)
            known = state in PasswordState.__members__
            passwords[user] = (
                PasswordState(state) if known else PasswordState.UNKNOWN,
                bounded_int(expires, MAX_DAY),
            )
    elif name == "keys":
        seen.key_files.append(_key_file(section))
    elif name == "hostkeys":
        seen.host_keys.extend(_host_keys(section))
    elif name == "privatekeys":
        seen.private_keys.extend(_private_keys(section))
    elif name == "sudo" and section.data("absent") is not None:
        seen.facts["sudo"] = "absent"
    elif name == "sudouser":
        seen.sudo[section.text("account")] = parse_sudo_list(section.text("output"))
    elif name == "kube":
        for value in section.texts("kubeconfig"):
            path, stat = _fields(value, "\0", 2)
            owner, group, mode = _fields(stat.rstrip("\0"), "|", 3)
            seen.kubeconfigs.append(KubeConfig(path, owner, group, _octal(mode)))
    elif name == "logins":
        _logins(seen, section)


def _lines(text: str) -> list[str]:
    """Lines split on ``\\n`` only (``str.splitlines`` also splits on \\f, \\v, U+2028...)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def bounded_int(text: str, limit: int) -> int | None:
    """``text`` as a number when it is 1-18 ASCII digits and at most ``limit``, else None.

    ``str.isdigit`` accepts ``²`` (which ``int`` refuses) and ``int`` is quadratic in the
    digits and refuses over 4,300 of them: a host's numbers are checked before converting.
    """
    if _DIGITS.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= limit else None


def _check_clock(seen: HostObservation) -> None:
    """A host clock that is not a sane epoch (``1e400``, past year 9999) is unknown."""
    now = seen.facts.get("now", "")
    if now and bounded_int(now, MAX_EPOCH) is None:
        seen.warnings.append(f"the host's clock is unreadable ({_shorten(now, 40)!r}): ignored")
        seen.facts["now"] = "0"


def _group_names(lines: list[str]) -> dict[int, str]:
    names = {}
    for line in lines:
        parts = line.split(":")
        gid = bounded_int(parts[2], MAX_ID) if len(parts) >= 3 else None
        if gid is not None:
            names[gid] = parts[0]
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


def _accounts(seen: HostObservation, lines: list[str]) -> None:
    for line in lines:
        parts = line.split(":")
        if len(parts) < 7:
            continue
        uid, gid = bounded_int(parts[2], MAX_ID), bounded_int(parts[3], MAX_ID)
        if uid is None or gid is None:
            seen.warnings.append(f"passwd entry with a bad uid or gid: {_shorten(line, 80)!r}")
            continue
        name = parts[0]
        seen.accounts[name] = Account(name, uid, gid, parts[5], parts[6])


def _key_file(section: Section) -> KeyFile:
    account, pattern, path, stat = _fields(section.text("meta"), "\0", 4)
    kind, owner, _group, mode, mtime = _fields(stat.rstrip("\n"), "|", 6)[:5]
    parents = []
    for entry in section.text("dirs").split("\0"):
        if entry:
            d_owner, d_mode, d_path = _fields(entry, "|", 3)
            parents.append(PathStat(d_path, d_owner, _octal(d_mode)))
    link = section.data("link")
    read_error = section.data("readerror")
    content = section.data("content")
    text = None if content is None else content.decode("utf-8", "replace")
    parsed = parse_authorized_keys(text) if text is not None else None
    return KeyFile(
        account=account,
        path=path,
        pattern=pattern,
        kind=kind,
        owner=owner,
        mode=_octal(mode),
        mtime=bounded_int(mtime, MAX_EPOCH) or 0,
        link_target=None if link is None else link.decode("utf-8", "replace").removesuffix("\n"),
        parents=tuple(parents),
        keys=parsed.keys if parsed else (),
        bad_lines=parsed.bad if parsed else (),
        read_error=None if read_error is None else read_error.decode("utf-8", "replace"),
        lines=tuple(_lines(text)) if text is not None else (),
    )


def _keygen_listing(listing: str) -> tuple[str, str, str] | None:
    """``(bits, fingerprint, type)`` from ``256 SHA256:abc comment words (ED25519)``."""
    text = listing.strip()[:_LISTING_CHARS]
    parts = text.split(None, 2)
    head, _, tail = text.rpartition("(")
    kind = tail.removesuffix(")")
    if len(parts) < 3 or not head or not tail.endswith(")") or not parts[1].startswith("SHA256:"):
        return None
    if not kind or not all(c.isascii() and (c.isupper() or c.isdigit() or c == "-") for c in kind):
        return None
    return parts[0], parts[1], kind


def _host_keys(section: Section) -> list[HostKey]:
    found = []
    for value in section.texts("hostkey"):
        path, stat, listing = _fields(value.rstrip("\0"), "\0", 3)
        owner, mode = _fields(stat, "|", 2)
        listed = _keygen_listing(listing)
        bits = bounded_int(listed[0], MAX_KEY_BITS) if listed else None
        if listed is None or bits is None:
            continue
        found.append(HostKey(path, owner, _octal(mode), listed[2].lower(), bits, listed[1]))
    return found


def _private_keys(section: Section) -> list[PrivateKey]:
    found = []
    fields = section.text("keys").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    for i in range(0, len(fields) - len(fields) % 4, 4):
        path, owner, encrypted, listing = fields[i : i + 4]
        listed = _keygen_listing(listing)
        found.append(PrivateKey(path, owner, encrypted == "yes", listed[1] if listed else None))
    return found


def _logins(seen: HostObservation, section: Section) -> None:
    seen.login_source = section.text("source", "none")
    for line in _lines(section.text("output")):
        match = _ACCEPTED.search(line[:_LOGIN_CHARS])
        if match is None:
            continue
        seen.logins.append(
            Login(log_time(line, seen.now), match.group("user"), match.group("method"),
                  match.group("addr"), match.group("fp"))
        )  # fmt: skip


def log_time(line: str, now: int) -> int:
    """Epoch seconds of a log line: journal ``short-unix``, ISO 8601, or syslog ``Mon DD HH:MM:SS``.

    A syslog stamp has no year: it is the latest year, up to the host's current one, in which
    that day exists and that is not in the future (Feb 29 goes back to a leap year). 0 when the
    stamp is unreadable or out of range (``inf``, ``1e400``, past year 9999).
    """
    first = line.split(None, 1)[0][:40] if line.strip() else ""
    try:
        number = float(first)
    except ValueError:
        pass
    else:
        return int(number) if math.isfinite(number) and 0 <= number <= MAX_EPOCH else 0
    try:
        return int(dt.datetime.fromisoformat(first).timestamp())
    except (ValueError, OverflowError, OSError):
        pass
    if not 0 < now <= MAX_EPOCH:
        return 0  # a stamp without a year cannot be placed without the host's clock
    year = dt.datetime.fromtimestamp(now, dt.UTC).year
    for candidate in range(year, max(year - 8, 0), -1):
        try:
            parsed = dt.datetime.strptime(f"{candidate} {line[:15]}", "%Y %b %d %H:%M:%S")
        except ValueError:
            continue
        stamp = int(parsed.replace(tzinfo=dt.UTC).timestamp())
        if stamp <= now + 86400:
            return stamp
    return 0


def _fields(text: str, separator: str, count: int) -> list[str]:
    """Exactly ``count`` fields: the last keeps any further separators, missing ones are ""."""
    parts = text.split(separator, count - 1)
    return parts + [""] * (count - len(parts))


def _octal(text: str) -> int:
    """A file mode as stat prints it (``%a``); 0 when it is not one."""
    return int(text, 8) if _MODE.fullmatch(text) else 0


def _shorten(text: str, limit: int = 200) -> str:
    """Bound what a hostile host can put into one message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
