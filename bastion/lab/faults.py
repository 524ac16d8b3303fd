"""Network faults on a lab node's loopback address, with iptables: loss, blackhole, TCP reset.

Every rule this module adds carries the comment ``bastion-lab:<lab hash>:<node>``, where the
hash names the lab directory, so clearing one node, or a whole lab at `lab down`, removes
exactly the rules that lab added and nothing else (other labs' and the system's rules stay).

Rules go in the INPUT chain only. On loopback every packet crosses OUTPUT then INPUT once, so
matching the node's address as destination (client to node) and as source (node to client)
in INPUT alone hits each packet once: ``--loss 30`` loses 30% of packets in each direction.
A node has at most one fault at a time; a new one replaces the old.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from bastion.errors import EnvironmentProblem, UsageError

CHAIN = "INPUT"
COMMENT_PREFIX = "bastion-lab"
IPTABLES_TIMEOUT_S = 30.0


class FaultKind(StrEnum):
    """What happens to a node's packets."""

    LOSS = "loss"
    """A random share of packets is dropped (``-m statistic``)."""
    BLACKHOLE = "blackhole"
    """Every packet is dropped: connections hang, new ones time out."""
    RESET = "reset"
    """Every TCP packet is answered with a reset: sessions die at once, connects are refused."""


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault for one node's address; ``port`` narrows it to that TCP port."""

    kind: FaultKind
    loss_percent: float = 0.0
    port: int | None = None

    def describe(self) -> str:
        """A short phrase for the CLI: ``loss 30% on tcp/22``."""
        what = f"loss {self.loss_percent:g}%" if self.kind is FaultKind.LOSS else str(self.kind)
        scope = f"tcp/{self.port}" if self.port is not None else "all traffic"
        return f"{what} on {scope}"


def lab_tag(lab_dir: Path) -> str:
    """The comment prefix of every rule the lab in ``lab_dir`` adds."""
    digest = hashlib.sha256(str(lab_dir.resolve()).encode()).hexdigest()[:12]
    return f"{COMMENT_PREFIX}:{digest}"


def node_tag(lab_dir: Path, node: str) -> str:
    """The comment of the rules for one node of one lab."""
    return f"{lab_tag(lab_dir)}:{node}"


def fault_rules(address: str, fault: Fault, tag: str) -> list[list[str]]:
    """The iptables rule specifications (after ``-A CHAIN``) that inject ``fault``; pure."""
    _check_loopback(address)
    if fault.kind is FaultKind.LOSS and not 0 < fault.loss_percent <= 100:
        raise UsageError(
            f"must be more than 0 and at most 100, got {fault.loss_percent:g}", source="--loss"
        )
    if fault.kind is FaultKind.RESET:
        target = ["-j", "REJECT", "--reject-with", "tcp-reset"]
    else:
        target = ["-j", "DROP"]
    if fault.kind is FaultKind.LOSS and fault.loss_percent < 100:
        probability = f"{fault.loss_percent / 100:.4f}"
        match = ["-m", "statistic", "--mode", "random", "--probability", probability]
    else:
        match = []
    tcp = fault.kind is FaultKind.RESET or fault.port is not None
    rules = []
    for side, port_side in (("-d", "--dport"), ("-s", "--sport")):
        rule = [side, f"{address}/32"]
        if tcp:
            rule += ["-p", "tcp"]
        if fault.port is not None:
            rule += [port_side, str(fault.port)]
        if fault.kind is FaultKind.RESET:
            # Let resets through: the reset REJECT sends back crosses INPUT too, and
            # rejecting it as well would turn the fault into a silent blackhole.
            rule += ["!", "--tcp-flags", "RST", "RST"]
        rule += [*match, "-m", "comment", "--comment", tag, *target]
        rules.append(rule)
    return rules


def apply_fault(lab_dir: Path, node: str, address: str, fault: Fault) -> None:
    """Replace the node's fault with ``fault`` (root only)."""
    rules = fault_rules(address, fault, node_tag(lab_dir, node))
    iptables = _iptables()
    clear_rules(node_tag(lab_dir, node), iptables)
    for rule in rules:
        _call(iptables, ["-I", CHAIN, *rule])


def clear_fault(lab_dir: Path, node: str) -> int:
    """Remove the node's fault; returns how many rules were removed (root only)."""
    return clear_rules(node_tag(lab_dir, node), _iptables())


def clear_lab_faults(lab_dir: Path) -> int:
    """Remove every rule the lab added; nothing to do (0) without root or iptables."""
    iptables = shutil.which("iptables")
    if iptables is None or os.geteuid() != 0:
        return 0
    return clear_rules(lab_tag(lab_dir) + ":", iptables)


def clear_rules(tag_prefix: str, iptables: str) -> int:
    """Delete every rule of the chain whose comment starts with ``tag_prefix``."""
    removed = 0
    for words in _rules_tagged(tag_prefix, iptables):
        _call(iptables, ["-D", *words[1:]])
        removed += 1
    return removed


def active_faults(lab_dir: Path, node: str) -> list[list[str]]:
    """The node's rules as ``iptables -S`` prints them (without ``-A``), for tests and status."""
    return [words[2:] for words in _rules_tagged(node_tag(lab_dir, node), _iptables())]


def _rules_tagged(tag_prefix: str, iptables: str) -> list[list[str]]:
    listing = _call(iptables, ["-S", CHAIN])
    found = []
    for line in listing.splitlines():
        words = shlex.split(line)
        if words[:2] != ["-A", CHAIN] or "--comment" not in words:
            continue
        comment = words[words.index("--comment") + 1]
        # A node tag is matched whole, so node1's clear never touches node10's rules.
        if comment == tag_prefix or (tag_prefix.endswith(":") and comment.startswith(tag_prefix)):
            found.append(words)
    return found


def _iptables() -> str:
    if os.geteuid() != 0:
        raise EnvironmentProblem("lab faults need root (they are iptables rules)")
    iptables = shutil.which("iptables")
    if iptables is None:
        raise EnvironmentProblem("iptables not found: install it (apt-get install iptables)")
    return iptables


def _call(iptables: str, args: list[str]) -> str:
    # -w: wait for the xtables lock rather than fail when another iptables runs at once.
    done = subprocess.run(
        [iptables, "-w", *args],
        capture_output=True,
        text=True,
        timeout=IPTABLES_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
        raise EnvironmentProblem(f"iptables {' '.join(args[:2])}: {message}")
    return done.stdout


def _check_loopback(address: str) -> None:
    # Faults are for the lab's own loopback addresses, never a real host's traffic.
    if not ipaddress.ip_address(address).is_loopback:
        raise UsageError(f"faults apply to loopback addresses only, not {address}")
