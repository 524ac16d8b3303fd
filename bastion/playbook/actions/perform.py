"""A prepared action performed on one host, over the transport.

Commands go through `executor.command_work` (so ``durable`` steps are `DurableJob`\\ s, as with
``run --durable``); ``copy``/``template`` through `transfer.copy`; ``fetch`` through
`transfer.fetch`. No second executor: this module only drives what those already do.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.executor import RunOptions, command_work
from bastion.models import FileReport, Host, HostResult, Status
from bastion.playbook.actions.prepared import Command, Download, Prepared, Upload
from bastion.playbook.secret_delivery import STAGE, launcher
from bastion.private_files import UnsafeLocation, open_private_dir, private_subdir
from bastion.runrecord import file_stem
from bastion.transfer.copy import CopyOptions, Owner, copy_changes, copy_to_host
from bastion.transfer.fetch import FetchOptions, fetch_from_host, host_directory
from bastion.transfer.report import failure_lines, file_result
from bastion.transfer.sources import plan_copy
from bastion.transfer.work import files_work
from bastion.transport.base import CommandSpec, OutputSink, Transport
from bastion.transport.files import RemoteFiles

if TYPE_CHECKING:
    from bastion.playbook.model import Step

STAGE_TIMEOUT_S = 60.0
"""How long writing a durable step's secret script to its file may take."""


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
        if (
            prepared.staged is not None
            and replace(options, durable=step.durable).route_of(host).durable
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
