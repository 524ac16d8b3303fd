"""``bastion copy SRC... DEST`` and ``bastion fetch REMOTE... LOCALDIR``: files, many hosts."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    MaxFailOption,
    OutDirOption,
    OutputMode,
    OutputOption,
    PauseOption,
    PickOption,
    RecursiveOption,
    RefOption,
    RetriesOption,
    RetryFailedOption,
    SelectorOption,
    TimeoutOption,
    batch_plan,
    check_output_mode,
    inventory_of,
    selection_from,
)
from bastion.cli.sudo_options import AskSudoPassOption, SudoUserOption
from bastion.errors import UsageError

if TYPE_CHECKING:
    from bastion.transport.files import RemoteFiles


def copy_command(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="SRC... DEST",
            help="Local files (directories with -r), then the remote destination; "
            "DEST may use {host}, {address}, {port}, {user} and inventory vars.",
            show_default=False,
        ),
    ],
    inventory: InventoryOption = None,
    all_hosts: AllOption = False,
    group: GroupOption = None,
    hosts: HostsOption = None,
    host_files: HostFileOption = None,
    selector: SelectorOption = None,
    exclude: ExcludeOption = None,
    pick: PickOption = None,
    recursive: RecursiveOption = False,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            help="Octal mode of the files sent (default: the local file's).",
            show_default=False,
        ),
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option(
            "--owner",
            help="USER[:GROUP] to own the files (needs root, or --sudo).",
            show_default=False,
        ),
    ] = None,
    sudo: Annotated[
        bool,
        typer.Option(
            "--sudo",
            help="Check and write the destination as root through sudo -n "
            "(uploaded to a private temporary directory first, then moved into place).",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Send every file, even identical ones.")
    ] = False,
    preserve: Annotated[
        bool,
        typer.Option(
            "--preserve", "-p", help="Keep each file's modification time (as scp -p, rsync -t)."
        ),
    ] = False,
    output: OutputOption = OutputMode.TEXT,
    ref: RefOption = None,
    forks: ForksOption = 64,
    timeout: TimeoutOption = None,
    connect_timeout: ConnectTimeoutOption = None,
    retries: RetriesOption = 2,
    accept_new: AcceptNewOption = False,
    batch: BatchOption = None,
    max_fail: MaxFailOption = None,
    pause: PauseOption = 0.0,
    canary: CanaryOption = False,
    out_dir: OutDirOption = None,
    retry_failed: RetryFailedOption = None,
) -> None:
    """Copy local files to the selected hosts over SFTP; only what differs is sent.

    Each file is compared by SHA-256 on the host first, written beside its place and renamed
    into it (atomic). Per host: changed, unchanged and failed paths.

    Exit status as for run: 0 all ok; 1 a path failed on some host; 2 bad usage or input
    (a missing local source); 3 a host was unreachable; 130 interrupted.
    """
    # Imported here: a help page needs none of them.
    from bastion.cli.driver import Fanout, check_ref, drive
    from bastion.cli.fanout import prologue
    from bastion.transfer.copy import CopyOptions, Owner, copy_to_host, parse_mode
    from bastion.transfer.sources import plan_copy
    from bastion.transfer.template import render_all
    from bastion.transfer.work import files_work

    output = check_output_mode(output)
    if len(paths) < 2:
        raise UsageError("give at least one local source and a destination", source="SRC... DEST")
    *sources, dest = paths
    options = CopyOptions(
        force=force,
        mode=parse_mode(mode) if mode is not None else None,
        owner=Owner.parse(owner) if owner is not None else None,
        sudo=sudo,
        preserve=preserve,
    )
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
    reference = check_ref(output, ref, targets)
    destinations = render_all(dest, targets, loaded.vars, source="DEST")
    copy_plan = plan_copy(sources, dest, recursive=recursive)
    for skipped in copy_plan.skipped:
        sys.stderr.write(f"bastion: not copied: {skipped}\n")
    if not copy_plan.files:
        raise UsageError("nothing to copy: the sources hold no regular file", source="SRC")

    run_options = start.run_options(timeout=timeout)
    code = drive(
        Fanout(
            targets=targets,
            work=files_work(
                lambda files, host, sink: copy_to_host(
                    files, host, copy_plan, destinations[host.name], options, sink
                ),
                timeout,
            ),
            options=run_options,
            output=output,
            context=start.context(
                f"copy {shlex.join(paths)}",
                {
                    "forks": forks,
                    "forks_fitted": start.forks,
                    "timeout": timeout,
                    "sudo": sudo,
                    "force": force,
                    "preserve": preserve,
                    "mode": mode,
                    "owner": owner,
                    "files": len(copy_plan.files),
                    "bytes": copy_plan.total_bytes,
                },
            ),
            ref=reference,
            out_dir=out_dir,
            batches=plan,
            notes=start.notes,
        )
    )
    raise typer.Exit(code)


def fetch_command(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="REMOTE... LOCALDIR",
            help="Remote files (directories with -r), then the local directory; each host's "
            "files land in LOCALDIR/HOST/<remote path>.",
            show_default=False,
        ),
    ],
    inventory: InventoryOption = None,
    all_hosts: AllOption = False,
    group: GroupOption = None,
    hosts: HostsOption = None,
    host_files: HostFileOption = None,
    selector: SelectorOption = None,
    exclude: ExcludeOption = None,
    pick: PickOption = None,
    recursive: RecursiveOption = False,
    preserve: Annotated[
        bool,
        typer.Option(
            "--preserve", "-p", help="Keep the remote mode and modification time (else 0600)."
        ),
    ] = False,
    output: OutputOption = OutputMode.TEXT,
    ref: RefOption = None,
    forks: ForksOption = 64,
    timeout: TimeoutOption = None,
    connect_timeout: ConnectTimeoutOption = None,
    retries: RetriesOption = 2,
    accept_new: AcceptNewOption = False,
    out_dir: OutDirOption = None,
    retry_failed: RetryFailedOption = None,
    sudo: Annotated[
        bool,
        typer.Option(
            "--sudo", help="Read the files as root through sudo -n (root-only files too)."
        ),
    ] = False,
    sudo_user: SudoUserOption = None,
    ask_sudo_pass: AskSudoPassOption = False,
) -> None:
    """Fetch files from the selected hosts over SFTP into LOCALDIR/HOST/.

    Remote paths may use {host}, {address}, {port}, {user} and inventory vars. A missing or
    unreadable remote file is that host's failure; the other hosts are unaffected.

    Exit status as for run: 0 all ok; 1 a path failed on some host; 2 bad usage or input;
    3 a host was unreachable; 130 interrupted.
    """
    # Imported here: a help page needs none of them.
    import os

    from bastion.cli.driver import Fanout, check_ref, drive
    from bastion.cli.fanout import prologue
    from bastion.cli.sudo_options import sudo_choice
    from bastion.private_files import open_private_dir
    from bastion.transfer.fetch import FetchOptions, fetch_from_host
    from bastion.transfer.sudo_reads import SudoReads
    from bastion.transfer.template import render_all
    from bastion.transfer.work import files_work

    output = check_output_mode(output)
    if len(paths) < 2:
        raise UsageError(
            "give at least one remote path and a local directory", source="REMOTE... LOCALDIR"
        )
    *remotes, local = paths
    local_root = Path(local)
    if local_root.exists() and not local_root.is_dir():
        raise UsageError(f"{local} is not a directory", source="LOCALDIR")
    loaded = inventory_of(inventory)
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
    reference = check_ref(output, ref, targets)
    rendered = [render_all(remote, targets, loaded.vars, source="REMOTE") for remote in remotes]
    become = sudo_choice(sudo, sudo_user, ask_sudo_pass)
    os.close(open_private_dir(local_root))  # refused (exit 2) before any host is contacted
    options = FetchOptions(recursive=recursive, preserve=preserve)

    def readable(files: RemoteFiles) -> RemoteFiles:
        return SudoReads(files, become.wrap, become.stdin(None)) if become.enabled else files

    run_options = start.run_options(timeout=timeout)
    code = drive(
        Fanout(
            targets=targets,
            work=files_work(
                lambda files, host, sink: fetch_from_host(
                    readable(files),
                    host,
                    [by_host[host.name] for by_host in rendered],
                    local_root,
                    options,
                    sink,
                ),
                timeout,
            ),
            options=run_options,
            output=output,
            context=start.context(
                f"fetch {shlex.join(paths)}",
                {
                    "forks": forks,
                    "forks_fitted": start.forks,
                    "timeout": timeout,
                    "preserve": preserve,
                    **become.recorded(),
                },
            ),
            ref=reference,
            out_dir=out_dir,
            notes=start.notes,
        )
    )
    raise typer.Exit(code)
