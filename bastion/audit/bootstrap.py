"""``audit --bootstrap``: draft an access list from what is observed, for a human to edit.

One placeholder identity per fingerprint, named after the key's comment; one grant per
(identity, account, options), over the hosts where the key was seen. Auditing against the
draft right away finds no drift.
"""

from __future__ import annotations

import re
from collections import defaultdict

import yaml

from bastion.audit.access import AccessRow, CredentialKind
from bastion.audit.drift import fold_hosts
from bastion.audit.report import AuditReport
from bastion.inventory import Inventory

_UNSAFE = re.compile(r"[^A-Za-z0-9_.@-]+")


def identity_names(rows: list[AccessRow]) -> dict[str, str]:
    """Fingerprint -> a unique identity name derived from the comment."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for row in rows:
        fp = row.fingerprint
        if fp is None or fp in names:
            continue
        base = _UNSAFE.sub("-", row.comment).strip("-") or f"key-{fp[7:15]}"
        name, counter = base, 2
        while name in used:
            name, counter = f"{base}-{counter}", counter + 1
        used.add(name)
        names[fp] = name
    return names


def bootstrap_access_list(report: AuditReport, inventory: Inventory) -> str:
    """The draft access list's YAML text."""
    rows = [
        r for r in report.rows
        if r.kind is not CredentialKind.PASSWORD and r.key is not None
    ]  # fmt: skip
    names = identity_names(rows)
    identities: dict[str, dict[str, object]] = {}
    placements: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for row in rows:
        assert row.key is not None and row.fingerprint is not None
        name = names[row.fingerprint]
        identities.setdefault(name, {"keys": [{"key": row.key.public_key + _comment(row)}]})
        options = row.key.options.render()
        # uid 0 needs no sudo; for the others, declare what they have today.
        sudo = "" if row.privilege in ("root", "none") else row.privilege
        slot = (name, row.account, options, sudo)
        if row.host not in placements[slot]:
            placements[slot].append(row.host)
    grants = []
    for (name, account, options, sudo), hosts in placements.items():
        grant: dict[str, str] = {"to": name, "hosts": fold_hosts(hosts, inventory)}
        grant["account"] = account
        if options:
            grant["options"] = options
        if sudo:
            grant["sudo"] = sudo
        grants.append(grant)
    header = (
        "# Drafted by `bastion audit --bootstrap` from what the hosts hold: one identity per\n"
        "# key, named after its comment. Rename identities, group them in roles, delete what\n"
        "# nobody should have, then `bastion access apply --check`.\n"
    )
    body = yaml.safe_dump(
        {"version": 1, "identities": identities, "grants": grants},
        sort_keys=False,
        width=200,
        default_flow_style=False,
    )
    return header + body


def _comment(row: AccessRow) -> str:
    return f" {row.comment}" if row.comment else ""
