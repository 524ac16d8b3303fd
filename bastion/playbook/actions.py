"""A step's action on one host: rendered from the context, then performed over the transport.

Commands go through `executor.command_work` (so ``durable`` steps are `DurableJob`\\ s, as with
``run --durable``); ``copy``/``template`` through `transfer.copy`; ``fetch`` through
`transfer.fetch`. No second executor: this module only prepares what those already do.
"""

from __future__ import annotations

import hashlib
import math
import os
import shlex
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from bastion.command import with_sudo
from bastion.executor import MOSH_MODES, RunOptions, command_work
from bastion.models import FileReport, Host, HostResult, Status
from bastion.playbook.model import (
    CopyAction,
    FetchAction,
    RunAction,
    ScriptAction,
    Step,
    Text,
    WaitForAction,
)
from bastion.playbook.secret_delivery import (
    ROOT_SHELL_FROM_STDIN,
    STAGE,
    launcher,
    script_with_args,
    staged_body,
    stdin_form,
)
from bastion.playbook.template import Masker, render
from bastion.private_files import private_dir
from bastion.transfer.copy import CopyOptions, Owner, copy_changes, copy_to_host
from bastion.transfer.fetch import FetchOptions, fetch_from_host, host_directory
from bastion.transfer.report import failure_lines, file_result
from bastion.transfer.sources import plan_copy
from bastion.transfer.work import files_work
from bastion.transport.base import CommandSpec, OutputSink, Transport
from bastion.transport.files import RemoteFiles

STAGE_TIMEOUT_S = 60.0
"""How long writing a durable step's secret script to its file may take."""
WAIT_GRACE_S = 30.0
"""How much longer than its own timeout a wait_for command may take before it is killed."""


@dataclass(frozen=True, slots=True)
class Command:
    """A shell command to run (run, script, wait_for); ``stdin`` for scripts.

    ``staged``: the command holds a secret, so ``text`` only reads it from stdin; a durable
    job (which has no stdin) runs this script from a 0600 file instead (`secret_delivery`).
    """

    text: str
    display: str
    stdin: bytes | None = None
    timeout: float | None = None
    staged: bytes | None = None
    sudo: bool = False


def _command(
    script: str, display: str, step: Step, masker: Masker | None, timeout: float | None
) -> Command:
    """``script`` as given to the login shell, or, holding a secret, on stdin."""
    if masker is None or not masker.reveals(script):
        return Command(with_sudo(script) if step.sudo else script, display, timeout=timeout)
    text, stdin = stdin_form(script, sudo=step.sudo)
    return Command(text, display, stdin, timeout, staged_body(script), step.sudo)


@dataclass(frozen=True, slots=True)
class Upload:
    """copy or template: a local file, or text to write, to ``dest`` on the host."""

    dest: str
    src: Path | None
    content: str | None
    mode: int | None
    owner: str | None


@dataclass(frozen=True, slots=True)
class Download:
    """fetch: ``src`` on the host to ``dest`` here (a directory if it ends with /)."""

    src: str
    dest: str
    mode: int = 0o600


Prepared = Command | Upload | Download


def prepare(  # noqa: PLR0911 (one return per action)
    step: Step,
    context: Mapping[str, object],
    path: Path,
    *,
    check: bool = False,
    masker: Masker | None = None,
) -> Prepared:
    """The step's action rendered for one host; raises `PlaybookError` on undefined names.

    With ``masker``, a command that holds one of its secrets is sent on stdin, never as argv.
    """
    action = step.action
    if isinstance(action, RunAction):
        command = render(action.command, context, path, quoted=True)
        return _command(command, command, step, masker, step.timeout)
    if isinstance(action, ScriptAction):
        args = [render(arg, context, path, quoted=False) for arg in action.args]
        text = " ".join(["sh -s --", shlex.join(args)]).rstrip()
        display = f"script {action.src.name} {shlex.join(args)}".rstrip()
        if masker is not None and masker.reveals(shlex.join(args)):
            given = script_with_args(action.body, args)
            shell = ROOT_SHELL_FROM_STDIN if step.sudo else "sh -s"
            staged = b'rm -f -- "$0"\n' + given
            return Command(shell, display, given, step.timeout, staged, step.sudo)
        return Command(with_sudo(text) if step.sudo else text, display, action.body, step.timeout)
    if isinstance(action, CopyAction):
        dest = render(action.dest, context, path, quoted=False)
        if action.template is not None and action.template_body is not None:
            body = render(Text(action.template_body, 1), context, action.template, quoted=False)
            return Upload(dest, None, body, action.mode, action.owner)
        if action.content is not None:
            content = render(action.content, context, path, quoted=False)
            return Upload(dest, None, content, action.mode, action.owner)
        return Upload(dest, action.src, None, action.mode, action.owner)
    if isinstance(action, FetchAction):
        return Download(
            render(action.src, context, path, quoted=False),
            render(action.dest, context, path, quoted=False),
            action.mode,
        )
    return _wait_command(action, step, context, path, check=check, masker=masker)


def _wait_command(
    action: WaitForAction,
    step: Step,
    context: Mapping[str, object],
    path: Path,
    *,
    check: bool,
    masker: Masker | None,
) -> Command:
    if action.port is not None and action.host is not None:
        host = shlex.quote(render(action.host, context, path, quoted=False))
        port = action.port
        probe = (
            f"(command -v nc >/dev/null 2>&1 && nc -z {host} {port}) || "
            f"(command -v bash >/dev/null 2>&1 && bash -c 'exec 3<>/dev/tcp/'{host}'/{port}')"
        )
        what = f"port {port} on {host}"
    elif action.file is not None:
        file = render(action.file, context, path, quoted=False)
        probe = f"test -e {shlex.quote(file)}"
        what = f"file {file}"
    else:
        assert action.command is not None
        command = render(action.command, context, path, quoted=True)
        # A subshell of the loop's shell, not `sh -c`: the command stays out of argv.
        probe = f"(\n{command}\n) </dev/null"
        what = "the command"
    timeout = 0.0 if check else action.timeout
    ready = shlex.quote(f"ready: {what}")
    late = shlex.quote(f"not ready after {timeout:g}s: {what}")
    script = (
        f"end=$(( $(date +%s) + {math.ceil(timeout)} ))\n"
        "while :; do\n"
        f"  if {probe} >/dev/null 2>&1; then echo {ready}; exit 0; fi\n"
        f'  if [ "$(date +%s)" -ge "$end" ]; then echo {late} >&2; exit 1; fi\n'
        f"  sleep {action.interval:g}\n"
        "done"
    )
    display = f"wait for {what}"
    if masker is not None and masker.reveals(script):
        return _command(script, display, step, masker, timeout + WAIT_GRACE_S)
    text = f"sh -c {shlex.quote(script)}"
    return Command(with_sudo(text) if step.sudo else text, display, timeout=timeout + WAIT_GRACE_S)


async def perform(
    prepared: Prepared,
    step: Step,
    transport: Transport,
    host: Host,
    sink: OutputSink,
    options: RunOptions,
) -> HostResult:
    """Do the prepared action on ``host``; every outcome is a `HostResult`."""
    if isinstance(prepared, Command):
        if prepared.staged is not None and (
            step.durable or options.transport_of(host) in MOSH_MODES
        ):
            staged = await _stage(prepared, transport, host)
            if isinstance(staged, HostResult):
                return staged
            prepared = staged
        command_options = replace(
            options,
            timeout=prepared.timeout,
            stdin=prepared.stdin,
            durable=step.durable,
            keep_output_chars=None,
        )
        work = command_work({host.name: prepared.text}, command_options)
        return await work(transport, host, sink)
    if isinstance(prepared, Upload):
        return await _upload(prepared, step, transport, host, sink)
    return await _download(prepared, step, transport, host, sink)


async def _stage(prepared: Command, transport: Transport, host: Host) -> Command | HostResult:
    """A durable step's secret script written to a 0600 file on the host: the job runs that."""
    assert prepared.staged is not None
    spec = CommandSpec(STAGE, STAGE_TIMEOUT_S, prepared.staged)
    done = await transport.run(host, spec, lambda stream, text: None)
    path = done.stdout.strip()
    if done.status is not Status.OK or not path.startswith("/") or "\n" in path:
        if done.status is Status.OK:
            done = replace(done, status=Status.FAILED, error="cannot write the secret script")
        return done
    return replace(prepared, text=launcher(path, sudo=prepared.sudo), stdin=None, staged=None)


async def _upload(
    upload: Upload,
    step: Step,
    transport: Transport,
    host: Host,
    sink: OutputSink,
    *,
    check: bool = False,
) -> HostResult:
    options = CopyOptions(
        mode=upload.mode,
        owner=Owner.parse(upload.owner) if upload.owner else None,
        sudo=step.sudo,
    )
    with tempfile.TemporaryDirectory(prefix="bastion-play-") as scratch:
        if upload.src is not None:
            source = upload.src
        else:
            source = Path(scratch) / (os.path.basename(upload.dest.rstrip("/")) or "content")
            source.write_text(upload.content or "", encoding="utf-8")
            # Without a mode, text written by a playbook lands as 0644, like a new file would.
            source.chmod(0o644 if upload.mode is None else 0o600)
        plan = plan_copy([str(source)], upload.dest, recursive=False)

        async def body(files: RemoteFiles, host: Host, emit: OutputSink) -> HostResult:
            if not check:
                return await copy_to_host(files, host, plan, upload.dest, options, emit)
            changes, failed = await copy_changes(files, plan, upload.dest, options)
            report = FileReport(kind="copy", changed=tuple(changes), failed=tuple(failed))
            lines = [f"would change {path}" for path in changes] + failure_lines(failed)
            return file_result(host, report, lines, emit)

        return await files_work(body, step.timeout)(transport, host, sink)


async def compare_upload(
    upload: Upload, step: Step, transport: Transport, host: Host, sink: OutputSink
) -> HostResult:
    """--check for copy and template: what would change, read-only (``files.changed``)."""
    return await _upload(upload, step, transport, host, sink, check=True)


async def _download(
    download: Download, step: Step, transport: Transport, host: Host, sink: OutputSink
) -> HostResult:
    """Fetch into a private scratch directory, then put each file in place if it differs."""
    local = Path(os.path.expanduser(download.dest))
    into_dir = download.dest.endswith("/") or local.is_dir()
    with tempfile.TemporaryDirectory(prefix="bastion-play-") as scratch:

        async def body(files: RemoteFiles, host: Host, emit: OutputSink) -> HostResult:
            quiet: OutputSink = lambda stream, text: None  # noqa: E731
            return await fetch_from_host(
                files, host, [download.src], Path(scratch), FetchOptions(), quiet
            )

        result = await files_work(body, step.timeout)(transport, host, sink)
        if result.status is not Status.OK:
            if result.stdout:
                sink("stdout", result.stdout)
            return result
        fetched = host_directory(Path(scratch), host.name)
        changed: list[str] = []
        unchanged: list[str] = []
        for file in sorted(p for p in fetched.rglob("*") if p.is_file()):
            if into_dir:
                target = host_directory(local, host.name) / file.relative_to(fetched)
            else:
                target = local
            if _same_content(file, target):
                if _mode_of(target) == download.mode:
                    unchanged.append(str(target))
                    continue
                os.chmod(target, download.mode)
                changed.append(str(target))
                continue
            if into_dir:
                private_dir(target.parent)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(file, download.mode)
            os.replace(file, target)
            changed.append(str(target))
    lines = [f"changed {p}" for p in changed] + [
        f"{len(changed)} changed, {len(unchanged)} unchanged"
    ]
    text = "".join(f"{line}\n" for line in lines)
    sink("stdout", text)
    report = FileReport(kind="fetch", changed=tuple(changed), unchanged=tuple(unchanged))
    return replace(result, stdout=text, files=report)


def _mode_of(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def _same_content(new: Path, old: Path) -> bool:
    try:
        with old.open("rb") as handle:
            old_sum = hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return False
    with new.open("rb") as handle:
        return old_sum == hashlib.file_digest(handle, "sha256").hexdigest()
