"""The template context of one host in one play: variables by precedence, host, hosts.

Precedence, lowest first: the play's ``vars`` < the composition's ``vars`` < the host's
inventory ``vars`` < registered results (this host's, by name) < ``-e`` on the command line.
Variables may refer to each other (``"{{ other }}"``); each is rendered once, in dependency
order, and a cycle is an error naming the file and line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import jinja2.meta

from bastion.models import Host
from bastion.playbook.errors import PlaybookError
from bastion.playbook.model import Play, Text
from bastion.playbook.template import PLAIN_ENV, render_value

Sourced = tuple[object, Path]
"""A variable's value as written, and the file it was written in (for error lines)."""


def host_view(host: Host) -> dict[str, object]:
    """``host`` in templates: name, address, labels, vars, groups."""
    return {
        "name": host.name,
        "address": host.address,
        "labels": dict(host.labels),
        "vars": dict(host.vars),
        "groups": list(host.groups),
    }


def layered_vars(
    play: Play, host: Host | None, extra_vars: Mapping[str, object]
) -> dict[str, Sourced]:
    """Every variable of ``host`` in ``play``, the highest layer winning (before rendering)."""
    layers: dict[str, Sourced] = {k: (v, play.path) for k, v in play.vars.items()}
    layers.update({k: (v, play.path) for k, v in play.composition_vars.items()})
    if host is not None:
        layers.update({k: (v, play.path) for k, v in host.vars.items()})
    layers.update({k: (v, play.path) for k, v in extra_vars.items()})
    return layers


def resolve_vars(layered: Mapping[str, Sourced], fixed: Mapping[str, object]) -> dict[str, object]:
    """Render every variable with the variables it refers to rendered first."""
    resolved: dict[str, object] = {}

    def need(name: str, chain: tuple[str, ...]) -> None:
        if name in resolved:
            return
        value, path = layered[name]
        if name in chain:
            loop = " -> ".join((*chain[chain.index(name) :], name))
            raise PlaybookError(
                f"variables refer to each other in a loop: {loop}",
                source=path,
                line=_first_line(value),
            )
        for other in sorted(_references(value) & set(layered)):
            need(other, (*chain, name))
        context = {**fixed, **resolved}
        resolved[name] = render_value(value, context, path)

    for name in layered:
        need(name, ())
    return resolved


def _references(value: object) -> set[str]:
    if isinstance(value, Text):
        try:
            return set(jinja2.meta.find_undeclared_variables(PLAIN_ENV.parse(value.value)))
        except jinja2.TemplateSyntaxError:
            return set()
    if isinstance(value, dict):
        return set().union(*(_references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    return set()


def _first_line(value: object) -> int | None:
    if isinstance(value, Text):
        return value.line
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            line = _first_line(item)
            if line is not None:
                return line
    return None
