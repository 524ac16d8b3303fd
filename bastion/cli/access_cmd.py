"""``bastion access apply``: converge authorized_keys to the declared access list, safely."""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.cli.audit_cmd import AccessOption, load_declared
from bastion.cli.options import (
    AllOption,
    ExcludeOption,
    GroupOption,
    HostsOption,
    InventoryOption,
    SelectorOption,
    connect_options,
    inventory_of,
    selection_from,
)
from bastion.errors import UsageError

if TYPE_CHECKING:
    from bastion.audit.apply import Change, HostPlan

access_app = typer.Typer(
    help="Converge hosts to the declared access list (access.yaml).", no_args_is_help=True
)

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_NOT_REACHED = 3


@access_app.command("apply")
def apply_command(
    inventory: InventoryOption = None,
    all_hosts: AllOption = False,
    group: GroupOption = None,
    hosts: HostsOption = None,
    selector: SelectorOption = None,
    exclude: ExcludeOption = None,
    access: AccessOption = None,
    check: Annotated[
        bool, typer.Option("--check", help="Print the exact change per host; write nothing.")
    ] = False,
    allow_lockout: Annotated[
        bool,
        typer.Option(
            "--allow-lockout",
            help="Remove the key bastion itself logs in with, if the access list says so.",
        ),
    ] = False,
    forks: Annotated[
        int, typer.Option("--forks", "-f", envvar="BASTION_FORKS", min=1, help="Hosts at once.")
    ] = 64,
    accept_new: Annotated[
        bool,
        typer.Option(
            "--accept-new",
            envvar="BASTION_ACCEPT_NEW",
            help="Trust unknown host keys on first use.",
        ),
    ] = False,
) -> None:
    """Make each declared account's ~/.ssh/authorized_keys match the access list.

    Adds missing keys, removes undeclared, revoked and expired ones, restores declared options.
    Each file is backed up beside itself and replaced atomically as its owner, mode 0600.
    Other key sources (authorized_keys2, cert-authority lines) are reported, never touched.
    Exit status: 0 done (or nothing to do); 1 a host refused (lockout guard) or a write failed;
    2 bad usage or input; 3 some host could not be audited.
    """
    # Imported here: a help page needs none of them.
    import datetime as dt

    from bastion.audit.apply import (
        apply_command as remote_command,
    )
    from bastion.audit.apply import (
        own_key_fingerprints,
        plan_host,
        write_script,
    )
    from bastion.audit.collect import collect
    from bastion.audit.drift import expected_keys
    from bastion.executor import RunOptions, Task, run
    from bastion.jumps import check_jump_chains
    from bastion.select import select_hosts

    loaded = inventory_of(inventory)
    declared = load_declared(access, loaded.path)
    if declared is None:
        raise UsageError(
            f"no access list: give --access FILE or put access.yaml beside {loaded.path}"
        )
    selection = selection_from(all_hosts, group, hosts, selector, exclude)
    if selection.is_empty():
        selection = selection_from(True, None, None, None, exclude)
    targets = select_hosts(loaded, selection)
    check_jump_chains(targets, loaded.hosts)
    connect = connect_options(loaded, accept_new=accept_new)
    observations = collect(targets, RunOptions(forks=forks, connect=connect))
    expected = expected_keys(declared, loaded)
    today = dt.datetime.now(dt.UTC).date()
    by_name = {h.name: h for h in targets}
    plans = [
        plan_host(
            seen,
            declared,
            expected,
            today=today,
            own_fingerprints=own_key_fingerprints(by_name[seen.host].identity_file),
            login_user=by_name[seen.host].user or getpass.getuser(),
            allow_lockout=allow_lockout,
        )
        for seen in observations
    ]
    for plan in plans:
        _print_plan(plan, check)
    code = EXIT_NOT_REACHED if any(o.coverage.value != "ok" for o in observations) else EXIT_OK
    if any(p.refused for p in plans) and code == EXIT_OK:
        code = EXIT_SOME_FAILED
    if check:
        raise typer.Exit(code)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    tasks = [
        Task(by_name[p.host], remote_command(write_script(p.files, stamp)))
        for p in plans
        if p.changed and p.refused is None
    ]
    if not tasks:
        raise typer.Exit(code)
    from bastion.render.visible import visible

    results = run(tasks, RunOptions(forks=forks, connect=connect), lambda event: None)
    for result in results:
        written = [
            line[10:] for line in result.stdout.splitlines() if line.startswith("@@written ")
        ]
        failed = [line[9:] for line in result.stdout.splitlines() if line.startswith("@@failed ")]
        for item in written:
            sys.stdout.write(visible(f"{result.host}: written {item}") + "\n")
        for item in failed:
            sys.stdout.write(visible(f"{result.host}: FAILED {item} (nothing replaced)") + "\n")
        if not result.succeeded or failed:
            reason = result.error or result.stderr.strip()[-200:] or "write failed"
            sys.stderr.write(visible(f"bastion: {result.host}: {reason}") + "\n")
            code = max(code, EXIT_SOME_FAILED) if code != EXIT_NOT_REACHED else code
    raise typer.Exit(code)


def _print_plan(plan: HostPlan, check: bool) -> None:
    from bastion.render.visible import visible

    out = sys.stdout
    for note in plan.notes:
        out.write(visible(f"{plan.host}: note: {note}") + "\n")
    if plan.refused:
        out.write(visible(f"{plan.host}: REFUSED: {plan.refused}") + "\n")
    changed = [f for f in plan.files if f.changes]
    if not changed and not plan.refused:
        out.write(visible(f"{plan.host}: no change") + "\n")
    for file_plan in changed:
        out.write(visible(f"{plan.host}: {file_plan.account} {file_plan.path}") + "\n")
        for change in file_plan.changes:
            out.write(visible(f"  {change.sign} {_describe(change)}") + "\n")
    if changed and check:
        out.write(visible(f"{plan.host}: --check: nothing written") + "\n")


def _describe(change: Change) -> str:
    """A change for people: fingerprint and comment rather than the whole key blob."""
    from bastion.audit.authorized_keys import KeyLineError, parse_key_line

    try:
        key = parse_key_line(change.text)
    except KeyLineError:
        return f"{change.text}  ({change.reason})"
    options = key.options.render()
    shown = " ".join(p for p in (options, key.key_type, key.fingerprint, key.comment) if p)
    return f"{shown}  ({change.reason})"
