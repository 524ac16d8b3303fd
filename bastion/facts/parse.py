"""A host's facts from the probe's ``key<TAB>value`` lines: total, bounded, pure.

Whatever the node prints gives a `HostFacts` (unknown keys and malformed values are
dropped, each value is cut at `MAX_VALUE_CHARS`, lists at `MAX_ITEMS`); a probe that did not
reach its last line is marked incomplete rather than trusted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

MAX_VALUE_CHARS = 512
MAX_ITEMS = 64
_NUMBER = re.compile(r"[0-9]{1,18}")
_SECONDS = re.compile(r"([0-9]{1,12})(?:\.[0-9]{1,9})?")
_RUNTIME = re.compile(
    r"(containerd|crio|cri-o|docker)\b.*?\bv?([0-9]+\.[0-9]+(?:\.[0-9]+)?[0-9A-Za-z.~+-]*)", re.I
)
_KUBELET = re.compile(r"Kubernetes\s+(v[0-9]+\.[0-9]+\.[0-9]+\S*)")


@dataclass(frozen=True, slots=True)
class Disk:
    """One mounted file system, sizes in KiB (``df -P -k``)."""

    mount: str
    size_kb: int
    used_kb: int
    available_kb: int


@dataclass(frozen=True, slots=True)
class Address:
    """One interface address (``ip -o addr``): interface, family (inet, inet6), CIDR."""

    interface: str
    family: str
    address: str


@dataclass(slots=True)
class HostFacts:
    """What `bastion facts` reports of one host; None where the host did not say."""

    os_name: str | None = None
    os_id: str | None = None
    os_version: str | None = None
    hostname: str | None = None
    kernel: str | None = None
    arch: str | None = None
    cpus: int | None = None
    memory_kb: int | None = None
    uptime_s: int | None = None
    disks: list[Disk] = field(default_factory=list)
    addresses: list[Address] = field(default_factory=list)
    runtimes: list[str] = field(default_factory=list)
    """Container runtimes with their versions, e.g. ``containerd 1.6.20``."""
    kubelet: str | None = None
    """The kubelet's version, e.g. ``v1.33.1``."""
    complete: bool = False
    """Whether the probe ran to its end (a cut connection or a killed probe leaves it False)."""

    def as_json(self) -> dict[str, object]:
        """The facts as plain JSON data."""
        return asdict(self)


_TEXT_KEYS = ("os_name", "os_id", "os_version", "hostname", "kernel", "arch")


def parse_facts(output: str) -> HostFacts:
    """Parse the probe's output; never raises, whatever the bytes."""
    facts = HostFacts()
    for line in output.split("\n"):
        key, tab, raw = line.partition("\t")
        reader = _READERS.get(key)
        if tab and reader is not None:
            reader(facts, raw[:MAX_VALUE_CHARS].strip())
    return facts


def _text(key: str) -> Callable[[HostFacts, str], None]:
    def read(facts: HostFacts, value: str) -> None:
        setattr(facts, key, _unquoted(value) or None)

    return read


def _cpus(facts: HostFacts, value: str) -> None:
    facts.cpus = _number(value)


def _memory(facts: HostFacts, value: str) -> None:
    facts.memory_kb = _number(value)


def _uptime(facts: HostFacts, value: str) -> None:
    found = _SECONDS.fullmatch(value)
    facts.uptime_s = int(found.group(1)) if found else None


def _add_disk(facts: HostFacts, value: str) -> None:
    if len(facts.disks) < MAX_ITEMS and (disk := _disk(value)) is not None:
        facts.disks.append(disk)


def _add_address(facts: HostFacts, value: str) -> None:
    if len(facts.addresses) < MAX_ITEMS and (address := _address(value)) is not None:
        facts.addresses.append(address)


def _add_runtime(facts: HostFacts, value: str) -> None:
    if len(facts.runtimes) < MAX_ITEMS and (found := _RUNTIME.search(value)):
        facts.runtimes.append(f"{found.group(1).lower()} {found.group(2)}")


def _kubelet(facts: HostFacts, value: str) -> None:
    found = _KUBELET.search(value)
    facts.kubelet = found.group(1) if found else None


def _end(facts: HostFacts, value: str) -> None:
    facts.complete = value == "facts"


_READERS: dict[str, Callable[[HostFacts, str], None]] = {
    **{key: _text(key) for key in _TEXT_KEYS},
    "cpus": _cpus,
    "memory_kb": _memory,
    "uptime_s": _uptime,
    "disk": _add_disk,
    "address": _add_address,
    "runtime": _add_runtime,
    "kubelet": _kubelet,
    "end": _end,
}


def _unquoted(value: str) -> str:
    """An os-release value without its shell quotes (``"Debian GNU/Linux 12"``)."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _number(value: str) -> int | None:
    return int(value) if _NUMBER.fullmatch(value) else None


def _disk(value: str) -> Disk | None:
    parts = value.split(" ", 3)
    if len(parts) != 4:
        return None
    size, used, available = (_number(part) for part in parts[:3])
    if size is None or used is None or available is None:
        return None
    return Disk(parts[3], size, used, available)


def _address(value: str) -> Address | None:
    parts = value.split()
    if len(parts) != 3:
        return None
    return Address(*parts)
