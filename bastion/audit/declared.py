"""The declared access list (``access.yaml``): who may hold which key on which account where.

```yaml
version: 1
identities:
  alice:
    kind: person                 # or service
    keys:
      - key: ssh-ed25519 AAAA... alice@laptop   # the public key (apply can add it)
        expires: 2027-01-31                       # optional
      - fingerprint: SHA256:...                   # or only its fingerprint
roles:
  admins: [alice]
grants:
  - to: admins                   # an identity or a role
    hosts: all                   # all, an inventory group, or host patterns (node[1-3])
    account: root
    options: 'from="10.0.0.0/8"' # optional: options the key line must carry
    sudo: all                    # optional: the most sudo may give the account (none/some/all)
revoked: [SHA256:...]
waivers:
  - {id: ACC-04, hosts: all, until: 2027-01-01, reason: "AllowGroups rollout in Q1"}
severities: {ACC-04: low}
```

Every problem is an `InputError` naming the file and line.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bastion.audit.authorized_keys import KeyLineError, KeyOptions, parse_key_line
from bastion.audit.findings import CATALOGUE, Severity
from bastion.errors import InputError
from bastion.located_yaml import load_yaml_nodes

DEFAULT_ACCESS_FILE = "access.yaml"
SUDO_LEVELS = ("none", "some", "all")
"""Declared sudo levels, least first (``all`` means every command as root)."""


class AccessListError(InputError):
    """The access list is unreadable or invalid."""


@dataclass(frozen=True, slots=True)
class DeclaredKey:
    identity: str
    fingerprint: str
    public_key: str | None = None
    """``TYPE BLOB [comment]``; None when only the fingerprint is declared."""
    expires: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    members: tuple[str, ...]
    """Identity names (roles already expanded)."""
    hosts: str
    account: str
    options: KeyOptions = field(default_factory=KeyOptions)
    line: int = 0
    sudo: str | None = None
    """The most sudo may give the account: none, some or all (None: not checked)."""


@dataclass(frozen=True, slots=True)
class Waiver:
    id: str
    hosts: str
    account: str | None
    until: dt.date
    reason: str


@dataclass(frozen=True, slots=True)
class AccessList:
    path: Path
    keys: dict[str, tuple[DeclaredKey, ...]]
    """Identity name -> its keys."""
    grants: tuple[Grant, ...]
    revoked: frozenset[str]
    waivers: tuple[Waiver, ...] = ()
    severities: dict[str, Severity] = field(default_factory=dict)

    def identity_of(self) -> dict[str, str]:
        """Fingerprint -> identity name."""
        return {k.fingerprint: name for name, keys in self.keys.items() for k in keys}


def load_access_list(path: Path) -> AccessList:
    """Read and validate ``path``."""
    root = load_yaml_nodes(
        path, AccessListError, what="the access list", missing="access list not found"
    )
    return _Reader(path).read(root)


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: yaml.Node | None, message: str) -> AccessListError:
        line = node.start_mark.line + 1 if node is not None else None
        return AccessListError(message, source=self.path, line=line)

    def mapping(self, node: yaml.Node | None, what: str, allowed: set[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        out: dict[str, yaml.Node] = {}
        for key, value in node.value:
            name = self.scalar(key, f"a key in {what}")
            if allowed and name not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(key, f"unknown key {name!r} in {what} (known: {known})")
            if name in out:
                raise self.fail(key, f"duplicate key {name!r} in {what}")
            out[name] = value
        return out

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list")
        return list(node.value)

    def scalar(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
            raise self.fail(node, f"{what} must be a non-empty string")
        return str(node.value)

    def date(self, node: yaml.Node, what: str) -> dt.date:
        text = self.scalar(node, what)
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise self.fail(node, f"{what} must be a date YYYY-MM-DD, not {text!r}") from None

    def read(self, root: yaml.Node | None) -> AccessList:
        top = self.mapping(
            root,
            "the access list",
            # clusters: read by bastion.audit.kube_audit.declared_cluster_admins
            {
                "version",
                "identities",
                "roles",
                "grants",
                "revoked",
                "waivers",
                "severities",
                "clusters",
            },
        )
        if "version" in top and self.scalar(top["version"], "version") != "1":
            raise self.fail(top["version"], "version must be 1")
        keys = self.identities(top.get("identities"))
        roles = self.roles(top.get("roles"), keys)
        grants = tuple(
            self.grant(node, keys, roles)
            for node in (self.sequence(top["grants"], "grants") if "grants" in top else [])
        )
        revoked = frozenset(
            self.fingerprint(n, "a revoked fingerprint")
            for n in (self.sequence(top["revoked"], "revoked") if "revoked" in top else [])
        )
        waivers = tuple(
            self.waiver(n)
            for n in (self.sequence(top["waivers"], "waivers") if "waivers" in top else [])
        )
        severities: dict[str, Severity] = {}
        if "severities" in top:
            for rule, value in self.mapping(top["severities"], "severities", set()).items():
                if rule not in CATALOGUE:
                    raise self.fail(value, f"unknown finding ID {rule!r}")
                try:
                    severities[rule] = Severity.parse(self.scalar(value, rule))
                except ValueError as exc:
                    raise self.fail(value, str(exc)) from None
        return AccessList(self.path, keys, grants, revoked, waivers, severities)

    def fingerprint(self, node: yaml.Node, what: str) -> str:
        text = self.scalar(node, what)
        if not text.startswith("SHA256:"):
            raise self.fail(node, f"{what} must look like SHA256:..., not {text[:20]!r}")
        return text

    def identities(self, node: yaml.Node | None) -> dict[str, tuple[DeclaredKey, ...]]:
        if node is None:
            return {}
        out: dict[str, tuple[DeclaredKey, ...]] = {}
        for name, body in self.mapping(node, "identities", set()).items():
            fields = self.mapping(body, f"identity {name}", {"kind", "keys", "owner"})
            keys = []
            for item in self.sequence(fields.get("keys", body), f"keys of {name}"):
                entry = self.mapping(item, f"a key of {name}", {"key", "fingerprint", "expires"})
                public = self.scalar(entry["key"], "key") if "key" in entry else None
                if public is not None:
                    try:
                        fingerprint = parse_key_line(public).fingerprint
                    except KeyLineError as exc:
                        raise self.fail(entry["key"], f"not a public key: {exc}") from None
                elif "fingerprint" in entry:
                    fingerprint = self.fingerprint(entry["fingerprint"], "fingerprint")
                else:
                    raise self.fail(item, f"a key of {name} needs key: or fingerprint:")
                expires = self.date(entry["expires"], "expires") if "expires" in entry else None
                keys.append(DeclaredKey(name, fingerprint, public, expires))
            out[name] = tuple(keys)
        return out

    def roles(
        self, node: yaml.Node | None, identities: dict[str, tuple[DeclaredKey, ...]]
    ) -> dict[str, tuple[str, ...]]:
        if node is None:
            return {}
        out = {}
        for name, body in self.mapping(node, "roles", set()).items():
            members = []
            for item in self.sequence(body, f"role {name}"):
                member = self.scalar(item, f"a member of role {name}")
                if member not in identities:
                    raise self.fail(item, f"role {name}: unknown identity {member!r}")
                members.append(member)
            out[name] = tuple(members)
        return out

    def grant(
        self,
        node: yaml.Node,
        identities: dict[str, tuple[DeclaredKey, ...]],
        roles: dict[str, tuple[str, ...]],
    ) -> Grant:
        fields = self.mapping(node, "a grant", {"to", "hosts", "account", "options", "sudo"})
        for required in ("to", "hosts", "account"):
            if required not in fields:
                raise self.fail(node, f"a grant needs {required}:")
        to = self.scalar(fields["to"], "to")
        if to in identities:
            members: tuple[str, ...] = (to,)
        elif to in roles:
            members = roles[to]
        else:
            raise self.fail(fields["to"], f"grant to unknown identity or role {to!r}")
        options = KeyOptions()
        if "options" in fields:
            text = self.scalar(fields["options"], "options")
            try:
                # Parse them as sshd would, in front of a placeholder key.
                options = parse_key_line(f"{text} {_PLACEHOLDER_KEY}").options
            except KeyLineError as exc:
                raise self.fail(fields["options"], f"invalid options: {exc}") from None
        sudo = self.scalar(fields["sudo"], "sudo") if "sudo" in fields else None
        if sudo is not None and sudo not in SUDO_LEVELS:
            raise self.fail(fields["sudo"], f"sudo must be one of {', '.join(SUDO_LEVELS)}")
        return Grant(
            members,
            self.scalar(fields["hosts"], "hosts"),
            self.scalar(fields["account"], "account"),
            options,
            node.start_mark.line + 1,
            sudo,
        )

    def waiver(self, node: yaml.Node) -> Waiver:
        fields = self.mapping(node, "a waiver", {"id", "hosts", "account", "until", "reason"})
        for required in ("id", "until", "reason"):
            if required not in fields:
                raise self.fail(node, f"a waiver needs {required}:")
        rule = self.scalar(fields["id"], "id")
        if rule not in CATALOGUE:
            raise self.fail(fields["id"], f"unknown finding ID {rule!r}")
        return Waiver(
            rule,
            self.scalar(fields["hosts"], "hosts") if "hosts" in fields else "all",
            self.scalar(fields["account"], "account") if "account" in fields else None,
            self.date(fields["until"], "until"),
            self.scalar(fields["reason"], "reason"),
        )


# An ed25519 public key of 32 zero bytes: only used to parse a grant's options.
_PLACEHOLDER_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
)
