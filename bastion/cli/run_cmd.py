"""``bastion run``: one command on many hosts, with live output, a summary and an exit code."""

from __future__ import annotations

import hashlib
import shlex
import sys
from pathlib import Path
from typing import Annotated, BinaryIO, TextIO

import typer

from bastion.cli.options import (
    AcceptNewOption,
    AllOption,
    BatchOption,
    CanaryOption,
    ConnectTimeoutOption,
    ExcludeOption,
    ForksOption,
    GroupOption,
    HostFileOption,
    HostsOption,
    InventoryOption,
    LinesOption,
    ListHostsOption,
    MaxFailOption,
    NoPrefixOption,
    OutDirOption,
    OutputMode,
    OutputOption,
    PauseOption,
    PickOption,
    RawOption,
    RefOption,
    RetriesOption,
    RetryFailedOption,
    SelectorOption,
    TimeoutOption,
    batch_plan,
    check_output_mode,
    inventory_of,
    list_hosts_and_stop,
    selection_from,
)
from bastion.cli.sudo_options import AskSudoPassOption, SudoUserOption
from bastion.errors import UsageError

STREAMED_RESULT_CHARS = 64 * 1024
"""What a host's result keeps of each stream when the output mode streams it as it arrives:
enough for the summary's reason line, and a host printing 100 MB costs no memory."""
STDIN_LIMIT = 64 * 1024 * 1024
"""Standard input is read whole before any host starts, and sent to each: this much at most."""
SCRIPT_LIMIT = STDIN_LIMIT


def run_command(
    command: Annotated[
        list[str] | None,
        typer.Argument(
            help="The command to run on every host: every word after the options, unchanged "
            "(options end at its first word, as with ssh; -- works too); "
            "with --script, the script's arguments.",
            show_default=False,
        ),
    ] = None,
    inventory: InventoryOption = None,
    all_hosts: AllOption = False,
    group: GroupOption = None,
    hosts: HostsOption = None,
    host_files: HostFileOption = None,
    selector: SelectorOption = None,
    exclude: ExcludeOption = None,
    pick: PickOption = None,
    list_hosts: ListHostsOption = False,
    output: OutputOption = OutputMode.TEXT,
    lines: LinesOption = False,
    no_prefix: NoPrefixOption = False,
    raw: RawOption = False,
    ref: RefOption = None,
    forks: ForksOption = 64,
    timeout: TimeoutOption = None,
    connect_timeout: ConnectTimeoutOption = None,
    retries: RetriesOption = 2,
    accept_new: AcceptNewOption = False,
    sudo: Annotated[
        bool, typer.Option("--sudo", help="Run the command as root through sudo -n.")
    ] = False,
    sudo_user: SudoUserOption = None,
    ask_sudo_pass: AskSudoPassOption = False,
    transport: Annotated[
        str | None,
        typer.Option(
            "--transport",
            envvar="BASTION_TRANSPORT",
            help="asyncssh, paramiko, mosh, or auto (SSH, moving a host to mosh after its "
            "connections drop), for every host; default: each host's, else asyncssh.",
            show_default=False,
        ),
    ] = None,
    durable: Annotated[
        bool,
        typer.Option(
            "--durable",
            envvar="BASTION_DURABLE",
            help="Start the command detached on the host, exactly once; reconnect and resume "
            "its output after drops (docs/flaky-links.md).",
        ),
    ] = False,
    script: Annotated[
        Path | None,
        typer.Option(
            "--script",
            help="Run this local script on every host (sent on stdin to sh -s, not copied); "
            "arguments after --.",
            show_default=False,
        ),
    ] = None,
    no_stdin: Annotated[
        bool,
        typer.Option(
            "--no-stdin", help="Do not read standard input, even when it is a pipe or a file."
        ),
    ] = False,
    batch: BatchOption = None,
    max_fail: MaxFailOption = None,
    pause: PauseOption = 0.0,
    canary: CanaryOption = False,
    out_dir: OutDirOption = None,
    retry_failed: RetryFailedOption = None,
    maxrc: Annotated[
        bool,
        typer.Option(
            "--maxrc",
            "-S",
            help="Exit with the largest exit status of the remote commands (255 for a host "
            "without one), as pdsh -S and clush -S.",
        ),
    ] = False,
    persist: Annotated[
        str | None,
        typer.Option(
            "--persist",
            help="Keep the connections open in the bastion agent for this long after the run "
            "(like 10m; starts the agent if needed). See docs/agent.md.",
            show_default=False,
        ),
    ] = None,
    no_agent: Annotated[
        bool,
        typer.Option(
            "--no-agent",
            envvar="BASTION_NO_AGENT",
            help="Connect directly even when the bastion agent is running.",
        ),
    ] = False,
) -> None:
    """Run COMMAND on the selected hosts in parallel.

    Standard input, when it is not a terminal, is read once and sent to every host
    (--no-stdin to leave it alone).

    Exit status: 0 every host ok; 1 a command failed or timed out; 2 bad usage or input;
    3 a host was unreachable (connect, auth or host-key failure); 130 interrupted.
    With -S, the largest remote exit status instead (docs/exit-codes.md).
    """
    if not command and script is None and not list_hosts and _interactive_terminal():
        _interactive(dict(locals()))
        return
    # Imported here, not at the top: `bastion --help` and `bastion run --help` need none.
    from bastion.agent.lifecycle import prestart, socket_for
    from bastion.cli.driver import Fanout, check_ref, drive
    from bastion.cli.fanout import prologue
    from bastion.cli.sudo_options import sudo_choice
    from bastion.executor import command_work
    from bastion.render.base import Display

    output = check_output_mode(output)
    if lines:
        output = OutputMode.LINES
    body, text, label = _command_text(command or [], script)
    # The agent (warm by default) starts while the rest is read; never for a sudo password.
    prestart(persist, no_agent or ask_sudo_pass, durable, transport)
    loaded = inventory_of(inventory)
    plan = batch_plan(batch, max_fail, pause, canary)
    start = prologue(
        loaded,
        selection_from(all_hosts, group, hosts, selector, exclude, host_files, pick),
        forks=forks,
        per_host=3 if out_dir else 1,
        connect_timeout=connect_timeout,
        retries=retries,
        accept_new=accept_new,
        retry_failed=retry_failed,
    )
    if start is None:
        return
    targets = start.targets
    if list_hosts:
        list_hosts_and_stop(targets, shlex.quote(label))
        return
    reference = check_ref(output, ref, targets)
    stdin: bytes | None = body
    if body is not None:
        extra: dict[str, object] = {"script_sha256": hashlib.sha256(body).hexdigest()}
    else:
        stdin = None if no_stdin else broadcast_stdin(sys.stdin)  # only once the rest is valid
        extra = {"stdin_bytes": len(stdin)} if stdin else {}
    if stdin and (durable or transport in ("mosh", "auto")):
        # A durable job runs detached on the node with stdin from /dev/null.
        raise UsageError(
            "durable jobs (--durable, --transport mosh|auto) do not take standard input or "
            "--script yet; use --no-stdin, or copy the script to the hosts first",
            source="--durable",
        )
    _check_sudo_password(ask_sudo_pass, durable, transport, persist)
    become = sudo_choice(sudo, sudo_user, ask_sudo_pass)
    remote = become.wrap(text)
    stdin = become.stdin(stdin)
    # With a password, no agent: it would hold the password in a long-lived process.
    agent = socket_for(persist, no_agent or become.password is not None, durable, transport)
    options = start.run_options(
        # Every mode keeps only the start: json and grouped print each host's whole output from
        # the renderer's spool (bastion/spool.py), -o diff hashes it as it streams, the rest
        # stream it.
        keep_output_chars=STREAMED_RESULT_CHARS,
        timeout=timeout,
        stdin=stdin,
        durable=durable,
        transport=transport,
        agent=agent,
    )
    context = start.context(
        label,
        {
            "forks": forks,
            "forks_fitted": start.forks,
            "timeout": timeout,
            **become.recorded(),
            "retries": retries,
            "durable": durable,
            "transport": transport,
            "maxrc": maxrc,
            **extra,
        },
    )
    code = drive(
        Fanout(
            targets=targets,
            work=command_work(dict.fromkeys((host.name for host in targets), remote), options),
            options=options,
            output=output,
            context=context,
            ref=reference,
            out_dir=out_dir,
            batches=plan,
            notes=start.notes,
            worst_exit=maxrc,
            display=Display(raw=raw, prefix=not no_prefix),
        )
    )
    raise typer.Exit(code)


def _command_text(words: list[str], script: Path | None) -> tuple[bytes | None, str, str]:
    """The script's bytes (or None), the command sent, and the command as history shows it."""
    if script is not None:
        text = " ".join(["sh -s --", shlex.join(words)]).rstrip()
        label = " ".join(["--script", shlex.quote(str(script)), "--", shlex.join(words)]).rstrip()
        return _read_script(script), text, label
    text = " ".join(words).strip()
    if not text:
        raise UsageError("the command is empty", source="COMMAND")
    return None, text, text


def _check_sudo_password(
    ask_sudo_pass: bool, durable: bool, transport: str | None, persist: str | None
) -> None:
    if ask_sudo_pass and (durable or transport in ("mosh", "auto")):
        # A durable job keeps its input in a file on the node: no place for a password.
        raise UsageError("--durable cannot take a sudo password (-K)", source="--ask-sudo-pass")
    if ask_sudo_pass and persist is not None:
        raise UsageError("-K does not go through the agent (--persist)", source="--ask-sudo-pass")


def _interactive_terminal() -> bool:
    """Whether standard input and output are a terminal (clush's test for its interactive mode)."""
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _interactive(arguments: dict[str, object]) -> None:
    """No command on a terminal: the ``bastion>`` prompt (cli/interactive.py)."""
    from bastion.cli.interactive import Session, history_file, interactive_session
    from bastion.select import Selection, select_hosts

    inventory = inventory_of(arguments["inventory"])  # type: ignore[arg-type]
    first = selection_from(
        arguments["all_hosts"],  # type: ignore[arg-type]
        arguments["group"],  # type: ignore[arg-type]
        arguments["hosts"],  # type: ignore[arg-type]
        arguments["selector"],  # type: ignore[arg-type]
        arguments["exclude"],  # type: ignore[arg-type]
        arguments["host_files"],  # type: ignore[arg-type]
        arguments["pick"],  # type: ignore[arg-type]
    )

    def resolve(patterns: list[str]) -> list[str]:
        chosen = Selection(hosts=tuple(patterns)) if patterns else first
        return [host.name for host in select_hosts(inventory, chosen)]

    session = Session(arguments, run_command, resolve, OutputMode.GROUPED, OutputMode.TEXT)
    interactive_session(session, history_file())


def broadcast_stdin(stream: TextIO | None) -> bytes | None:
    """Standard input to send to every host: None from a terminal or when there is none.

    Read once, whole, before any host starts; more than `STDIN_LIMIT` is a usage error (copy
    such a file with ``bastion copy`` instead).
    """
    if stream is None or stream.closed:
        return None
    try:
        if stream.isatty():
            return None
        source: BinaryIO = stream.buffer
    except (AttributeError, ValueError, OSError):
        return None
    data = source.read(STDIN_LIMIT + 1)
    if len(data) > STDIN_LIMIT:
        raise UsageError(
            f"standard input is larger than {STDIN_LIMIT // (1024 * 1024)} MiB; "
            "copy the data with `bastion copy`, or give --no-stdin",
            source="stdin",
        )
    return data or None


def _read_script(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            body = handle.read(SCRIPT_LIMIT + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the script: {exc.strerror}", source=path) from exc
    if len(body) > SCRIPT_LIMIT:
        raise UsageError(
            f"the script is larger than {SCRIPT_LIMIT // (1024 * 1024)} MiB", source=path
        )
    if not body.strip():
        raise UsageError("the script is empty", source=path)
    return body
