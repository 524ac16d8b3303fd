"""Per-host remote paths: ``/etc/app/{host}.conf``, ``{dc}/{role}`` from inventory vars.

Placeholders are ``{host}``, ``{address}``, ``{port}``, ``{user}`` and the names of the host's
``vars`` (then the inventory's top-level ``vars``); ``{{`` and ``}}`` are literal braces.
Every placeholder is checked on every selected host before anything connects, so a typo is
one usage error naming the placeholder, not a run that half happened.

A rendered path is never read by a shell: it goes to SFTP as data, and wherever it appears in a
helper command it is quoted (`shlex.quote`). A value that would make a path ambiguous (a newline
or NUL) is refused.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping, Sequence
from string import Formatter

from bastion.errors import UsageError
from bastion.models import Host

BUILTIN_FIELDS = ("host", "address", "port", "user")
_FORBIDDEN = ("\n", "\0")


def placeholders(template: str, *, source: str) -> list[str]:
    """The placeholder names in ``template``; refuses ``{}``, ``{0}``, ``{a.b}`` and ``{a:>3}``."""
    try:
        parsed = list(Formatter().parse(template))
    except ValueError as exc:
        raise UsageError(
            f"bad template {template!r}: {exc} (write {{{{ for a brace)", source=source
        ) from exc
    names: list[str] = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raw = (
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
            raise UsageError(
                f"bad placeholder {raw} in {template!r}: use a plain name such as {{host}} "
                "or an inventory var",
                source=source,
            )
        names.append(name)
    return names


def render(template: str, host: Host, inventory_vars: Mapping[str, object], *, source: str) -> str:
    """``template`` with this host's values in place of its placeholders."""
    values = {
        name: _value(name, host, inventory_vars, template, source)
        for name in placeholders(template, source=source)
    }
    rendered = template.format_map(values)
    for char in _FORBIDDEN:
        if char in rendered:
            raise UsageError(
                f"host {host.name}: {template!r} renders to a path with a newline or NUL",
                source=source,
            )
    return rendered


def render_all(
    template: str, hosts: Sequence[Host], inventory_vars: Mapping[str, object], *, source: str
) -> dict[str, str]:
    """The rendered path of every host, by host name; the first bad host is a `UsageError`."""
    return {host.name: render(template, host, inventory_vars, source=source) for host in hosts}


def _value(
    name: str, host: Host, inventory_vars: Mapping[str, object], template: str, source: str
) -> str:
    if name == "host":
        return host.name
    if name == "address":
        return host.address
    if name == "port":
        return str(host.port)
    if name == "user":
        return host.user or getpass.getuser()
    if name in host.vars:
        value = host.vars[name]
    elif name in inventory_vars:
        value = inventory_vars[name]
    else:
        known = ", ".join([*BUILTIN_FIELDS, *sorted({*host.vars, *inventory_vars})])
        raise UsageError(
            f"unknown placeholder {{{name}}} in {template!r} for host {host.name} (known: {known})",
            source=source,
        )
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UsageError(
            f"placeholder {{{name}}} of host {host.name} is a {type(value).__name__}; "
            "only text and numbers can go into a path",
            source=source,
        )
    return str(value)
