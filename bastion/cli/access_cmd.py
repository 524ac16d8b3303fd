"""``bastion access apply``: converge authorized_keys to the declared access list, safely."""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.cli.audit_cmd import AccessOption, load_declared
from bastion.cli.options import (
    AcceptNewOption,
    AllOption,
    BatchOption,
    CanaryOption,
    ExcludeOption,
    ForksOption,
    GroupOption,
    HostsOption,
    InventoryOption,
    MaxFailOption,
    PauseOption,
    SelectorOption,
    batch_plan,
    inventory_of,
    selection_from,
)
from bastion.errors import UsageError

if TYPE_CHECKING:
    from bastion.audit.apply import Change, FilePlan, HostPlan
    from bastion.batches import BatchPlan
    from bastion.executor import HostWork, RunOptions
    from bastion.models import Host, HostResult

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
    forks: ForksOption = 64,
    accept_new: AcceptNewOption = False,
    batch: BatchOption = None,
    max_fail: MaxFailOption = None,
    pause: PauseOption = 0.0,
    canary: CanaryOption = False,
) -> None:
    """Make each declared account's ~/.ssh/authorized_keys match the access list.

    Adds missing keys, removes undeclared, revoked and expired ones, restores declared options.
    Each file is backed up beside itself and replaced atomically as its owner, mode 0600.
    Other key sources (authorized_keys2, cert-authority lines) are reported, never touched.
    After writing, a new connection with bastion's own login must run `true`, or the backup is
    put back over the connection still open (REVERTED).
    Exit status: 0 done (or nothing to do); 1 a host refused (lockout guard), reverted, skipped
    or a write failed; 2 bad usage or input; 3 some host could not be audited.
    """
    # Imported here: a help page needs none of them.
    import datetime as dt

    from bastion.audit.apply import own_key_fingerprints, plan_host, write_script
    from bastion.audit.apply_run import HostScripts, apply_work, restore_script
    from bastion.audit.collect import collect
    from bastion.audit.drift import expected_keys
    from bastion.audit.observation import Coverage
    from bastion.audit.probe_output import unreadable
    from bastion.cli.fanout import prologue

    rolling = batch_plan(batch, max_fail, pause, canary)
    loaded = inventory_of(inventory)
    declared = load_declared(access, loaded.path)
    if declared is None:
        raise UsageError(
            f"no access list: give --access FILE or put access.yaml beside {loaded.path}"
        )
    start = prologue(
        loaded,
        selection_from(all_hosts, group, hosts, selector, exclude),
        forks=forks,
        accept_new=accept_new,
        default_all=True,
    )
    assert start is not None
    targets = start.targets
    options = start.run_options()
    observations = collect(targets, options)
    expected = expected_keys(declared, loaded)
    today = dt.datetime.now(dt.UTC).date()
    by_name = {h.name: h for h in targets}
    jumps = {h.jump for h in loaded.hosts.values() if h.jump}
    plans = []
    for seen in observations:
        host = by_name[seen.host]
        try:
            plan = plan_host(
                seen, declared, expected, today=today,
                own_fingerprints=own_key_fingerprints(host.identity_file),
                login_user=host.user or getpass.getuser(), allow_lockout=allow_lockout,
                needs_pty=host.transport == "mosh", needs_forwarding=host.name in jumps,
            )  # fmt: skip
        except Exception as exc:  # one host's odd data must not cost the others their plan
            failed = unreadable(seen.host, seen.address, f"{type(exc).__name__}: {exc}")
            seen.coverage, seen.error = Coverage.FAILED, failed.error
            plan = plan_host(seen, declared, expected, today=today,
                             own_fingerprints=frozenset(), login_user="")  # fmt: skip
        plans.append(plan)
    for plan in plans:
        _print_plan(plan, check)
    code = EXIT_NOT_REACHED if any(o.coverage.value != "ok" for o in observations) else EXIT_OK
    if any(p.refused for p in plans) and code == EXIT_OK:
        code = EXIT_SOME_FAILED
    if check:
        raise typer.Exit(code)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    to_write = [p for p in plans if p.changed and p.refused is None]
    if not to_write:
        raise typer.Exit(code)
    scripts = {
        p.host: HostScripts(write_script(p.files, stamp), restore_script(p.files, stamp))
        for p in to_write
    }
    results = _execute([by_name[p.host] for p in to_write], options, apply_work(scripts), rolling)
    files = {p.host: p.files for p in to_write}
    for result in results:
        if not _report_apply(result, files[result.host]):
            code = max(code, EXIT_SOME_FAILED) if code != EXIT_NOT_REACHED else code
    raise typer.Exit(code)


@access_app.command("restore")
def restore_command(
    inventory: InventoryOption = None,
    all_hosts: AllOption = False,
    group: GroupOption = None,
    hosts: HostsOption = None,
    selector: SelectorOption = None,
    exclude: ExcludeOption = None,
    stamp: Annotated[
        str | None,
        typer.Option(
            "--stamp",
            help="Restore the backups of this apply (20261202T194600Z) rather than the newest.",
            show_default=False,
        ),
    ] = None,
    forks: ForksOption = 64,
    accept_new: AcceptNewOption = False,
) -> None:
    """Put back the authorized_keys files `access apply` backed up (the newest, or --stamp).

    Each account's ~/.ssh/authorized_keys.bastion-backup-STAMP is copied back as the account,
    mode 0600, replaced atomically. Exit status: 0 done (or nothing to restore); 1 a restore
    failed; 2 bad usage; 3 some host could not be reached.
    """
    from bastion.audit.apply_run import HostScripts, apply_work, restore_latest_script
    from bastion.cli.fanout import prologue

    try:
        script = restore_latest_script(stamp)
    except ValueError as exc:
        raise UsageError(str(exc), source="--stamp") from None
    start = prologue(
        inventory_of(inventory),
        selection_from(all_hosts, group, hosts, selector, exclude),
        forks=forks,
        accept_new=accept_new,
        default_all=True,
    )
    assert start is not None
    targets = start.targets
    options = start.run_options()
    scripts = {h.name: HostScripts(script, "") for h in targets}
    code = EXIT_OK
    for result in _execute(targets, options, apply_work(scripts, verify=False), None):
        restored = [
            line[11:] for line in result.stdout.split("\n") if line.startswith("@@restored ")
        ]
        for item in restored:
            user, _, when = item.partition(" ")
            sys.stdout.write(f"{result.host}: restored {_visible(user)} from backup {when}\n")
        if result.status.value == "unreachable":
            sys.stderr.write(f"bastion: {result.host}: {_visible(result.error or '')}\n")
            code = EXIT_NOT_REACHED
        elif not result.succeeded:
            sys.stderr.write(f"bastion: {result.host}: a restore failed\n")
            code = max(code, EXIT_SOME_FAILED)
        elif not restored:
            sys.stdout.write(f"{result.host}: no backup to restore\n")
    raise typer.Exit(code)


def _execute(
    targets: list[Host], options: RunOptions, work: HostWork, rolling: BatchPlan | None
) -> list[HostResult]:
    """Run ``work`` on every target, in rolling batches when asked (canary first)."""
    import asyncio

    from bastion.batches import run_in_batches
    from bastion.executor import execute_work

    def ignore(event: object) -> None:
        del event

    if rolling is None:
        return asyncio.run(execute_work(targets, options, ignore, work))

    async def rolled() -> list[HostResult]:
        results, report = await run_in_batches(
            targets, rolling, lambda batch: execute_work(batch, options, ignore, work)
        )
        if report.stopped:
            sys.stderr.write(f"bastion: stopped: {report.stopped}\n")
        return results

    return asyncio.run(rolled())


def _report_apply(result: HostResult, files: list[FilePlan]) -> bool:
    """Print what happened on one host; whether it went as planned."""
    from bastion.audit.apply_run import outcome_of

    done = outcome_of(result, files)
    out = sys.stdout
    for account, path in done.written:
        if done.reverted is None:
            out.write(_visible(f"{result.host}: written {account} {path}") + "\n")
    for account, path in done.failed:
        out.write(_visible(f"{result.host}: FAILED {account} {path} (nothing replaced)") + "\n")
    if done.reverted is not None:
        for account, path in done.written:
            line = (
                f"{result.host}: REVERTED {account} {path}: a new login as bastion failed "
                f"after writing ({done.reverted}); the backup is back"
            )
            out.write(_visible(line) + "\n")
    if result.status.value == "skipped":
        out.write(f"{result.host}: skipped ({result.error}): nothing written\n")
    if result.succeeded and not done.failed:
        return True
    if result.status.value != "skipped":
        reason = result.error or result.stderr.strip()[-200:] or "write failed"
        sys.stderr.write(f"bastion: {result.host}: {_visible(reason)}\n")
    return False


def _visible(text: str) -> str:
    """``text`` with a host's control characters shown, never interpreted (render.visible)."""
    from bastion.render.visible import visible

    return visible(text)


def _print_plan(plan: HostPlan, check: bool) -> None:
    """The plan of one host; what came from the host (comments, paths) with controls escaped."""

    def say(line: str) -> None:
        sys.stdout.write(_visible(line) + "\n")

    for note in plan.notes:
        say(f"{plan.host}: note: {note}")
    if plan.refused:
        say(f"{plan.host}: REFUSED: {plan.refused}")
    changed = [f for f in plan.files if f.changes]
    if not changed and not plan.refused:
        say(f"{plan.host}: no change")
    for file_plan in changed:
        say(f"{plan.host}: {file_plan.account} {file_plan.path}")
        for change in file_plan.changes:
            say(f"  {change.sign} {_describe(change)}")
    if changed and check:
        say(f"{plan.host}: --check: nothing written")


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
