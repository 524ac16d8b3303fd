"""Host selections in playbooks (``hosts``, ``on``, ``--limit``), in ``bastion run``'s grammar."""

from __future__ import annotations

import shlex
from pathlib import Path

from bastion.playbook.errors import PlaybookError
from bastion.select import Selection

_WHERE_OPTIONS = {
    "-g": "groups",
    "--group": "groups",
    "-H": "hosts",
    "--hosts": "hosts",
    "-l": "selector",
    "--selector": "selector",
    "-x": "exclude",
    "--exclude": "exclude",
}


def parse_where(text: str, *, source: str | Path, line: int | None) -> Selection:
    """A selection as typed on the command line: ``--all``, ``-g workers -l role=x -x node3``.

    ``-x`` alone means every host but those.
    """

    def bad(why: str) -> PlaybookError:
        return PlaybookError(f"bad host selection {text!r}: {why}", source=source, line=line)

    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise bad(str(exc)) from None
    found: dict[str, list[str]] = {"groups": [], "hosts": [], "selector": [], "exclude": []}
    all_hosts = False
    index = 0
    while index < len(words):
        word = words[index]
        option, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        index += 1
        if option in ("--all", "-a") and not eq:
            all_hosts = True
            continue
        if option not in _WHERE_OPTIONS:
            raise bad(
                f"unknown option {word!r} (use --all, -g GROUP, -H HOSTS, -l SELECTOR, -x HOSTS)"
            )
        if not eq:
            if index >= len(words):
                raise bad(f"{word} needs a value")
            inline = words[index]
            index += 1
        found[_WHERE_OPTIONS[option]].append(inline)
    if len(found["selector"]) > 1:
        raise bad("give -l once (commas combine requirements)")
    chosen = all_hosts or found["groups"] or found["hosts"] or found["selector"]
    if found["exclude"] and not chosen:
        all_hosts = True
    selection = Selection(
        all_hosts,
        tuple(found["groups"]),
        tuple(found["hosts"]),
        found["selector"][0] if found["selector"] else None,
        tuple(found["exclude"]),
    )
    if selection.is_empty():
        raise bad("choose hosts with --all, -g, -H or -l")
    return selection
