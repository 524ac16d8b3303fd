"""``bastion play PLAYBOOK``: run a declarative playbook (docs/playbooks.md)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from bastion.cli.options import (
    AcceptNewOption,
    ConnectTimeoutOption,
    ForksOption,
    InventoryOption,
    OutDirOption,
    RetriesOption,
)

if TYPE_CHECKING:
    from bastion.cli.termination import Stop
    from bastion.models import HostResult
    from bastion.playbook import PlaybookRun, PlayRecap
    from bastion.playbook.record import PlayRecorder
    from bastion.playbook.results import PlayEvent
    from bastion.render.play import PlayJsonRenderer, PlayTextRenderer
    from bastion.render.progress import PlayProgress
    from bastion.runrecord import RunContext


class PlayOutput(StrEnum):
    TEXT = "text"
    JSON = "json"


def play_command(
    playbook: Annotated[
        Path,
        typer.Argument(help="The playbook file (a play, or a composition that imports plays)."),
    ],
    inventory: InventoryOption = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Change nothing: run the guards and read-only steps, print what would run.",
        ),
    ] = False,
    extra_vars: Annotated[
        list[str] | None,
        typer.Option(
            "--extra-vars",
            "-e",
            help="NAME=VALUE or @FILE.yaml (repeatable); wins over every other variable.",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        str | None,
        typer.Option(
            "--limit",
            help="Narrow every play's hosts, run's grammar: '-H node1', '-g workers -x node3'.",
            show_default=False,
        ),
    ] = None,
    tags: Annotated[
        str | None,
        typer.Option(
            "--tags", help="Run only the steps with one of these tags (a,b).", show_default=False
        ),
    ] = None,
    skip_tags: Annotated[
        str | None,
        typer.Option(
            "--skip-tags", help="Leave out the steps with one of these tags.", show_default=False
        ),
    ] = None,
    start_at: Annotated[
        str | None,
        typer.Option("--start-at", help="Begin at the step of this name.", show_default=False),
    ] = None,
    output: Annotated[
        PlayOutput,
        typer.Option("--output", "-o", help="text, or json (one object per host and step)."),
    ] = PlayOutput.TEXT,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show every host's output as it arrives.")
    ] = False,
    forks: ForksOption = 64,
    connect_timeout: ConnectTimeoutOption = None,
    retries: RetriesOption = 2,
    accept_new: AcceptNewOption = False,
    transport: Annotated[
        str | None,
        typer.Option(
            "--transport",
            envvar="BASTION_TRANSPORT",
            help="asyncssh, paramiko, mosh or auto for every host (as bastion run).",
            show_default=False,
        ),
    ] = None,
    out_dir: OutDirOption = None,
) -> None:
    """Run PLAYBOOK's steps in order on its hosts, each step on all of them in parallel.

    Exit status: 0 all ok; 1 a step failed; 2 bad input (file:line); 3 unreachable; 130 Ctrl-C.
    """
    # Imported here, so `bastion --help` does not pay for the engine (tests/test_startup.py).

    from bastion.cli.fanout import prologue
    from bastion.cli.options import inventory_of
    from bastion.playbook import (
        PlaybookRun,
        PlayOptions,
        load_playbook,
        parse_extra_vars,
        parse_where,
    )
    from bastion.playbook.record import PlayRecorder
    from bastion.render.base import wants_color
    from bastion.render.play import PlayJsonRenderer, PlayTextRenderer

    extra = parse_extra_vars(extra_vars or [])
    book = load_playbook(playbook, extra)
    loaded = inventory_of(inventory)
    selection = parse_where(limit, source="--limit", line=None) if limit else None
    start = prologue(
        loaded,
        None,  # the playbook chooses: fitted for every inventory host
        forks=forks,
        per_host=3 if out_dir else 1,
        connect_timeout=connect_timeout,
        retries=retries,
        accept_new=accept_new,
    )
    assert start is not None
    options = PlayOptions(
        run=start.run_options(transport=transport),
        check=check,
        tags=_names(tags),
        skip_tags=_names(skip_tags),
        start_at=start_at,
        limit=selection,
    )
    color = wants_color(sys.stdout)
    described = _describe(playbook, check, limit, tags, skip_tags, start_at, extra)
    context = start.context(
        described,
        {
            "check": check,
            "forks": forks,
            "forks_fitted": start.forks,
            "transport": transport,
            "extra_vars": sorted(extra),
            "tags": sorted(_names(tags)),
            "skip_tags": sorted(_names(skip_tags)),
            "start_at": start_at,
        },
        selection=limit or "(the playbook's hosts)",
    )
    recorder = PlayRecorder(out_dir, context) if out_dir is not None else None
    # The live step board first: the renderer then writes through it (stdout above the board).
    progress = start_play_progress(output is not PlayOutput.JSON)
    renderer: PlayTextRenderer | PlayJsonRenderer
    if output is PlayOutput.JSON:
        renderer = PlayJsonRenderer(sys.stdout)
    else:
        renderer = PlayTextRenderer(sys.stdout, verbose=verbose, color=color)

    def emit(event: PlayEvent) -> None:
        if progress is not None:
            progress.handle(event)
        renderer.handle(event)
        if recorder is not None:
            recorder.handle(event)

    try:
        run = PlaybookRun(book, loaded, options, emit)
        run.prepare()  # bad input: exit 2 here (secrets masked), before any host is contacted
        json_recap = sys.stderr if output is PlayOutput.JSON else None
        code = execute_play(run, renderer, json_recap, recorder, context)
    finally:
        if progress is not None:
            progress.stop()
    raise typer.Exit(code)


def start_play_progress(wanted: bool) -> PlayProgress | None:
    """The live step board on stderr when it is a terminal (started: build renderers after)."""
    if not wanted or not sys.stderr.isatty():
        return None
    from bastion.render.progress import PlayProgress

    progress = PlayProgress()
    progress.start()
    return progress


def execute_play(
    run: PlaybookRun,
    renderer: PlayTextRenderer | PlayJsonRenderer,
    json_recap: TextIO | None,
    recorder: PlayRecorder | None,
    context: RunContext,
) -> int:
    """Run the prepared play, finish every output and the history entry; the exit code.

    Shared by `bastion play` and `bastion cluster`. Ctrl-C (130) and SIGTERM (143) stop the
    remote commands and still print the recap and record the run; the hosts not done are
    ``interrupted``. A closed stdout (``| head``) stops nothing: the recap goes to stderr.
    """
    from bastion.cli import stdout_guard
    from bastion.cli.termination import records_first, run_stoppable

    stdout_guard.install()
    _, stop = run_stoppable(run.execute())
    with records_first():
        return _conclude_play(run, renderer, json_recap, recorder, context, stop)


def _conclude_play(
    run: PlaybookRun,
    renderer: PlayTextRenderer | PlayJsonRenderer,
    json_recap: TextIO | None,
    recorder: PlayRecorder | None,
    context: RunContext,
    stop: Stop,
) -> int:
    """The recap (hosts not done: interrupted), the record and the history; the exit code."""
    from bastion.cli import stdout_guard
    from bastion.history import record_run

    recap = run.recap()
    if stop.interrupted:
        for tally in recap.hosts:
            tally.interrupt()
    code = stop.exit_code if stop.interrupted else recap.exit_code
    renderer.finish(recap)
    if stdout_guard.closed_early():
        sys.stderr.write("bastion: stdout was closed early; the recap has every host\n")
        if json_recap is None:
            json_recap = sys.stderr
    if json_recap is not None:  # -o json: the objects on stdout, the recap for people on stderr
        json_recap.write(_text_recap(recap))
    if stop.interrupted:
        sys.stderr.write(f"bastion: {stop.describe()}; the recap shows the steps that finished\n")
    if recorder is not None:
        recorder.finish(recap, exit_code=code)
    record_run(context, _host_results(recap), exit_code=code, elapsed_s=recap.elapsed_s)
    return code


def _names(text: str | None) -> frozenset[str]:
    return frozenset(part.strip() for part in (text or "").split(",") if part.strip())


def _describe(
    playbook: Path,
    check: bool,
    limit: str | None,
    tags: str | None,
    skip_tags: str | None,
    start_at: str | None,
    extra: dict[str, object],
) -> str:
    """The command as the history keeps it: -e names only, never their values."""
    words = ["play", str(playbook)]
    if check:
        words.append("--check")
    for flag, value in (
        ("--limit", limit),
        ("--tags", tags),
        ("--skip-tags", skip_tags),
        ("--start-at", start_at),
    ):
        if value:
            words += [flag, repr(value)]
    words += [f"-e {name}=..." for name in sorted(extra)]
    return " ".join(words)


def _text_recap(recap: PlayRecap) -> str:
    from bastion.render.play import render_recap

    return render_recap(recap)


def _host_results(recap: PlayRecap) -> list[HostResult]:
    from bastion.models import HostResult, Status

    status = {
        "ok": Status.OK,
        "failed": Status.FAILED,
        "unreachable": Status.UNREACHABLE,
        "interrupted": Status.INTERRUPTED,
    }
    return [
        HostResult(host=t.host, address=t.address, status=status[t.status], error=t.reason)
        for t in recap.hosts
    ]
