"""``bastion man``: the manual page, generated from the same declarations as ``--help``.

Every command and subcommand, its usage, its help and each option (names, value, help,
environment variable) are taken from the click command tree typer builds, so the page can
never disagree with the program. ``bastion man | man -l -`` reads it; packagers can save it
as ``bastion.1``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

EXIT_STATUS = [
    ("0", "every host succeeded"),
    ("1", "a command failed or timed out on some host"),
    ("2", "bad usage or input (nothing was run)"),
    ("3", "some host was unreachable: connect, authentication or host-key failure"),
    ("130", "interrupted (Ctrl-C); 143 for SIGTERM"),
]


def man_command() -> None:
    """Print the manual page (roff); read it with: bastion man | man -l -"""
    from typer.main import get_command

    from bastion.cli.app import app, register_commands

    register_commands([])
    sys.stdout.write(render_manpage(get_command(app)))


def render_manpage(root: Any) -> str:
    """The roff source of bastion(1) for the click group ``root``."""
    from bastion.version import version_string

    lines = [
        f'.TH BASTION 1 "" "bastion {_escape(version_string())}" "bastion manual"',
        ".SH NAME",
        r"bastion \- run commands on many hosts at once over SSH, from one inventory",
        ".SH SYNOPSIS",
        r".B bastion",
        r"\fICOMMAND\fR [\fIOPTIONS\fR] [\fIARGUMENTS\fR]",
        ".SH DESCRIPTION",
        _paragraph(root.help or ""),
        ".SH COMMANDS",
    ]
    environment: dict[str, str] = {}
    for path, command in _commands(root, ["bastion"]):
        lines.append(f'.SS "{_escape(" ".join(path))}"')
        lines.append(_paragraph(command.help or ""))
        context = _context(command)
        for param in command.params:
            record = param.get_help_record(context) if param.param_type_name == "option" else None
            if record is None:
                continue
            lines += [".TP", rf"\fB{_escape(record[0])}\fR", _paragraph(record[1])]
            envvar = getattr(param, "envvar", None)
            if isinstance(envvar, str):
                environment.setdefault(envvar, " ".join(path[1:]) + " " + param.opts[0])
    lines.append(".SH ENVIRONMENT")
    for name, where in sorted(environment.items()):
        lines += [".TP", rf"\fB{_escape(name)}\fR", _escape(f"the default of {where}")]
    lines.append(".SH EXIT STATUS")
    for code, meaning in EXIT_STATUS:
        lines += [".TP", rf"\fB{code}\fR", _escape(meaning)]
    lines += [
        ".SH FILES",
        ".TP",
        r"\fI~/.config/bastion/config.toml\fR",
        "option defaults (below environment variables and flags)",
        ".TP",
        r"\fI~/.local/state/bastion/history.jsonl\fR",
        "the history of runs",
        ".SH SEE ALSO",
        r"\fBssh\fR(1), \fBssh_config\fR(5), \fBpdsh\fR(1), \fBclush\fR(1), \fBnodeset\fR(1)",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def _commands(group: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    for name in sorted(getattr(group, "commands", {})):
        command = group.commands[name]
        if getattr(command, "hidden", False):
            continue
        if hasattr(command, "commands"):
            yield from _commands(command, [*path, name])
        else:
            yield [*path, name], command


def _context(command: Any) -> Any:
    from typer._click import Context

    return Context(command)


def _paragraph(text: str) -> str:
    """Help text as roff: blank lines become paragraph breaks."""
    out = []
    for block in text.strip().split("\n\n"):
        if block.strip():
            out.append(_escape(" ".join(block.split())))
    return "\n.PP\n".join(out)


def _escape(text: str) -> str:
    escaped = text.replace("\\", r"\e").replace("-", r"\-")
    return rf"\&{escaped}" if escaped.startswith((".", "'")) else escaped
