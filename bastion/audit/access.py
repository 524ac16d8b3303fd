"""Effective access: one row per (host, account, credential), computed the way sshd decides."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

from bastion.audit.authorized_keys import AuthorizedKey
from bastion.audit.observation import Account, HostObservation, KeyFile, PasswordState
from bastion.audit.sshd_config import SshdSettings, password_path_open
from bastion.audit.sudo_rules import Privilege


class CredentialKind(StrEnum):
    KEY = "key"
    CERT_AUTHORITY = "cert-authority"
    PASSWORD = "password"  # noqa: S105 (the kind of credential, not a password)


@dataclass(frozen=True, slots=True)
class AccessRow:
    """Who (a credential) gets into which account on which host, how far, and with what limits."""

    host: str
    account: str
    kind: CredentialKind
    fingerprint: str | None
    algorithm: str = ""
    bits: int = 0
    comment: str = ""
    file: str | None = None
    line: int | None = None
    restrictions: tuple[str, ...] = ()
    """``from=...``, ``command``, ``restrict``, ``expiry-time=...``, ``no-port-forwarding``."""
    privilege: str = "none"
    """root (uid 0), all (sudo ALL), some (sudo some commands) or none."""
    nopasswd: bool = False
    cluster_admin: bool = False
    """Root on a node holding a Kubernetes admin kubeconfig."""
    accepted: bool = True
    """False when sshd would refuse this credential anyway (the reason in ``refused_by``)."""
    refused_by: tuple[str, ...] = ()
    last_used: int | None = None
    key: AuthorizedKey | None = field(default=None, compare=False, repr=False)
    managed: bool = True
    """Whether `access apply` manages the source (the account's default authorized_keys)."""

    @property
    def restricted(self) -> bool:
        return bool(self.restrictions)


def privilege_of(seen: HostObservation, account: Account) -> tuple[str, bool]:
    """The account's privilege on the host and whether its widest grant is NOPASSWD."""
    if account.uid == 0:
        return "root", True
    sudo = seen.sudo.get(account.name)
    if sudo is None:
        return "none", False
    if sudo.privilege is Privilege.ALL:
        return "all", sudo.nopasswd
    return sudo.privilege.value, False


def access_rows(seen: HostObservation) -> list[AccessRow]:
    """Every credential that opens an account on this host, with its effective limits."""
    rows: list[AccessRow] = []
    admin_node = bool(seen.kubeconfigs)
    last_use = _last_use(seen)
    for key_file in seen.key_files:
        account = seen.accounts.get(key_file.account)
        if account is None:
            continue
        settings = seen.settings_for(account.name)
        privilege, nopasswd = privilege_of(seen, account)
        gate = account_refusals(account, settings) + unprivileged_sshd_refusal(seen, account)
        file_refusals = _file_refusals(key_file, settings)
        for key in key_file.keys:
            refusals = gate + file_refusals + _key_refusals(key, settings, seen.now)
            rows.append(
                AccessRow(
                    host=seen.host,
                    account=account.name,
                    kind=CredentialKind.CERT_AUTHORITY
                    if key.options.cert_authority
                    else CredentialKind.KEY,
                    fingerprint=key.fingerprint,
                    algorithm=key.algorithm,
                    bits=key.bits,
                    comment=key.comment,
                    file=key_file.path,
                    line=key.line,
                    restrictions=restrictions_of(key),
                    privilege=privilege,
                    nopasswd=nopasswd,
                    cluster_admin=admin_node and privilege in ("root", "all"),
                    accepted=not refusals,
                    refused_by=tuple(refusals),
                    last_used=last_use.get((account.name, key.fingerprint)),
                    key=key,
                    managed=key_file.is_default_file and not key.options.cert_authority,
                )
            )
    for account in seen.accounts.values():
        settings = seen.settings_for(account.name)
        if not password_login_possible(account, settings):
            continue
        if unprivileged_sshd_refusal(seen, account):
            continue
        privilege, nopasswd = privilege_of(seen, account)
        rows.append(
            AccessRow(
                host=seen.host,
                account=account.name,
                kind=CredentialKind.PASSWORD,
                fingerprint=None,
                privilege=privilege,
                nopasswd=nopasswd,
                cluster_admin=admin_node and privilege in ("root", "all"),
                managed=False,
            )
        )
    return rows


def unprivileged_sshd_refusal(seen: HostObservation, account: Account) -> list[str]:
    """An sshd not running as root logs in only its own user (a user-mode lab, say)."""
    uid = seen.facts.get("sshd_uid", "")
    if uid in ("", "0") or str(account.uid) == uid:
        return []
    return [f"sshd runs as uid {uid[:12]}: only that account can log in"]


def password_login_possible(account: Account, settings: SshdSettings) -> bool:
    """Whether ``account`` can log in with a password (its hash or an empty one) over SSH."""
    if account_refusals(account, settings) or not password_path_open(settings):
        return False
    if account.uid == 0 and settings.get("permitrootlogin") != "yes":
        return False
    if account.password is PasswordState.EMPTY:
        return settings.is_yes("permitemptypasswords")
    return account.password is PasswordState.HASH


def account_refusals(account: Account, settings: SshdSettings) -> list[str]:
    """Why sshd would refuse the account whatever the credential (auth.c ``allowed_user``)."""
    reasons = []
    # Without PAM, sshd itself refuses a locked account; with PAM it does not (see ACC-06).
    if account.password is PasswordState.LOCKED and not settings.is_yes("usepam"):
        reasons.append("account locked (UsePAM no)")
    if account.uid == 0 and settings.get("permitrootlogin") == "no":
        reasons.append("PermitRootLogin no")
    deny = {u for line in settings.all("denyusers") for u in line.split()}
    allow = {u for line in settings.all("allowusers") for u in line.split()}
    if account.name in deny:
        reasons.append("DenyUsers")
    if allow and not _allowed(account.name, allow) and not settings.all("allowgroups"):
        reasons.append("not in AllowUsers")
    return reasons


def _allowed(name: str, patterns: set[str]) -> bool:
    from fnmatch import fnmatchcase

    return any(fnmatchcase(name, p.split("@", 1)[0]) for p in patterns)


def _file_refusals(key_file: KeyFile, settings: SshdSettings) -> list[str]:
    if key_file.read_error is not None:
        return ["unreadable as the account"]
    if settings.get("strictmodes", "yes") == "yes" and writable_by_others(key_file):
        return ["StrictModes: a path element is writable by others"]
    return []


def writable_by_others(key_file: KeyFile) -> list[str]:
    """The paths in the key file's chain that sshd's StrictModes would reject (group/world-w)."""
    bad = []
    if key_file.mode & 0o022 and key_file.kind == "regular file":
        bad.append(key_file.path)
    for parent in key_file.parents:
        # / and system dirs are root's; a sticky world-writable dir like /tmp still counts.
        if parent.mode & 0o022 and parent.owner in ("root", key_file.account):
            bad.append(parent.path)
    return bad


def _key_refusals(key: AuthorizedKey, settings: SshdSettings, now: int) -> list[str]:
    reasons = []
    if key.algorithm == "rsa" and key.bits < settings.number("requiredrsasize", 1024):
        reasons.append(f"RSA {key.bits} < RequiredRSASize")
    accepted = settings.get("pubkeyacceptedalgorithms")
    if key.algorithm == "dsa" and accepted and "ssh-dss" not in accepted:
        reasons.append("ssh-dss not in PubkeyAcceptedAlgorithms")
    expiry = key.options.value("expiry-time")
    if expiry is not None and now and expiry_passed(expiry, now):
        reasons.append(f"expiry-time {expiry} passed")
    return reasons


def expiry_passed(value: str, now: int) -> bool:
    """Whether ``expiry-time`` (YYYYMMDD[HHMM[SS]][Z]) is before ``now`` (treated as UTC)."""
    digits = value.rstrip("Zz").ljust(14, "0")
    try:
        stamp = time.strptime(digits, "%Y%m%d%H%M%S")
    except ValueError:
        return False
    return time.mktime(stamp) - time.timezone < now


def restrictions_of(key: AuthorizedKey) -> tuple[str, ...]:
    """The options that narrow what the key can do, in a stable order."""
    options = key.options
    out = []
    if options.source:
        out.append("from=" + ",".join(options.source))
    if options.command is not None:
        out.append("command")
    if options.restrict:
        out.append("restrict")
    elif "no-port-forwarding" in options.flags:
        out.append("no-port-forwarding")
    if options.value("expiry-time"):
        out.append(f"expiry-time={options.value('expiry-time')}")
    if options.value("principals"):
        out.append(f"principals={options.value('principals')}")
    return tuple(out)


def _last_use(seen: HostObservation) -> dict[tuple[str, str], int]:
    last: dict[tuple[str, str], int] = {}
    for login in seen.logins:
        if login.fingerprint:
            slot = (login.account, login.fingerprint)
            last[slot] = max(last.get(slot, 0), login.time)
    return last
