"""``bastion access apply``: converge each declared account's authorized_keys to the access list.

Planning is pure (observations + access list in, per-file plans out). Only the conventional
``~/.ssh/authorized_keys`` of an account is managed; keys in other sources (authorized_keys2,
other AuthorizedKeysFile patterns, cert-authority lines) are reported, never touched. Writing is
one shell script per host: as the account (runuser), a backup copy, a temporary file in the
same directory, chmod 600, then an atomic rename.
"""

from __future__ import annotations

import base64
import datetime as dt
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from bastion.audit.authorized_keys import AuthorizedKey, KeyLineError, KeyOptions, parse_key_line
from bastion.audit.declared import AccessList
from bastion.audit.drift import Expected, Slot, options_satisfied
from bastion.audit.login_guard import LoginNeeds, login_blockers
from bastion.audit.observation import Coverage, HostObservation

DEFAULT_FILE = ".ssh/authorized_keys"


@dataclass(frozen=True, slots=True)
class Change:
    """One line added (+), removed (-) or rewritten with the declared options (~)."""

    sign: str
    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class FilePlan:
    host: str
    account: str
    path: str
    old_lines: tuple[str, ...]
    new_lines: tuple[str, ...]
    changes: tuple[Change, ...]
    exists: bool

    @property
    def changed(self) -> bool:
        """Whether the file is to be written (a "!" change is only reported)."""
        return any(c.sign in "+-~" for c in self.changes)


@dataclass(slots=True)
class HostPlan:
    host: str
    files: list[FilePlan] = field(default_factory=list)
    refused: str | None = None
    """Why nothing is written on this host (the lockout guard, an unaudited host)."""
    notes: list[str] = field(default_factory=list)
    """Keys left alone because `access apply` does not manage their source."""

    @property
    def changed(self) -> bool:
        return any(f.changed for f in self.files)


def plan_host(
    seen: HostObservation,
    access: AccessList,
    expected: dict[Slot, dict[str, Expected]],
    *,
    today: dt.date,
    own_fingerprints: frozenset[str],
    login_user: str,
    allow_lockout: bool = False,
    needs_pty: bool = False,
    needs_forwarding: bool = False,
) -> HostPlan:
    """What to write on one host so its managed files match the access list.

    ``needs_pty`` and ``needs_forwarding`` say what bastion's own login there needs besides a
    command (mosh; a jump host): the lockout guard counts a line without them as removed.
    """
    plan = HostPlan(seen.host)
    if seen.coverage is not Coverage.FULL:
        plan.refused = f"not fully audited ({seen.coverage.value}): nothing written"
        return plan
    accounts = {account for (host, account) in expected if host == seen.host}
    for key_file in seen.key_files:
        if key_file.is_default_file:
            if any(k.fingerprint in access.revoked for k in key_file.keys):
                accounts.add(key_file.account)
            continue
        for key in key_file.keys:
            declared = key.fingerprint in expected.get((seen.host, key_file.account), {})
            if key.fingerprint in access.revoked or not declared:
                plan.notes.append(
                    f"{key_file.account}: {key.comment or key.fingerprint} in "
                    f"{key_file.path}:{key.line} left alone (not a managed file)"
                )
    for account in sorted(accounts):
        if account not in seen.accounts:
            plan.notes.append(f"{account}: no such account on {seen.host}; skipped")
            continue
        unreadable = next(
            (f for f in seen.key_files
             if f.account == account and f.is_default_file and f.read_error),
            None,
        )  # fmt: skip
        if unreadable is not None:
            # Never replace what could not be read (a symlink elsewhere, a file it cannot read).
            plan.notes.append(f"{account}: {unreadable.path} unreadable as {account}; skipped")
            continue
        wanted = expected.get((seen.host, account), {})
        plan.files.append(_plan_file(seen, account, wanted, access, today))
    if not allow_lockout:
        needs = LoginNeeds(
            client_addr=seen.facts.get("client_addr", ""), now=seen.now,
            pty=needs_pty, port_forwarding=needs_forwarding,
        )  # fmt: skip
        plan.refused = _lockout(seen, plan, own_fingerprints, login_user, needs)
    return plan


def _plan_file(
    seen: HostObservation,
    account: str,
    wanted: dict[str, Expected],
    access: AccessList,
    today: dt.date,
) -> FilePlan:
    home = seen.accounts[account].home
    current = next((f for f in seen.key_files if f.account == account and f.is_default_file), None)
    path = current.path if current is not None else f"{home.rstrip('/')}/{DEFAULT_FILE}"
    old = current.lines if current is not None else ()
    new: list[str] = []
    changes: list[Change] = []
    # A declared key already in another source (authorized_keys2) is there: do not add it.
    elsewhere = {
        k.fingerprint
        for f in seen.key_files
        if f.account == account and not f.is_default_file
        for k in f.keys
    }
    present: set[str] = set()
    for text in old:
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            new.append(text)
            continue
        try:
            key = parse_key_line(stripped)
        except KeyLineError:
            new.append(text)  # KEY-07 reports it; a line sshd ignores is not ours to judge
            continue
        want = wanted.get(key.fingerprint)
        expired = want is not None and want.key.expires is not None and want.key.expires < today
        if key.fingerprint in access.revoked:
            changes.append(Change("-", stripped, "revoked"))
        elif want is None:
            changes.append(Change("-", stripped, "undeclared"))
        elif expired:
            changes.append(Change("-", stripped, f"expired {want.key.expires}"))
        elif key.fingerprint in present:
            changes.append(Change("-", stripped, "duplicate"))
        elif not options_satisfied(key.options, want.grant.options):
            fixed = _with_options(key.render(), key.options, want.grant.options)
            changes.append(Change("~", fixed, "declared options"))
            new.append(fixed)
            present.add(key.fingerprint)
        else:
            new.append(text)
            present.add(key.fingerprint)
    for fp, want in wanted.items():
        expired = want.key.expires is not None and want.key.expires < today
        if fp in present or fp in elsewhere or expired:
            continue
        if want.key.public_key is None:
            reason = f"{want.key.identity}: no public key declared; cannot add"
            changes.append(Change("!", fp, reason))
            continue
        line = _with_options(want.key.public_key, KeyOptions(), want.grant.options)
        changes.append(Change("+", line, want.key.identity))
        new.append(line)
    writes = [c for c in changes if c.sign in "+-~"]
    return FilePlan(
        seen.host, account, path, tuple(old), tuple(new) if writes else tuple(old),
        tuple(changes), current is not None,
    )  # fmt: skip


def _with_options(line: str, have: KeyOptions, required: KeyOptions) -> str:
    """``line`` with the required options merged into the ones it has."""
    key = parse_key_line(line.strip())
    replaced = {name for name, _ in required.values}
    values = [(n, v) for n, v in have.values if n not in replaced] + list(required.values)
    return replace(key, options=KeyOptions(have.flags | required.flags, tuple(values))).render()


def _lockout(
    seen: HostObservation, plan: HostPlan, own: frozenset[str], login_user: str, needs: LoginNeeds
) -> str | None:
    """Refuse the host when no line of bastion's own key would still let bastion in.

    A line removed, or rewritten with an option that stops bastion's login (`login_guard`),
    counts the same. Lines in files apply does not write (authorized_keys2) still count.
    """
    if not own:
        return None
    for file_plan in plan.files:
        if file_plan.account != login_user or not file_plan.changed:
            continue
        before = {_fingerprint(line) for line in file_plan.old_lines}
        if not own & before:
            continue  # bastion does not log in through this file today: nothing to lose
        usable: list[str] = []
        blocked: list[str] = []
        for line in file_plan.new_lines:
            key = _parsed(line)
            if key is None or key.fingerprint not in own:
                continue
            reasons = login_blockers(key.options, needs)
            if reasons:
                blocked += reasons
            else:
                usable.append(key.fingerprint)
        elsewhere = [
            k.fingerprint
            for f in seen.key_files
            if f.account == login_user and not f.is_default_file
            for k in f.keys
            if k.fingerprint in own and not login_blockers(k.options, needs)
        ]
        if usable or elsewhere:
            continue
        what = "; ".join(dict.fromkeys(blocked)) or "its line would be removed"
        return (
            f"would lock bastion out: the key bastion logs in with ({login_user}, "
            f"{', '.join(sorted(own & before))}): {what}; declare it so that bastion still "
            "gets in, or pass --allow-lockout"
        )
    return None


def _parsed(line: str) -> AuthorizedKey | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    try:
        return parse_key_line(stripped)
    except KeyLineError:
        return None


def _fingerprint(line: str) -> str | None:
    try:
        return parse_key_line(line.strip()).fingerprint
    except KeyLineError:
        return None


def write_script(plans: Sequence[FilePlan], stamp: str) -> str:
    """The POSIX sh script that writes the changed files on one host, as root."""
    lines = ["set -u", "umask 077", "status=0"]
    for plan in plans:
        if not plan.changed or plan.new_lines == plan.old_lines:
            continue
        content = "".join(f"{line}\n" for line in plan.new_lines)
        encoded = base64.b64encode(content.encode()).decode()
        user, path = shlex.quote(plan.account), shlex.quote(plan.path)
        backup = shlex.quote(f"{plan.path}.bastion-backup-{stamp}")
        lines.append(
            f"""(
set -e
u={user} f={path}
d=$(dirname -- "$f")
runuser -u "$u" -- mkdir -p -m 700 -- "$d"
if [ -e "$f" ] || [ -L "$f" ]; then runuser -u "$u" -- cp -- "$f" {backup}; fi
tmp=$(runuser -u "$u" -- mktemp "$d/.authorized_keys.XXXXXX")
echo '{encoded}' | base64 -d | runuser -u "$u" -- tee "$tmp" >/dev/null
runuser -u "$u" -- chmod 600 -- "$tmp"
runuser -u "$u" -- mv -f -- "$tmp" "$f"
echo "@@written $u $f"
) || {{ echo "@@failed {plan.account} {plan.path}"; status=1; }}"""
        )
    lines.append("exit $status")
    return "\n".join(lines) + "\n"


def apply_command(script: str) -> str:
    """The command that runs ``script`` as root (directly, or through sudo -n)."""
    encoded = base64.b64encode(script.encode()).decode()
    return (
        f"echo {encoded} | base64 -d | "
        '{ if [ "$(id -u)" = 0 ]; then sh -s; else sudo -n sh -s; fi; }'
    )


def own_key_fingerprints(identity_file: str | None) -> frozenset[str]:
    """The fingerprints of the keys bastion logs in with (identity_file, else ~/.ssh defaults).

    Keys offered only by an ssh-agent are not known here: the guard then protects the
    identity files only (docs/audit.md says so).
    """
    import subprocess

    candidates = (
        [Path(identity_file)]
        if identity_file
        else [Path.home() / ".ssh" / n for n in ("id_ed25519", "id_ecdsa", "id_rsa")]
    )
    found: set[str] = set()
    for private in candidates:
        public = Path(f"{private}.pub")
        text = ""
        if public.is_file():
            text = public.read_text(encoding="utf-8", errors="replace")
        elif private.is_file():
            done = subprocess.run(
                ["ssh-keygen", "-y", "-P", "", "-f", str(private)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            text = done.stdout
        fingerprint = _fingerprint(text.strip()) if text.strip() else None
        if fingerprint:
            found.add(fingerprint)
    return frozenset(found)
