"""Declared versus observed: each key row classified, missing keys found, policy applied.

States: OK, UNDECLARED, MISMATCH (weaker options than declared), REVOKED, EXPIRED, WAIVED,
UNMANAGED (an undeclared key in a source `access apply` does not manage) and MISSING.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bastion.audit.access import AccessRow, CredentialKind
from bastion.audit.authorized_keys import KeyOptions
from bastion.audit.declared import SUDO_LEVELS, AccessList, AccessListError, DeclaredKey, Grant
from bastion.audit.findings import Finding, Severity, finding
from bastion.audit.observation import Coverage, HostObservation
from bastion.errors import SelectionError
from bastion.hostset import fold
from bastion.inventory import Inventory
from bastion.select import Selection, select_hosts

# What ``restrict`` turns off: a declared ``no-pty`` is met by an observed ``restrict``.
RESTRICT_IMPLIES = frozenset(
    {"no-port-forwarding", "no-agent-forwarding", "no-x11-forwarding", "no-pty", "no-user-rc"}
)

Slot = tuple[str, str]
"""(host, account)"""


@dataclass(frozen=True, slots=True)
class Expected:
    key: DeclaredKey
    grant: Grant


def expected_keys(access: AccessList, inventory: Inventory) -> dict[Slot, dict[str, Expected]]:
    """Every (host, account) -> fingerprint -> the declared key and the grant that puts it there."""
    out: dict[Slot, dict[str, Expected]] = {}
    for grant in access.grants:
        for host in grant_hosts(grant, inventory, access):
            slot = out.setdefault((host, grant.account), {})
            for member in grant.members:
                for key in access.keys.get(member, ()):
                    if key.fingerprint not in access.revoked:
                        slot.setdefault(key.fingerprint, Expected(key, grant))
    return out


def grant_hosts(grant: Grant, inventory: Inventory, access: AccessList) -> list[str]:
    """The inventory hosts a grant's ``hosts:`` names (all, a group, or host patterns)."""
    if grant.hosts == "all":
        selection = Selection(all=True)
    elif grant.hosts in inventory.groups:
        selection = Selection(groups=(grant.hosts,))
    else:
        selection = Selection(hosts=(grant.hosts,))
    try:
        return [h.name for h in select_hosts(inventory, selection)]
    except SelectionError as exc:
        raise AccessListError(f"grant hosts: {exc}", source=access.path, line=grant.line) from None


def options_satisfied(observed: KeyOptions, required: KeyOptions) -> bool:
    """Whether the observed options are at least as strict as the declared ones."""
    for flag in required.flags:
        if flag in observed.flags:
            continue
        if flag in RESTRICT_IMPLIES and observed.restrict:
            continue
        return False
    return all(observed.value(name) == value for name, value in required.values)


def classify(
    observations: Sequence[HostObservation],
    rows: Sequence[AccessRow],
    access: AccessList,
    expected: dict[Slot, dict[str, Expected]],
    today: dt.date,
) -> tuple[dict[tuple[str, str, str], str], list[Finding]]:
    """Each key row's declared state, plus MISSING entries, and the DRIFT findings."""
    states: dict[tuple[str, str, str], str] = {}
    findings: list[Finding] = []
    names = access.identity_of()
    for row in rows:
        if row.kind is CredentialKind.PASSWORD or row.fingerprint is None:
            continue
        fp = row.fingerprint
        declared = expected.get((row.host, row.account), {}).get(fp)
        state, rule, message, severity = _state_of(row, fp, declared, access, today, names)
        states[(row.host, row.account, fp)] = state
        if rule is not None:
            findings.append(
                finding(rule, row.host, message, account=row.account, fingerprint=fp,
                        file=row.file, line=row.line, severity=severity)
            )  # fmt: skip
    findings += _missing(observations, expected, states)
    findings += _sudo_beyond_declared(observations, access, expected)
    return states, findings


def _sudo_beyond_declared(
    observations: Sequence[HostObservation],
    access: AccessList,
    expected: dict[Slot, dict[str, Expected]],
) -> list[Finding]:
    """DRIFT-04: an account's sudo goes further than every grant for it on the host declares."""
    declared: dict[Slot, int] = {}
    for (host, account), keys in expected.items():
        for want in keys.values():
            if want.grant.sudo is not None:
                level = SUDO_LEVELS.index(want.grant.sudo)
                declared[(host, account)] = max(declared.get((host, account), -1), level)
    out = []
    for seen in observations:
        for name, sudo in seen.sudo.items():
            allowed = declared.get((seen.host, name))
            holder = seen.accounts.get(name)
            if allowed is None or holder is None or holder.uid == 0:
                continue
            observed = SUDO_LEVELS.index(sudo.privilege.value)
            if observed > allowed:
                nopasswd = " NOPASSWD" if sudo.nopasswd else ""
                message = f"sudo {sudo.privilege.value}{nopasswd}, declared {SUDO_LEVELS[allowed]}"
                out.append(finding("DRIFT-04", seen.host, message, account=name))
    return out


def _missing(
    observations: Sequence[HostObservation],
    expected: dict[Slot, dict[str, Expected]],
    states: dict[tuple[str, str, str], str],
) -> list[Finding]:
    """DRIFT-02 for each declared key absent from a fully audited host (recorded as MISSING)."""
    audited = {o.host for o in observations if o.coverage is Coverage.FULL}
    out = []
    for (host, account), keys in sorted(expected.items()):
        if host not in audited:
            continue
        for fp, want in keys.items():
            if (host, account, fp) in states:
                continue
            states[(host, account, fp)] = "MISSING"
            out.append(
                finding("DRIFT-02", host, f"{want.key.identity}: declared key not found",
                        account=account, fingerprint=fp)
            )  # fmt: skip
    return out


def _state_of(
    row: AccessRow,
    fp: str,
    declared: Expected | None,
    access: AccessList,
    today: dt.date,
    names: dict[str, str],
) -> tuple[str, str | None, str, Severity | None]:
    """(state, drift rule or None, message, severity override) of one observed key."""
    who = names.get(fp) or row.comment or "(no comment)"
    if fp in access.revoked:
        return "REVOKED", "DRIFT-03", f"revoked key {who} still present", None
    if declared is not None and declared.key.expires and declared.key.expires < today:
        return "EXPIRED", "DRIFT-06", f"{who}: declared key expired {declared.key.expires}", None
    if declared is not None:
        weaker = row.key is not None and not options_satisfied(
            row.key.options, declared.grant.options
        )
        if weaker:
            return "MISMATCH", "DRIFT-05", f"{who}: needs {declared.grant.options.render()}", None
        return "OK", None, "", None
    if not row.managed:
        message = f"undeclared {who} in {row.file}, which access apply does not manage"
        return "UNMANAGED", "DRIFT-08", message, None
    where = "known identity in the wrong place" if fp in names else "unknown key"
    severity = Severity.CRITICAL if row.privilege == "root" else None
    return "UNDECLARED", "DRIFT-01", f"{who}: {where}", severity


def apply_policy(access: AccessList, today: dt.date) -> tuple[list[Finding], AdjustPolicy]:
    """DRIFT-07 findings for expired waivers, and the function that applies the policy."""
    expired = [
        finding("DRIFT-07", "*", f"waiver for {w.id} on {w.hosts} expired {w.until}: {w.reason}")
        for w in access.waivers
        if w.until < today
    ]
    return expired, AdjustPolicy(access, today)


@dataclass(frozen=True, slots=True)
class AdjustPolicy:
    """Applies the access list's severity overrides and unexpired waivers to a finding."""

    access: AccessList
    today: dt.date

    def __call__(self, item: Finding) -> Finding:
        severity = self.access.severities.get(item.id)
        if severity is not None:
            item = replace(item, severity=severity)
        for waiver in self.access.waivers:
            if waiver.id != item.id or waiver.until < self.today:
                continue
            if waiver.account is not None and waiver.account != item.account:
                continue
            if waiver.hosts != "all" and not _host_matches(item.host, waiver.hosts):
                continue
            return replace(item, waived=f"{waiver.reason} (until {waiver.until})")
        return item


def _host_matches(host: str, pattern: str) -> bool:
    from bastion.hostset import match

    return bool(match(pattern, [host]).names)


def mark_waived_rows(
    states: dict[tuple[str, str, str], str], findings: Sequence[Finding]
) -> dict[tuple[str, str, str], str]:
    """Rows whose drift finding is waived become WAIVED."""
    out = dict(states)
    for item in findings:
        if item.waived and item.id.startswith("DRIFT-") and item.account and item.fingerprint:
            slot = (item.host, item.account, item.fingerprint)
            if slot in out:
                out[slot] = "WAIVED"
    return out


def fold_hosts(hosts: Sequence[str], inventory: Inventory) -> str:
    """``all`` when every inventory host, else the folded names (``node[1-3]``)."""
    return "all" if set(hosts) == set(inventory.hosts) else fold(hosts)
