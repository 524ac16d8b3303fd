"""The findings catalogue (stable IDs, default severities, remediations) and the finding record.

IDs and severities follow ``reference/audit.md`` §4; docs/audit.md lists every one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum


class Severity(IntEnum):
    """Ordered so that ``>=`` compares gravity."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """``critical``/``crit``, ``high``, ``medium``/``med``, ``low``, ``info`` (any case)."""
        aliases = {"crit": "critical", "med": "medium"}
        name = aliases.get(text.strip().lower(), text.strip().lower())
        try:
            return cls[name.upper()]
        except KeyError:
            known = "critical, high, medium, low, info"
            raise ValueError(f"unknown severity {text!r} ({known})") from None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    title: str
    remediation: str


def _rules(*rules: Rule) -> dict[str, Rule]:
    return {rule.id: rule for rule in rules}


S = Severity
CATALOGUE: dict[str, Rule] = _rules(
    Rule("ACC-01", S.HIGH, "password login reachable",
         "Set PasswordAuthentication no and KbdInteractiveAuthentication no, or lock the "
         "password (usermod -p '*')."),
    Rule("ACC-02", S.CRITICAL, "empty password can log in",
         "Set PermitEmptyPasswords no and give the account a password or lock it."),
    Rule("ACC-03", S.MEDIUM, "root can log in over SSH",
         "Set PermitRootLogin no (or forced-commands-only) and log in as a named user."),
    Rule("ACC-04", S.MEDIUM, "no AllowUsers/AllowGroups",
         "Limit who may log in with AllowGroups (e.g. AllowGroups ssh-users)."),
    Rule("ACC-05", S.MEDIUM, "nologin account can still tunnel",
         "Add restrict (or no-port-forwarding) to its keys, or AllowTcpForwarding no in a "
         "Match block for it."),
    Rule("ACC-06", S.HIGH, "locked account still logs in with a key (UsePAM yes)",
         "Expire the account (usermod --expiredate 1) or remove its keys: passwd -l does "
         "not stop key logins through PAM."),
    Rule("ACC-07", S.LOW, "expired account still holds keys",
         "Remove the keys of the expired account."),
    Rule("KEY-01", S.HIGH, "DSA key",
         "Replace the key with an ed25519 key and remove the ssh-dss line."),
    Rule("KEY-02", S.HIGH, "RSA key shorter than 2048 bits",
         "Replace it with ed25519 (or RSA >= 3072); set RequiredRSASize 3072."),
    Rule("KEY-03", S.MEDIUM, "RSA key shorter than 3072 bits",
         "Replace it with ed25519 (or RSA >= 3072)."),
    Rule("KEY-05", S.MEDIUM, "same key on several accounts",
         "Give each account its own key so logins can be attributed."),
    Rule("KEY-06", S.LOW, "duplicate line in a key file", "Remove the duplicate line."),
    Rule("KEY-07", S.MEDIUM, "unparseable key line",
         "Fix or remove the line: sshd ignores it (tampering, or a key someone expects to work)."),
    Rule("KEY-09", S.MEDIUM, "unencrypted private key on a node",
         "Remove it from the node, or protect it with a passphrase (ssh-keygen -p)."),
    Rule("KEY-10", S.HIGH, "private key on one node opens another (lateral movement)",
         "Remove the private key from the node, or the public half from the target account."),
    Rule("OPT-02", S.MEDIUM, "command= key still allows forwarding",
         "Add restrict (or no-port-forwarding,no-agent-forwarding) to the line."),
    Rule("OPT-04", S.HIGH, "cert-authority line in a user's file",
         "Move CA trust to TrustedUserCAKeys with AuthorizedPrincipalsFile, or remove it."),
    Rule("OPT-09", S.INFO, "key in a non-default AuthorizedKeysFile",
         "Move it to ~/.ssh/authorized_keys (managed) or remove it."),
    Rule("CA-01", S.HIGH, "user CA trusted: any certificate naming the user gets in",
         "Set AuthorizedPrincipalsFile (or Command) so each account lists the principals it "
         "accepts, and declare the CA."),
    Rule("CA-02", S.MEDIUM, "AuthorizedKeysCommand: keys not enumerable from disk (unmanaged)",
         "Audit the command's source of keys separately; access apply does not manage it."),
    Rule("ACCT-01", S.CRITICAL, "UID 0 account other than root",
         "Remove the account or give it its own UID."),
    Rule("ACCT-02", S.HIGH, "account with an empty password field",
         "Lock it (usermod -p '*') or set a password."),
    Rule("ACCT-04", S.HIGH, "key file or a directory above it is writable by others",
         "chmod go-w the file, ~/.ssh and the home directory; chown them to the user."),
    Rule("PRIV-01", S.HIGH, "NOPASSWD ALL sudo for an SSH-reachable account",
         "Require a password (remove NOPASSWD) or narrow the command list."),
    Rule("PRIV-06", S.HIGH, "account in a root-equivalent group (docker, lxd, disk)",
         "Remove the account from the group, or treat its keys as root keys."),
    Rule("HOST-01", S.HIGH, "host key shared by several nodes (cloned image)",
         "Regenerate host keys on each clone (rm /etc/ssh/ssh_host_*; ssh-keygen -A), then "
         "update known_hosts."),
    Rule("HOST-02", S.MEDIUM, "weak host key",
         "Use an ed25519 host key; remove DSA and short RSA host keys."),
    Rule("USE-01", S.MEDIUM, "key not used recently",
         "Remove keys nobody uses; keep a declared break-glass key with a waiver."),
    Rule("K8S-01", S.HIGH, "access reaches cluster-admin",
         "Keep root on control planes to declared admins; move admin.conf off the node."),
    Rule("K8S-02", S.MEDIUM, "Kubernetes admin kubeconfig readable by others",
         "chown root:root and chmod 600 the kubeconfig."),
    Rule("CFG-15", S.HIGH, "sshd -T fails: invalid sshd configuration",
         "Fix the configuration (sshd -t) before sshd restarts and locks everyone out."),
    Rule("DRIFT-01", S.HIGH, "undeclared key",
         "Declare it in access.yaml or remove it (bastion access apply)."),
    Rule("DRIFT-02", S.MEDIUM, "declared key missing",
         "Run bastion access apply, or drop the grant from access.yaml."),
    Rule("DRIFT-03", S.CRITICAL, "revoked key still present",
         "Remove it now (bastion access apply) and find out how it came back."),
    Rule("DRIFT-04", S.HIGH, "sudo beyond what is declared",
         "Narrow the sudoers rule to the declared level, or declare it in access.yaml."),
    Rule("DRIFT-05", S.MEDIUM, "key options weaker than declared",
         "Run bastion access apply to restore the declared options."),
    Rule("DRIFT-06", S.HIGH, "expired key still present",
         "Remove it (bastion access apply) or renew its expiry in access.yaml."),
    Rule("DRIFT-07", S.LOW, "waiver expired",
         "Renew the waiver with a reason, or fix the finding."),
    Rule("DRIFT-08", S.MEDIUM, "key in a source access apply does not manage",
         "Move it to ~/.ssh/authorized_keys or remove it by hand."),
    Rule("COLL-01", S.HIGH, "host not audited",
         "Make the host reachable for the audit: it is unaudited, not clean."),
    Rule("COLL-02", S.MEDIUM, "partial audit (no root)",
         "Let the login user run sudo -n sh, so every account can be read."),
    Rule("COLL-03", S.MEDIUM, "key file is a symlink or unreadable as its user",
         "Replace the symlink with a regular file owned by the user."),
    Rule("COLL-04", S.LOW, "no login evidence on the host",
         "Keep sshd logs (journal or auth.log) so unused keys can be found."),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem on one host (or ``*`` for the fleet), with where it is and what to do."""

    id: str
    severity: Severity
    host: str
    message: str
    account: str | None = None
    fingerprint: str | None = None
    file: str | None = None
    line: int | None = None
    waived: str | None = None
    """The waiver's reason when a declared waiver covers this finding."""

    @property
    def rule(self) -> Rule:
        return CATALOGUE[self.id]

    @property
    def where(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    @property
    def key(self) -> str:
        """Stable across runs: what `--diff` and SARIF partialFingerprints match on."""
        parts = (self.id, self.host, self.account or "", self.fingerprint or "", self.where)
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def finding(
    rule_id: str,
    host: str,
    message: str,
    *,
    account: str | None = None,
    fingerprint: str | None = None,
    file: str | None = None,
    line: int | None = None,
    severity: Severity | None = None,
) -> Finding:
    """A finding of catalogue rule ``rule_id`` (its default severity unless given)."""
    rule = CATALOGUE[rule_id]
    return Finding(
        id=rule_id,
        severity=rule.severity if severity is None else severity,
        host=host,
        message=message,
        account=account,
        fingerprint=fingerprint,
        file=file,
        line=line,
    )


# The cluster access rules live beside the Kubernetes audit (bastion/audit/kube_catalogue.py).
def _kube_rules() -> dict[str, Rule]:
    from bastion.audit.kube_catalogue import KUBE_RULE_ROWS

    return _rules(*(Rule(i, Severity[s], t, r) for i, s, t, r in KUBE_RULE_ROWS))


CATALOGUE.update(_kube_rules())
