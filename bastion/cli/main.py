"""The ``bastion`` program: Ctrl-C is handled from the first instant, every error is one line.

This module imports nothing but the standard library at the top, so a Ctrl-C while typer and
the commands are still being imported (the first ~0.2 s) is ``bastion: interrupted`` and exit
130, not a traceback. The typer application lives in `bastion.cli.app`.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def _say(line: str, *, lines: bool = False) -> None:
    """``bastion: <line>`` on stderr, made one line (`errors.one_line`) with a host's control
    characters shown as `render.visible` shows them; with ``lines``, each of its lines so (a lab
    error's log tail stays readable, and still never a terminal sequence)."""
    from bastion.errors import one_line
    from bastion.render.visible import visible

    parts = line.splitlines() if lines else [" ".join(line.split("\n"))]
    text = "\n".join(one_line(visible(part)) for part in parts)
    try:
        sys.stderr.write(f"bastion: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr is gone too: the exit code still says it
        pass


def main() -> None:
    """Run the CLI; every error becomes one ``bastion: error:`` line and its exit code."""
    try:
        code = _main(sys.argv[1:])
    except KeyboardInterrupt:  # before typer runs (imports), or while an error is printed
        code = _interrupted()
    sys.exit(code)


def _interrupted() -> int:
    """Say how the command was stopped; its exit code (130 Ctrl-C, 143 SIGTERM)."""
    from bastion.cli.termination import terminated_by_sigterm

    if terminated_by_sigterm():
        _say("terminated (SIGTERM)")
        return EXIT_TERMINATED
    _say("interrupted")
    return EXIT_INTERRUPTED


def _defaults(argv: list[str]) -> dict[str, object] | None:
    """Option defaults from the config file (cli/config_file.py), or None when there is none."""
    from bastion.cli.config_file import config_path, default_map, load_config

    path = config_path()
    if path is None:
        return None
    from typer.main import get_command

    from bastion.cli.app import app

    return default_map(load_config(path), get_command(app), argv, path)


def _main(argv: list[str]) -> int:
    from bastion.cli import stdout_guard
    from bastion.cli.lean_coercion import install
    from bastion.cli.termination import sigterm_interrupts
    from bastion.errors import BastionError, InputError

    sigterm_interrupts()
    install()
    stdout_guard.install()
    import typer

    from bastion.cli.app import Interrupted, app, register_commands

    if not argv:  # bare `bastion`: the help, and success (as git, kubectl, clush)
        argv = ["--help"]
    register_commands(argv)
    from bastion.cli.completion import completing, install_completion_classes

    if completing():
        install_completion_classes()
    try:
        result = app(
            args=argv, prog_name="bastion", standalone_mode=False, default_map=_defaults(argv)
        )
    except BastionError as exc:  # bad input: one line; a lab or environment problem may add lines
        _say(f"error: {exc}", lines=not isinstance(exc, InputError))
        return exc.exit_code
    except Interrupted:
        return _interrupted()
    except typer.TyperException as exc:  # click's usage errors: one line, not a box
        if type(exc).__name__ == "NoArgsIsHelpError":  # `bastion run` alone: its help
            sys.stdout.write(exc.format_message().rstrip("\n") + "\n")
            return 0
        _say(f"error: {exc.format_message()}")
        return int(getattr(exc, "exit_code", 2))
    except typer.Abort:  # end of input at a prompt
        _say("error: aborted")
        return 1
    return result if isinstance(result, int) else 0


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
    except KeyboardInterrupt:  # a second Ctrl-C while the first was being reported
        code = EXIT_INTERRUPTED
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
