"""The ``bastion`` entry point: registers the commands and maps errors to exit codes."""

from __future__ import annotations

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


def _register() -> None:
    from bastion.cli.access_cmd import access_app
    from bastion.cli.audit_cmd import audit_command
    from bastion.cli.copy_cmd import copy_command, fetch_command
    from bastion.cli.history_cmd import history_command
    from bastion.cli.inventory_cmd import inventory_app
    from bastion.cli.jobs_cmd import jobs_command
    from bastion.cli.lab_cmd import lab_app
    from bastion.cli.run_cmd import run_command
    from bastion.cli.shell_cmd import shell_command

    app.command("run", no_args_is_help=True)(run_command)
    app.command("copy", no_args_is_help=True)(copy_command)
    app.command("fetch", no_args_is_help=True)(fetch_command)
    app.command("history")(history_command)
    app.command("audit")(audit_command)
    app.add_typer(access_app, name="access")
    app.command("jobs")(jobs_command)
    app.command("shell", no_args_is_help=True)(shell_command)
    app.add_typer(inventory_app, name="inventory")
    app.add_typer(lab_app, name="lab")


_register()


def main() -> None:
    """Run the CLI; a `BastionError` becomes one line on stderr and its exit code."""
    try:
        app(prog_name="bastion")
    except BastionError as exc:
        sys.stderr.write(f"bastion: error: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("bastion: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
