"""The rules: observations and access rows in, findings out (pure).

Per-host rules look at one host; fleet rules join hosts (shared host keys, lateral paths).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from bastion.audit.access import (
    AccessRow,
    CredentialKind,
    password_login_possible,
    writable_by_others,
)
from bastion.audit.findings import Finding, Severity, finding
from bastion.audit.observation import Coverage, HostObservation, PasswordState
from bastion.audit.sshd_config import SshdSettings

DAY_S = 86400
# Membership gives root on the node: the docker/lxd sockets, raw disk devices.
ROOT_EQUIVALENT_GROUPS = frozenset({"docker", "lxd", "disk"})
DEFAULT_UNUSED_DAYS = 90


def host_findings(
    seen: HostObservation, rows: Sequence[AccessRow], *, unused_days: int = DEFAULT_UNUSED_DAYS
) -> list[Finding]:
    """Every finding about one host."""
    if seen.coverage is Coverage.UNREACHABLE:
        return [finding("COLL-01", seen.host, f"not audited: {seen.error}")]
    out: list[Finding] = []
    if seen.coverage is Coverage.FAILED:
        unreadable = (seen.error or "").startswith("probe output unreadable")
        message = seen.error if unreadable else f"probe did not finish: {seen.error}"
        out.append(finding("COLL-01", seen.host, message or "probe did not finish"))
    if seen.coverage is Coverage.PARTIAL:
        out.append(finding("COLL-02", seen.host, "; ".join(seen.warnings) or "not root"))
    out += _config(seen)
    out += _accounts(seen, rows)
    out += _key_files(seen)
    out += _keys(seen, rows)
    out += _privilege(seen, rows)
    out += _usage(seen, rows, unused_days)
    return out


def fleet_findings(
    observations: Sequence[HostObservation], rows: Sequence[AccessRow]
) -> list[Finding]:
    """Findings that need several hosts: cloned host keys, private keys opening other nodes."""
    out: list[Finding] = []
    by_host_key: dict[str, list[str]] = defaultdict(list)
    for seen in observations:
        for key in seen.host_keys:
            if seen.host not in by_host_key[key.fingerprint]:
                by_host_key[key.fingerprint].append(seen.host)
    for fingerprint, hosts in by_host_key.items():
        if len(hosts) > 1:
            for host in hosts:
                others = ", ".join(h for h in hosts if h != host)
                out.append(
                    finding("HOST-01", host, f"host key {fingerprint} also on {others}",
                            fingerprint=fingerprint)
                )  # fmt: skip
    return out + _lateral_paths(observations, rows)


def _lateral_paths(
    observations: Sequence[HostObservation], rows: Sequence[AccessRow]
) -> list[Finding]:
    """KEY-10: a private key lying on one node whose public half opens an account elsewhere."""
    out: list[Finding] = []
    by_fingerprint: dict[str, list[AccessRow]] = defaultdict(list)
    for row in rows:
        if row.fingerprint and row.accepted:
            by_fingerprint[row.fingerprint].append(row)
    for seen in observations:
        for private in seen.private_keys:
            if private.fingerprint is None:
                continue
            for target in by_fingerprint.get(private.fingerprint, []):
                if target.host == seen.host and target.account == private.owner:
                    continue
                worst = target.privilege in ("root", "all")
                out.append(
                    finding(
                        "KEY-10",
                        seen.host,
                        f"{private.path} ({private.owner}) opens {target.account}@{target.host}"
                        f" [{target.privilege}]",
                        account=private.owner,
                        fingerprint=private.fingerprint,
                        file=private.path,
                        severity=Severity.CRITICAL if worst else None,
                    )
                )
    return out


def _config(seen: HostObservation) -> list[Finding]:
    out: list[Finding] = []
    # Without root, sshd -T fails on the unreadable host keys: that says nothing of the config.
    as_root = seen.facts.get("root") == "yes"
    for warning in seen.warnings:
        if warning.startswith("sshd -T:") and as_root:
            out.append(finding("CFG-15", seen.host, warning, file=seen.facts.get("sshd_config")))
    base = seen.sshd.get("root")
    if not base:
        return out
    config = seen.facts.get("sshd_config")
    root_login = base.get("permitrootlogin")
    root_keys = [
        k
        for f in seen.key_files
        if f.account == "root"
        for k in f.keys
        if k.options.command is None
    ]
    if root_login == "yes":
        out.append(finding("ACC-03", seen.host, "PermitRootLogin yes", account="root",
                           file=config, severity=Severity.HIGH))  # fmt: skip
    elif root_login == "prohibit-password" and root_keys:
        out.append(
            finding("ACC-03", seen.host,
                    f"PermitRootLogin prohibit-password and {len(root_keys)} root key(s) "
                    "without command=", account="root", file=config)
        )  # fmt: skip
    elif root_login == "forced-commands-only":
        out.append(finding("ACC-03", seen.host, "PermitRootLogin forced-commands-only",
                           account="root", file=config, severity=Severity.LOW))  # fmt: skip
    out += _key_sources(seen.host, base, config)
    if not (base.all("allowusers") or base.all("allowgroups")):
        out.append(finding("ACC-04", seen.host, "any account with a credential may log in",
                           file=config))  # fmt: skip
    for key in seen.host_keys:
        weak = key.algorithm == "dsa" or (key.algorithm == "rsa" and key.bits < 3072)
        if weak:
            severity = Severity.HIGH if key.algorithm == "rsa" and key.bits < 2048 else None
            message = f"{key.algorithm.upper()} {key.bits} host key"
            out.append(finding("HOST-02", seen.host, message, fingerprint=key.fingerprint,
                               file=key.path, severity=severity))  # fmt: skip
    for kube in seen.kubeconfigs:
        if kube.owner != "root" or kube.mode & 0o077:
            out.append(finding("K8S-02", seen.host,
                               f"{kube.path} is {kube.owner}:{kube.group} {kube.mode:o}",
                               file=kube.path))  # fmt: skip
    return out


def _key_sources(host: str, base: SshdSettings, config: str | None) -> list[Finding]:
    """CA-01/CA-02: key sources beyond the files (user CAs, an AuthorizedKeysCommand)."""
    out = []
    ca = base.get("trustedusercakeys", "none")
    principals = (base.get("authorizedprincipalsfile", "none"),
                  base.get("authorizedprincipalscommand", "none"))  # fmt: skip
    if ca != "none" and principals == ("none", "none"):
        message = f"TrustedUserCAKeys {ca} with no AuthorizedPrincipalsFile"
        out.append(finding("CA-01", host, message, file=config))
    command = base.get("authorizedkeyscommand", "none")
    if command != "none":
        runs_as = base.get("authorizedkeyscommanduser", "?")
        message = f"AuthorizedKeysCommand {command} (as {runs_as})"
        out.append(finding("CA-02", host, message, file=config))
    return out


def _accounts(seen: HostObservation, rows: Sequence[AccessRow]) -> list[Finding]:
    out: list[Finding] = []
    keyed = {r.account for r in rows if r.kind is not CredentialKind.PASSWORD}
    for account in seen.accounts.values():
        settings = seen.settings_for(account.name)
        if account.uid == 0 and account.name != "root":
            out.append(finding("ACCT-01", seen.host, f"{account.name} has UID 0",
                               account=account.name))  # fmt: skip
        if account.password is PasswordState.EMPTY:
            out.append(finding("ACCT-02", seen.host, "empty password field", account=account.name))
            if password_login_possible(account, settings):
                out.append(finding("ACC-02", seen.host, "empty password accepted over SSH",
                                   account=account.name))  # fmt: skip
        locked = account.password is PasswordState.LOCKED
        if locked and account.name in keyed and settings.is_yes("usepam"):
            message = "password locked, but its keys still log in (UsePAM yes)"
            out.append(finding("ACC-06", seen.host, message, account=account.name))
        expired = account.expires_day is not None and account.expires_day * DAY_S < seen.now
        if expired and seen.now and account.name in keyed:
            message = "account expired but holds keys"
            out.append(finding("ACC-07", seen.host, message, account=account.name))
    for row in rows:
        if row.kind is CredentialKind.PASSWORD:
            message = f"password login open (privilege {row.privilege})"
            config = seen.facts.get("sshd_config")
            out.append(finding("ACC-01", seen.host, message, account=row.account, file=config))
    out += _tunnels(seen, rows)
    return out


def _tunnels(seen: HostObservation, rows: Sequence[AccessRow]) -> list[Finding]:
    """ACC-05: a nologin account whose key still opens TCP forwards."""
    out = []
    for row in rows:
        holder = seen.accounts.get(row.account)
        if holder is None or holder.interactive or not row.accepted or row.key is None:
            continue
        settings = seen.settings_for(row.account)
        if (
            settings.get("allowtcpforwarding", "yes") != "no"
            and not settings.is_yes("disableforwarding")
            and row.key.options.port_forwarding
            and row.key.options.command is None
        ):
            message = f"shell {holder.shell}, but the key can open TCP forwards"
            out.append(_about(row, "ACC-05", message))
    return out


def _key_files(seen: HostObservation) -> list[Finding]:
    out: list[Finding] = []
    for key_file in seen.key_files:
        home = seen.accounts[key_file.account].home if key_file.account in seen.accounts else ""
        if key_file.link_target is not None or key_file.read_error is not None:
            target = key_file.link_target or ""
            outside = target.startswith("/") and not target.startswith(home + "/")
            message = f"symlink to {target}" if target else "regular path"
            if key_file.read_error:
                message += f"; {key_file.read_error}"
            severity = (
                Severity.MEDIUM
                if key_file.read_error or outside or key_file.kind != "regular file"
                else Severity.INFO
            )
            if key_file.link_target is not None and not key_file.read_error and not outside:
                severity = Severity.INFO
            out.append(finding("COLL-03", seen.host, message, account=key_file.account,
                               file=key_file.path, severity=severity))  # fmt: skip
        bad_paths = writable_by_others(key_file)
        if bad_paths:
            strict = seen.settings_for(key_file.account).get("strictmodes", "yes") == "yes"
            message = "writable by others: " + ", ".join(bad_paths)
            if strict:
                message += " (StrictModes refuses these keys: access silently broken)"
            out.append(finding("ACCT-04", seen.host, message, account=key_file.account,
                               file=key_file.path,
                               severity=Severity.INFO if strict else None))  # fmt: skip
        for bad in key_file.bad_lines:
            out.append(finding("KEY-07", seen.host, bad.reason, account=key_file.account,
                               file=key_file.path, line=bad.line))  # fmt: skip
        seen_lines: dict[str, int] = {}
        for key in key_file.keys:
            text = key.render()
            if text in seen_lines:
                out.append(finding("KEY-06", seen.host, f"same as line {seen_lines[text]}",
                                   account=key_file.account, fingerprint=key.fingerprint,
                                   file=key_file.path, line=key.line))  # fmt: skip
            seen_lines.setdefault(text, key.line)
    for private in seen.private_keys:
        if not private.encrypted:
            out.append(finding("KEY-09", seen.host, f"unencrypted private key of {private.owner}",
                               account=private.owner, fingerprint=private.fingerprint,
                               file=private.path))  # fmt: skip
    return out


def _keys(seen: HostObservation, rows: Sequence[AccessRow]) -> list[Finding]:
    out: list[Finding] = []
    accounts_of: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        key = row.key
        if key is None:
            continue
        accounts_of[key.fingerprint].add(row.account)
        label = f"{key.algorithm.upper()}-{key.bits} {key.comment or '(no comment)'}"
        dead = None if row.accepted else Severity.LOW  # sshd refuses it: a line to clean up
        if key.algorithm == "dsa":
            out.append(_about(row, "KEY-01", label, dead))
        elif key.algorithm == "rsa" and key.bits < 2048:
            out.append(_about(row, "KEY-02", label, dead))
        elif key.algorithm == "rsa" and key.bits < 3072:
            out.append(_about(row, "KEY-03", label))
        if key.options.command is not None and key.options.port_forwarding:
            out.append(_about(row, "OPT-02", f"{label}: command= without restrict"))
        if key.options.cert_authority:
            out.append(_about(row, "OPT-04", f"CA {label} trusted for {row.account}"))
        if not row.managed and row.kind is CredentialKind.KEY:
            out.append(_about(row, "OPT-09", f"{label} in {row.file}"))
        if row.cluster_admin and row.accepted:
            message = f"{label} -> {row.account} [{row.privilege}] on a node with admin.conf"
            out.append(_about(row, "K8S-01", message))
    for fingerprint, accounts in accounts_of.items():
        if len(accounts) > 1:
            names = ", ".join(sorted(accounts))
            out.append(finding("KEY-05", seen.host, f"{fingerprint} opens {names}",
                               fingerprint=fingerprint))  # fmt: skip
    return out


def _about(row: AccessRow, rule_id: str, message: str, severity: Severity | None = None) -> Finding:
    """A finding about one access row's credential, located at its file and line."""
    return finding(
        rule_id,
        row.host,
        message,
        account=row.account,
        fingerprint=row.fingerprint,
        file=row.file,
        line=row.line,
        severity=severity,
    )


def _privilege(seen: HostObservation, rows: Sequence[AccessRow]) -> list[Finding]:
    reachable = {r.account for r in rows if r.accepted}
    out = []
    for name in sorted(reachable):
        account = seen.accounts.get(name)
        risky = sorted(set(account.groups) & ROOT_EQUIVALENT_GROUPS) if account else []
        if account is not None and account.uid != 0 and risky:
            message = f"member of {', '.join(risky)}: root on the node without sudo"
            out.append(finding("PRIV-06", seen.host, message, account=name))
    for name, sudo in sorted(seen.sudo.items()):
        account = seen.accounts.get(name)
        if account is None or account.uid == 0 or name not in reachable:
            continue
        if sudo.nopasswd:
            grant = seen.sudoers.get(name)
            if grant is not None and grant.access.nopasswd:  # the sudoers file that grants it
                why, source = f"sudo: NOPASSWD ALL (via {grant.via})", grant.source
            else:
                why, source = "sudo: NOPASSWD ALL", None
            out.append(finding("PRIV-01", seen.host, why, account=name, file=source))
    return out


def _usage(seen: HostObservation, rows: Sequence[AccessRow], unused_days: int) -> list[Finding]:
    if seen.login_source == "none":
        message = "no sshd login log found (journal, auth.log): key use unknown"
        return [finding("COLL-04", seen.host, message)]
    out = []
    limit = seen.now - unused_days * DAY_S
    for row in rows:
        if row.key is None or not row.accepted:
            continue
        if row.last_used is None or row.last_used < limit:
            when = "never in the logs" if row.last_used is None else "not recently"
            message = (
                f"{row.comment or row.fingerprint}: {when} "
                f"(last {unused_days} days, source {seen.login_source})"
            )
            out.append(_about(row, "USE-01", message))
    return out


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first, then by ID, host, account and place."""
    return sorted(
        findings,
        key=lambda f: (-f.severity, f.id, f.host, f.account or "", f.where, f.message),
    )
