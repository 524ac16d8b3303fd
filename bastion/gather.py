"""Folding hosts whose output is identical, so 100 hosts saying the same thing read as one."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bastion.hostset import fold
from bastion.models import HostResult


@dataclass(frozen=True, slots=True)
class OutputGroup:
    """One distinct output and the hosts that produced it, in first-seen order."""

    hosts: tuple[str, ...]
    text: str

    @property
    def folded(self) -> str:
        return fold(self.hosts)


def group_by_output(
    results: Iterable[HostResult], text_of: Callable[[HostResult], str]
) -> list[OutputGroup]:
    """Group results whose ``text_of`` is identical; largest group first, ties by first seen."""
    members: dict[str, list[str]] = {}
    for result in results:
        members.setdefault(text_of(result), []).append(result.host)
    groups = [OutputGroup(tuple(hosts), text) for text, hosts in members.items()]
    order = {id(group): index for index, group in enumerate(groups)}
    return sorted(groups, key=lambda g: (-len(g.hosts), order[id(g)]))
