"""The ``bastion`` entry point: registers the commands and maps errors to exit codes."""

from __future__ import annotations

import atexit
import gc
import os
import sys
from typing import Annotated

import typer

from bastion.errors import BastionError

app = typer.Typer(
    name="bastion",
    help="Run commands on many hosts at once over SSH, from one inventory.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Run commands on many hosts at once over SSH, from one inventory."""


def _run() -> None:
    from bastion.cli.run_cmd import run_command

    app.command("run", no_args_is_help=True)(run_command)


def _copy() -> None:
    from bastion.cli.copy_cmd import copy_command

    app.command("copy", no_args_is_help=True)(copy_command)


def _fetch() -> None:
    from bastion.cli.copy_cmd import fetch_command

    app.command("fetch", no_args_is_help=True)(fetch_command)


def _play() -> None:
    from bastion.cli.play_cmd import play_command

    app.command("play", no_args_is_help=True)(play_command)


def _history() -> None:
    from bastion.cli.history_cmd import history_command

    app.command("history")(history_command)


def _audit() -> None:
    from bastion.cli.audit_cmd import audit_command

    app.command("audit")(audit_command)


def _access() -> None:
    from bastion.cli.access_cmd import access_app

    app.add_typer(access_app, name="access")


def _jobs() -> None:
    from bastion.cli.jobs_cmd import jobs_command

    app.command("jobs")(jobs_command)


def _shell() -> None:
    from bastion.cli.shell_cmd import shell_command

    app.command("shell", no_args_is_help=True)(shell_command)


def _inventory() -> None:
    from bastion.cli.inventory_cmd import inventory_app

    app.add_typer(inventory_app, name="inventory")


def _lab() -> None:
    from bastion.cli.lab_cmd import lab_app

    app.add_typer(lab_app, name="lab")


def _cluster() -> None:
    from bastion.cli.cluster_cmd import cluster_app

    app.add_typer(cluster_app, name="cluster")


def _agent() -> None:
    from bastion.cli.agent_cmd import agent_app

    app.add_typer(agent_app, name="agent")


COMMANDS = {
    "run": _run,
    "copy": _copy,
    "fetch": _fetch,
    "play": _play,
    "history": _history,
    "audit": _audit,
    "access": _access,
    "jobs": _jobs,
    "shell": _shell,
    "inventory": _inventory,
    "lab": _lab,
    "cluster": _cluster,
    "agent": _agent,
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
    elif wanted is not None or "--version" not in argv:
        for register in COMMANDS.values():
            register()


def main() -> None:
    """Run the CLI; a `BastionError` becomes one line on stderr and its exit code."""
    from bastion.cli.lean_coercion import install

    install()
    register_commands(sys.argv[1:])
    try:
        app(prog_name="bastion")
    except BastionError as exc:
        from bastion.render.visible import visible  # a message may quote a host's bytes

        sys.stderr.write(f"bastion: error: {visible(str(exc))}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("bastion: interrupted\n")
        sys.exit(130)


START_UP_GC_THRESHOLD = 100_000
"""Allocations between young-generation collections (CPython's default: 700). Start-up
allocates hundreds of thousands of long-lived objects (modules, classes, typer's options);
collecting them 90 times cost about 20 ms of CPU per run. Cycles are still collected."""


def entry() -> None:
    """The ``bastion`` program: `main`, then exit without tearing the interpreter down.

    A run's work is over when `main` returns (output flushed, files closed, history
    appended); freeing every module and object one by one at exit cost 40-60 ms of CPU and
    more wall time. ``atexit`` functions still run (the output spool's clean-up, for a run
    that ended early on a closed pipe). Only the console script and ``python -m bastion`` exit
    this way.
    """
    gc.set_threshold(START_UP_GC_THRESHOLD, *gc.get_threshold()[1:])
    from bastion.process_clock import mark_whole_run

    mark_whole_run()  # the summary times the whole process, start-up included
    code: int | str | None = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    if isinstance(code, str):
        sys.stderr.write(f"{code}\n")
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            code = code or 1
    os._exit(code or 0)


if __name__ == "__main__":
    entry()
