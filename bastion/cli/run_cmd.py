"""``bastion run``: one command on many hosts, with live output, a summary and an exit code."""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.cli.options import (
    AllOption,
    ExcludeOption,
    GroupOption,
    HostsOption,
    InventoryOption,
    SelectorOption,
    inventory_of,
    selection_from,
)
from bastion.errors import UsageError

if TYPE_CHECKING:
    # Imported where used instead: `bastion --help` need not load the executor, the
    # inventory parser (yaml) or asyncio (see tests/test_startup.py).
    from bastion.executor import RunOptions
    from bastion.models import Host
    from bastion.render.base import Renderer
    from bastion.runrecord import RunContext
    from bastion.select import Selection


STREAMED_RESULT_CHARS = 64 * 1024
"""What a host's result keeps of each stream when the output mode streams it as it arrives:
enough for the summary's reason line, and a host printing 100 MB costs no memory."""


class OutputMode(StrEnum):
    INLINE = "inline"
    GROUPED = "grouped"
    JSON = "json"
    QUIET = "quiet"


def run_command(
    command: Annotated[
        list[str],
        typer.Argument(help="The command to run on every host (quote it, or put it after --)."),
    ],
    inventory: InventoryOption = None,
    all_hosts: AllOption = False,
    group: GroupOption = None,
    hosts: HostsOption = None,
    selector: SelectorOption = None,
    exclude: ExcludeOption = None,
    output: Annotated[
        OutputMode,
        typer.Option(
            "--output", "-o", envvar="BASTION_OUTPUT", help="inline, grouped, json or quiet."
        ),
    ] = OutputMode.INLINE,
    forks: Annotated[
        int,
        typer.Option("--forks", "-f", envvar="BASTION_FORKS", min=1, help="Hosts at once."),
    ] = 64,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            "-t",
            envvar="BASTION_TIMEOUT",
            min=0.001,
            help="Seconds a command may run; then its remote process group is stopped.",
            show_default=False,
        ),
    ] = None,
    connect_timeout: Annotated[
        float | None,
        typer.Option(
            "--connect-timeout",
            envvar="BASTION_CONNECT_TIMEOUT",
            min=0.001,
            help="Seconds to connect and authenticate (default: the inventory's, else 10).",
            show_default=False,
        ),
    ] = None,
    retries: Annotated[
        int,
        typer.Option(
            "--retries",
            envvar="BASTION_RETRIES",
            min=0,
            help="Extra connection attempts after a transient failure (jittered backoff).",
        ),
    ] = 2,
    accept_new: Annotated[
        bool,
        typer.Option(
            "--accept-new",
            envvar="BASTION_ACCEPT_NEW",
            help="Trust unknown host keys on first use and record them; changed keys still fail.",
        ),
    ] = False,
    sudo: Annotated[
        bool, typer.Option("--sudo", help="Run the command as root through sudo -n.")
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out-dir",
            envvar="BASTION_OUT_DIR",
            help="Write HOST.out/HOST.err, hosts.ok, hosts.failed and run.json here (0600).",
            show_default=False,
        ),
    ] = None,
    retry_failed: Annotated[
        Path | None,
        typer.Option(
            "--retry-failed",
            help="Run again on the hosts that did not succeed in this --out-dir record.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run COMMAND on the selected hosts in parallel.

    Exit status: 0 every host ok; 1 a command failed or timed out; 2 bad usage or input;
    3 a host was unreachable (connect, auth or host-key failure); 130 interrupted.
    """
    from datetime import UTC, datetime

    from bastion.command import with_sudo
    from bastion.executor import RunOptions
    from bastion.hostkeys import HostKeyPolicy
    from bastion.jumps import check_jump_chains
    from bastion.limits import fit_forks_to_file_limit
    from bastion.runrecord import RunContext
    from bastion.select import select_hosts
    from bastion.transport.base import ConnectOptions

    text = " ".join(command).strip()
    if not text:
        raise UsageError("the command is empty", source="COMMAND")
    loaded = inventory_of(inventory)
    selection = selection_from(all_hosts, group, hosts, selector, exclude)
    if retry_failed is not None:
        retry = _retry_selection(selection, retry_failed)
        if retry is None:
            sys.stderr.write(f"bastion: nothing to retry: every host succeeded in {retry_failed}\n")
            return
        selection = retry
    targets = select_hosts(loaded, selection)
    check_jump_chains(targets, loaded.hosts)
    remote = with_sudo(text) if sudo else text
    fit = fit_forks_to_file_limit(forks, len(targets), per_host=3 if out_dir else 1)
    shortfall = fit.shortfall_message()
    if shortfall:
        sys.stderr.write(f"bastion: warning: {shortfall}\n")
    options = RunOptions(
        forks=fit.forks,
        timeout=timeout,
        # -o json and -o grouped print each host's whole output at its end; the others stream.
        keep_output_chars=(
            None if output in (OutputMode.JSON, OutputMode.GROUPED) else STREAMED_RESULT_CHARS
        ),
        connect=ConnectOptions(
            connect_timeout=connect_timeout,
            retries=retries,
            host_keys=HostKeyPolicy(accept_new=accept_new),
            jump_hosts=loaded.hosts,
        ),
    )
    context = RunContext(
        command=text,
        selection=selection.describe(),
        inventory_path=str(loaded.path),
        inventory_digest=loaded.digest,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        options={"forks": forks, "timeout": timeout, "sudo": sudo, "retries": retries},
    )
    code = _execute(
        targets, command=remote, options=options, output=output, out_dir=out_dir, context=context
    )
    raise typer.Exit(code)


def _retry_selection(selection: Selection, record: Path) -> Selection | None:
    """The hosts to retry, narrowed by -l/-x; None when every host succeeded."""
    from bastion.hostset import fold
    from bastion.runrecord import hosts_to_retry
    from bastion.select import Selection

    if selection.all or selection.groups or selection.hosts:
        raise UsageError("--retry-failed chooses the hosts; drop --all, -g and -H", source=record)
    names = hosts_to_retry(record)
    if not names:
        return None
    return Selection(hosts=(fold(names),), selector=selection.selector, exclude=selection.exclude)


def _execute(
    targets: list[Host],
    *,
    command: str,
    options: RunOptions,
    output: OutputMode,
    out_dir: Path | None,
    context: RunContext,
) -> int:
    """Run, feeding every consumer of the event stream, then summarise and record."""
    from bastion.executor import Task, run
    from bastion.history import record_run
    from bastion.hostset import fold
    from bastion.models import Event, HostFinished, HostResult
    from bastion.outcome import EXIT_INTERRUPTED, exit_code
    from bastion.render.base import wants_color
    from bastion.render.progress import LiveProgress
    from bastion.render.summary import render_summary
    from bastion.runrecord import OutDirRecorder

    progress = LiveProgress(len(targets)) if sys.stderr.isatty() else None
    if progress is not None:
        progress.start()
    renderer = _renderer(output, targets)
    recorder = OutDirRecorder(out_dir, context) if out_dir is not None else None
    finished: list[HostResult] = []

    def emit(event: Event) -> None:
        if progress is not None:
            progress.handle(event)
        renderer.handle(event)
        if recorder is not None:
            recorder.handle(event)
        if isinstance(event, HostFinished):
            finished.append(event.result)

    started = time.monotonic()
    interrupted = False
    try:
        run([Task(host, command) for host in targets], options, emit)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if progress is not None:
            progress.stop()
    elapsed = time.monotonic() - started
    order = {host.name: index for index, host in enumerate(targets)}
    results = sorted(finished, key=lambda r: order[r.host])
    renderer.finish(results)
    code = EXIT_INTERRUPTED if interrupted else exit_code(results)
    sys.stderr.write(render_summary(results, elapsed, color=wants_color(sys.stderr)))
    if interrupted:
        done = {r.host for r in results}
        pending = [h.name for h in targets if h.name not in done]
        sys.stderr.write(f"bastion: interrupted; not finished: {fold(pending) or 'none'}\n")
    if recorder is not None:
        recorder.finish(results, exit_code=code, elapsed_s=elapsed)
    record_run(context, results, exit_code=code, elapsed_s=elapsed)
    return code


def _renderer(output: OutputMode, targets: list[Host]) -> Renderer:
    from bastion.render.base import wants_color

    out, err = sys.stdout, sys.stderr
    if output is OutputMode.JSON:
        from bastion.render.jsonl import JsonLinesRenderer

        return JsonLinesRenderer(out)
    if output is OutputMode.GROUPED:
        from bastion.render.grouped import GroupedRenderer

        return GroupedRenderer(out, err, color=wants_color(out))
    if output is OutputMode.QUIET:
        from bastion.render.quiet import QuietRenderer

        return QuietRenderer()
    from bastion.render.inline import InlineRenderer

    width = max(len(host.name) for host in targets)
    return InlineRenderer(out, err, width, color=wants_color(out))
