"""A step's action on one host: rendered from the context, then performed over the transport.

Commands go through `executor.command_work` (so ``durable`` steps are `DurableJob`\\ s, as with
``run --durable``); ``copy``/``template`` through `transfer.copy`; ``fetch`` through
`transfer.fetch`. No second executor: this module only prepares what those already do.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import shlex
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from bastion.command import with_sudo
from bastion.executor import RunOptions, command_work
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
from bastion.playbook.template import render
from bastion.private_files import UnsafeLocation, open_private_dir, private_subdir
from bastion.runrecord import file_stem
from bastion.transfer.copy import CopyOptions, Owner, copy_changes, copy_to_host
from bastion.transfer.fetch import FetchOptions, fetch_from_host, host_directory
from bastion.transfer.report import failure_lines, file_result
from bastion.transfer.sources import plan_copy
from bastion.transfer.work import files_work
from bastion.transport.base import OutputSink, Transport
from bastion.transport.files import RemoteFiles

WAIT_GRACE_S = 30.0
"""How much longer than its own timeout a wait_for command may take before it is killed."""


@dataclass(frozen=True, slots=True)
class Command:
    """A shell command to run (run, script, wait_for); ``stdin`` for scripts."""

    text: str
    display: str
    stdin: bytes | None = None
    timeout: float | None = None


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
    step: Step, context: Mapping[str, object], path: Path, *, check: bool = False
) -> Prepared:
    """The step's action rendered for one host; raises `PlaybookError` on undefined names."""
    action = step.action
    if isinstance(action, RunAction):
        command = render(action.command, context, path, quoted=True)
        display = command
        return Command(with_sudo(command) if step.sudo else command, display, timeout=step.timeout)
    if isinstance(action, ScriptAction):
        args = [render(arg, context, path, quoted=False) for arg in action.args]
        text = " ".join(["sh -s --", shlex.join(args)]).rstrip()
        display = f"script {action.src.name} {shlex.join(args)}".rstrip()
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
    return _wait_command(action, step, context, path, check=check)


def _wait_command(
    action: WaitForAction, step: Step, context: Mapping[str, object], path: Path, *, check: bool
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
        probe = f"sh -c {shlex.quote(command)} </dev/null"
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
    text = f"sh -c {shlex.quote(script)}"
    display = f"wait for {what}"
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
            # The destination's directory is walked and opened without following another
            # user's symlinks, and below dest/ (HOST/...) without following any symlink at all
            # (private_files); the file is then placed relative to that descriptor.
            try:
                if into_dir:
                    below = [file_stem(host.name), *file.relative_to(fetched).parts[:-1]]
                    parent = _open_below(local, below)
                else:
                    parent = open_private_dir(target.parent)
            except (UnsafeLocation, OSError) as exc:
                reason = exc.message if isinstance(exc, UnsafeLocation) else str(exc)
                failed = f"cannot write {target}: {reason}"
                return replace(result, status=Status.FAILED, error=failed, stdout="")
            try:
                if _same_content(file, parent, target.name):
                    if _mode_in(parent, target.name) == download.mode:
                        unchanged.append(str(target))
                        continue
                    _chmod_in(parent, target.name, download.mode)
                    changed.append(str(target))
                    continue
                os.chmod(file, download.mode)
                os.replace(file, target.name, dst_dir_fd=parent)
            finally:
                os.close(parent)
            changed.append(str(target))
    lines = [f"changed {p}" for p in changed] + [
        f"{len(changed)} changed, {len(unchanged)} unchanged"
    ]
    text = "".join(f"{line}\n" for line in lines)
    sink("stdout", text)
    report = FileReport(kind="fetch", changed=tuple(changed), unchanged=tuple(unchanged))
    return replace(result, stdout=text, files=report)


def _chmod_in(parent: int, name: str, mode: int) -> None:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _open_below(root: Path, parts: list[str]) -> int:
    """``root/parts...`` as a directory descriptor, each level made 0700, never a symlink."""
    fd = open_private_dir(root)
    try:
        for depth, part in enumerate(parts):
            try:
                opened = private_subdir(fd, part)
            except OSError as exc:
                where = root.joinpath(*parts[: depth + 1])
                if exc.errno == errno.ELOOP or where.is_symlink():
                    raise OSError(f"{where} is a symlink: refusing to follow it") from exc
                raise
            os.close(fd)
            fd = opened
    except BaseException:
        os.close(fd)
        raise
    return fd


def _mode_in(parent: int, name: str) -> int:
    return os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode & 0o7777


def _same_content(new: Path, parent: int, name: str) -> bool:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as handle:
        old_sum = hashlib.file_digest(handle, "sha256").hexdigest()
    with new.open("rb") as handle:
        return old_sum == hashlib.file_digest(handle, "sha256").hexdigest()
