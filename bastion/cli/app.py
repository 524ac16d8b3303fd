"""The typer application: the root group, ``--version``, and the commands, registered lazily.

Imported by `bastion.cli.main` once Ctrl-C is already handled: importing typer is most of the
start-up time.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from bastion.cli.help_format import EXAMPLES, SHORT_HELP


class Interrupted(Exception):
    """Ctrl-C while typer parses or a command runs outside `run_stoppable` (main.py says it)."""


class BastionGroup(TyperGroup):
    """The root group: every subcommand (and sub-group) is invoked through it.

    typer turns a KeyboardInterrupt into a silent exit 130; here it becomes `Interrupted`, so
    `bastion.cli.main` prints ``bastion: interrupted`` whenever it happens. Built once the
    commands are, it also tidies their help (cli/help_format.py).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from bastion.cli.help_format import tidy

        tidy(self)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise Interrupted from exc


app = typer.Typer(
    name="bastion",
    help="Run commands on many hosts at once over SSH, from one inventory.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=BastionGroup,
    rich_markup_mode=None,
)

VERSION_FLAGS = ("--version", "-V")


def _show_version(value: bool) -> None:
    if value:
        from bastion.version import version_string

        typer.echo(f"bastion {version_string()}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            *VERSION_FLAGS, callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Run commands on many hosts at once over SSH, from one inventory."""


def _run() -> None:
    from bastion.cli.options import REMOTE_COMMAND_SETTINGS
    from bastion.cli.run_cmd import run_command

    app.command(
        "run",
        short_help=SHORT_HELP["run"],
        epilog=EXAMPLES["run"],
        no_args_is_help=True,
        context_settings=REMOTE_COMMAND_SETTINGS,
    )(run_command)


def _copy() -> None:
    from bastion.cli.copy_cmd import copy_command

    app.command(
        "copy", short_help=SHORT_HELP["copy"], epilog=EXAMPLES["copy"], no_args_is_help=True
    )(copy_command)


def _fetch() -> None:
    from bastion.cli.copy_cmd import fetch_command

    app.command(
        "fetch", short_help=SHORT_HELP["fetch"], epilog=EXAMPLES["fetch"], no_args_is_help=True
    )(fetch_command)


def _play() -> None:
    from bastion.cli.play_cmd import play_command

    app.command(
        "play", short_help=SHORT_HELP["play"], epilog=EXAMPLES["play"], no_args_is_help=True
    )(play_command)


def _facts() -> None:
    from bastion.cli.facts_cmd import facts_command

    app.command("facts", short_help=SHORT_HELP["facts"], epilog=EXAMPLES["facts"])(facts_command)


def _completion() -> None:
    from bastion.cli.completion import completion_command

    app.command("completion", short_help=SHORT_HELP["completion"], epilog=EXAMPLES["completion"])(
        completion_command
    )


def _man() -> None:
    from bastion.cli.manpage import man_command

    app.command("man", short_help=SHORT_HELP["man"], epilog=EXAMPLES["man"])(man_command)


def _history() -> None:
    from bastion.cli.history_cmd import history_command

    app.command("history", short_help=SHORT_HELP["history"], epilog=EXAMPLES["history"])(
        history_command
    )


def _audit() -> None:
    from bastion.cli.audit_cmd import audit_command

    app.command("audit", short_help=SHORT_HELP["audit"], epilog=EXAMPLES["audit"])(audit_command)


def _access() -> None:
    from bastion.cli.access_cmd import access_app

    app.add_typer(access_app, name="access", short_help=SHORT_HELP["access"])


def _jobs() -> None:
    from bastion.cli.jobs_cmd import jobs_command

    app.command("jobs", short_help=SHORT_HELP["jobs"], epilog=EXAMPLES["jobs"])(jobs_command)


def _shell() -> None:
    from bastion.cli.shell_cmd import shell_command

    app.command(
        "shell", short_help=SHORT_HELP["shell"], epilog=EXAMPLES["shell"], no_args_is_help=True
    )(shell_command)


def _inventory() -> None:
    from bastion.cli.inventory_cmd import inventory_app

    app.add_typer(inventory_app, name="inventory", short_help=SHORT_HELP["inventory"])


def _lab() -> None:
    from bastion.cli.lab_cmd import lab_app

    app.add_typer(lab_app, name="lab", short_help=SHORT_HELP["lab"])


def _cluster() -> None:
    from bastion.cli.cluster_cmd import cluster_app

    app.add_typer(cluster_app, name="cluster", short_help=SHORT_HELP["cluster"])


def _agent() -> None:
    from bastion.cli.agent_cmd import agent_app

    app.add_typer(agent_app, name="agent", short_help=SHORT_HELP["agent"])


COMMANDS = {
    "run": _run,
    "copy": _copy,
    "fetch": _fetch,
    "play": _play,
    "facts": _facts,
    "history": _history,
    "audit": _audit,
    "access": _access,
    "jobs": _jobs,
    "shell": _shell,
    "inventory": _inventory,
    "lab": _lab,
    "cluster": _cluster,
    "agent": _agent,
    "completion": _completion,
    "man": _man,
}
"""Each command's registration, in the order `bastion --help` lists them."""


def register_commands(argv: list[str]) -> None:
    """Register the command ``argv`` names, or every command when it names none.

    A command module imports what that command needs (the executor, asyncssh, the audit...),
    so ``bastion run`` does not pay for ``bastion audit``'s imports, and ``--version`` for none.
    """
    wanted = next((arg for arg in argv if not arg.startswith("-")), None)
    if wanted in COMMANDS:
        COMMANDS[wanted]()
    elif wanted is not None or not set(VERSION_FLAGS) & set(argv):
        for register in COMMANDS.values():
            register()
