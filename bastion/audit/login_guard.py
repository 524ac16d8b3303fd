"""Would bastion still log in? The lockout guard's judgement of one key line (pure).

`access apply` refuses a host when the login account's file would no longer hold a line of
bastion's own key that sshd accepts for bastion: not only a removed line, but any option that
stops bastion's own login (sshd(8) AUTHORIZED_KEYS FILE FORMAT):

- ``from=`` not matching the address bastion connects from (as the node saw it);
- ``command=`` (every bastion command would run that command instead);
- ``restrict`` without ``pty`` when bastion needs a pty (mosh), or without
  ``port-forwarding`` when the host is a jump host for others;
- ``no-pty`` when a pty is needed; ``no-port-forwarding`` or ``permitopen=`` on a jump host;
- ``expiry-time=`` already past on the host's clock;
- ``principals=`` or ``cert-authority`` (the line then trusts certificates, not the key).
"""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass

from bastion.audit.access import expiry_passed
from bastion.audit.authorized_keys import KeyOptions


@dataclass(frozen=True, slots=True)
class LoginNeeds:
    """What bastion's own login on a host needs besides running a command."""

    client_addr: str = ""
    """The address the node saw bastion connect from (``SSH_CONNECTION``); "" when unknown."""
    now: int = 0
    """The host's clock (epoch seconds), for ``expiry-time=``; 0 when unknown."""
    pty: bool = False
    """A terminal is requested (mosh starts its server with ``ssh -tt``)."""
    port_forwarding: bool = False
    """Other hosts are reached through this one (a jump host)."""


def login_blockers(options: KeyOptions, needs: LoginNeeds) -> list[str]:
    """Why a line with ``options`` would not let bastion in (empty: it would)."""
    out: list[str] = []
    if options.value("from") is not None and not from_allows(options.source, needs.client_addr):
        seen_from = needs.client_addr or "an unknown address"
        out.append(f'from="{options.value("from")}" does not match {seen_from}')
    if options.command is not None:
        out.append(f'command="{options.command}" replaces every command bastion runs')
    if options.cert_authority or options.value("principals") is not None:
        out.append("cert-authority/principals= trust certificates, not this key")
    expiry = options.value("expiry-time")
    if expiry is not None and (not needs.now or expiry_passed(expiry, needs.now)):
        out.append(f"expiry-time={expiry} is past (or the host's clock is unknown)")
    if needs.pty and not _allowed(options, "pty"):
        out.append("no pty (restrict or no-pty), and mosh needs one")
    if needs.port_forwarding and (not options.port_forwarding or options.all_values("permitopen")):
        out.append("no port forwarding, and other hosts are reached through this one")
    return out


def _allowed(options: KeyOptions, what: str) -> bool:
    """Whether a ``restrict``-able permission stays on (``pty`` re-enables after restrict)."""
    if what in options.flags:
        return True
    return not (options.restrict or f"no-{what}" in options.flags)


def from_allows(patterns: list[str], address: str) -> bool:
    """sshd's ``from=`` test of ``address`` (match.c ``match_host_and_ip``, by address only).

    Negated patterns (``!``) refuse outright; a CIDR (``10.0.0.0/8``) or a wildcard pattern
    (``192.168.*``) must match positively. Host names are not resolved here: a line that only
    names hosts counts as not matching (the guard errs on the side of refusing).
    """
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    matched = False
    for raw in patterns:
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        if "/" in pattern:
            try:
                hit = ip in ipaddress.ip_network(pattern, strict=False)
            except ValueError:
                return False  # sshd refuses the whole line on a malformed CIDR
        else:
            # sshd's wildcards are * and ? only: a "[" is a plain character there.
            hit = fnmatch.fnmatchcase(address.lower(), pattern.lower().replace("[", "[[]"))
        if hit and negated:
            return False
        matched = matched or hit
    return matched
