"""``bastion copy`` on one host: compare, then send only what changed, each file atomically.

1. One helper command reports type, size, mode, owner and sha256 of every destination path
   (`remote_state`); identical files are left alone unless ``--force``.
2. Changed files are uploaded into a staging directory, as one tar stream over one session
   from `TAR_FILES` files on when the host has ``tar``, else one by one over SFTP (open,
   write, close: three requests a file) or, without SFTP, one ``cat`` session each. Without
   ``--sudo``/``--owner`` the staging directory is ``.bastion-XXXXXXXX`` (0700) beside the
   destination, on its file system; with them, a private ``mktemp -d`` of the login user.
3. One helper script per host (through ``sudo -n`` with ``--sudo``) then puts them in place,
   one step per destination directory and mode: ``chmod`` + ``mv``, or ``install`` (mode and
   owner) into a temporary directory beside the destination + ``mv``. Every ``mv`` onto a
   file is a rename: a reader sees the old file or the new one, never half of it. The staging
   directory is removed by the same command.

A path that cannot be written is that path's failure; the host's other paths go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import secrets
import shlex
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

from bastion.errors import UsageError
from bastion.models import FileFailure, FileReport, Host, HostResult
from bastion.transfer.remote_state import STATE_SCRIPT, PathState, parse_state, state_request
from bastion.transfer.report import failure_lines, file_result, listed
from bastion.transfer.sources import CopyPlan, SourceFile
from bastion.transport.base import OutputSink
from bastion.transport.files import BulkUpload, RemoteFileError, RemoteFiles

PARALLEL_FILES = 16
"""Files in flight per host: hides round trips without flooding one connection."""
TAR_FILES = 8
"""From this many changed files, they go as one tar stream when the host has tar (one round
trip instead of three SFTP requests, or one session, per file)."""
DIR_MODE = 0o755


@dataclass(frozen=True, slots=True)
class Owner:
    """``--owner USER[:GROUP]``; either may be a name or a numeric id."""

    user: str
    group: str | None = None

    @classmethod
    def parse(cls, spec: str) -> Owner:
        user, _, group = spec.partition(":")
        if not user or not all(c.isalnum() or c in "._-" for c in user + group):
            raise UsageError(f"bad owner {spec!r}: expected USER or USER:GROUP", source="--owner")
        return cls(user, group or None)

    def matches(self, state: PathState) -> bool:
        user_ok = self.user in (state.user, state.uid)
        return user_ok and (self.group is None or self.group in (state.group, state.gid))

    def install_args(self) -> list[str]:
        args = ["-o", self.user]
        return [*args, "-g", self.group] if self.group else args

    def chown_spec(self) -> str:
        return f"{self.user}:{self.group}" if self.group else self.user


def parse_mode(spec: str) -> int:
    """``--mode 0640`` or ``640``: octal permission bits."""
    try:
        mode = int(spec, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise UsageError(f"bad mode {spec!r}: expected octal such as 0644", source="--mode")
    return mode


@dataclass(frozen=True, slots=True)
class CopyOptions:
    force: bool = False
    mode: int | None = None
    owner: Owner | None = None
    sudo: bool = False
    preserve: bool = False
    """Keep each file's modification time (``--preserve``), as ``scp -p`` and ``rsync -t``."""

    @property
    def staged(self) -> bool:
        """Whether files go through a private directory and a helper script."""
        return self.sudo or self.owner is not None


@dataclass(frozen=True, slots=True)
class _Send:
    source: SourceFile
    target: str
    mode: int


@dataclass(slots=True)
class _Outcome:
    """What happened to each destination path on one host, filled in as the copy goes."""

    sent: list[str] = field(default_factory=list)
    fixed: list[tuple[str, str]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[FileFailure] = field(default_factory=list)

    def fail(self, path: str, reason: str) -> None:
        self.failed.append(FileFailure(path, reason))


@dataclass(slots=True)
class _Work:
    """The comparison's verdict: what to create, send and fix on this host."""

    make_dirs: list[str] = field(default_factory=list)
    sends: list[_Send] = field(default_factory=list)
    chmods: list[tuple[str, int]] = field(default_factory=list)
    chowns: list[str] = field(default_factory=list)
    dir_modes: dict[str, int] = field(default_factory=dict)
    """Directories to make -> their source's mode (others get `DIR_MODE`)."""
    mtimes: dict[str, int] = field(default_factory=dict)
    """``--preserve``: path -> the modification time it must end with."""
    touch_only: list[str] = field(default_factory=list)
    """``--preserve``: identical files whose modification time alone differs."""


def shell_command(script: str | None, *, sudo: bool) -> str:
    """``sh -c SCRIPT``, or ``sh -s`` to read the script from stdin; through ``sudo -n`` if asked.

    ``sudo -n`` fails at once rather than prompt for a password nobody can type.
    """
    shell = "sh -s" if script is None else f"sh -c {shlex.quote(script)}"
    return f"sudo -n {shell}" if sudo else shell


async def copy_to_host(
    files: RemoteFiles,
    host: Host,
    plan: CopyPlan,
    dest: str,
    options: CopyOptions,
    emit: OutputSink,
) -> HostResult:
    """Copy ``plan`` to ``dest`` on one host; every outcome is in the result."""
    outcome = _Outcome()
    root = posixpath.normpath(posixpath.join(await files.home(), dest))
    try:
        work = await _compare(files, plan, root, options, outcome)
    except RemoteFileError as exc:
        outcome.fail(exc.path, exc.reason)
        work = _Work()
    await _apply(files, work, options, outcome)
    return _result(host, outcome, emit)


async def copy_changes(
    files: RemoteFiles, plan: CopyPlan, dest: str, options: CopyOptions
) -> tuple[list[str], list[FileFailure]]:
    """What `copy_to_host` would change on this host, changing nothing (``play --check``)."""
    outcome = _Outcome()
    root = posixpath.normpath(posixpath.join(await files.home(), dest))
    try:
        work = await _compare(files, plan, root, options, outcome)
    except RemoteFileError as exc:
        return [], [FileFailure(exc.path, exc.reason)]
    changes = [*work.make_dirs, *(send.target for send in work.sends)]
    changes += [path for path, _mode in work.chmods] + list(work.chowns) + work.touch_only
    return list(dict.fromkeys(changes)), list(outcome.failed)


async def _compare(
    files: RemoteFiles, plan: CopyPlan, root: str, options: CopyOptions, outcome: _Outcome
) -> _Work:
    if plan.into_dir:
        dirs = [root, *(posixpath.join(root, d) for d in plan.dirs)]
        targets = [posixpath.join(root, f.relpath) for f in plan.files]
        state = await _remote_state(files, dirs, [] if options.force else targets, options)
    else:
        (single,) = plan.files
        inside = posixpath.join(root, single.relpath)
        hashed = [] if options.force else [root, inside]
        state = await _remote_state(files, [root, inside], hashed, options)
        root_state = state.get(root)
        dirs = []
        targets = [inside if root_state is not None and root_state.kind == "dir" else root]
    work = _Work()
    blocked = _Blocked()
    for directory in dirs:
        found = state.get(directory)
        if blocked.ancestor(directory) is not None:
            continue
        if found is None:
            work.make_dirs.append(directory)
            mode = plan.dir_mode(posixpath.relpath(directory, root))
            work.dir_modes[directory] = DIR_MODE if mode is None else mode
        elif found.kind != "dir":
            blocked.block(directory, f"is a {found.type_name}; a directory is needed there")
    for source, target in zip(plan.files, targets, strict=True):
        found = state.get(target)
        if blocked.holds(target):
            continue
        if found is not None and found.kind != "file":
            outcome.fail(target, f"is a {found.type_name}; cannot replace it with a file")
        elif options.force or found is None or found.sha256 != source.sha256:
            mode = options.mode if options.mode is not None else source.mode
            work.sends.append(_Send(source, target, mode))
            if options.preserve:
                work.mtimes[target] = source.mtime
        else:
            _compare_metadata(found, source, target, options, work, outcome)
    blocked.report(outcome)
    return work


def _compare_metadata(
    found: PathState,
    source: SourceFile,
    target: str,
    options: CopyOptions,
    work: _Work,
    outcome: _Outcome,
) -> None:
    """Same content: only ``--mode``, ``--owner`` and ``--preserve``'s mtime can still differ."""
    changed = False
    if options.preserve and found.mtime != source.mtime:
        work.mtimes[target] = source.mtime
        work.touch_only.append(target)
        changed = True
    if options.mode is not None and found.mode != options.mode:
        work.chmods.append((target, options.mode))
        changed = True
    if options.owner is not None and not options.owner.matches(found):
        work.chowns.append(target)
        changed = True
    if not changed:
        outcome.unchanged.append(target)


class _Blocked:
    """Directories that cannot hold files, and how many files were left out because of them."""

    def __init__(self) -> None:
        self._reasons: dict[str, str] = {}
        self._left_out: dict[str, int] = {}

    def block(self, directory: str, reason: str) -> None:
        self._reasons[directory] = reason
        self._left_out[directory] = 0

    def ancestor(self, path: str) -> str | None:
        """The blocked directory above ``path``, if any."""
        parent = posixpath.dirname(path)
        while parent not in self._reasons:
            up = posixpath.dirname(parent)
            if up == parent:
                return None
            parent = up
        return parent

    def holds(self, path: str) -> bool:
        """Whether ``path`` is under a blocked directory (it is then counted as left out)."""
        directory = self.ancestor(path)
        if directory is None:
            return False
        self._left_out[directory] += 1
        return True

    def report(self, outcome: _Outcome) -> None:
        """One failure per blocked directory, however many files it held."""
        for directory, reason in self._reasons.items():
            count = self._left_out[directory]
            files = f" ({count} file{'' if count == 1 else 's'} not copied)" if count else ""
            outcome.fail(directory, reason + files)


async def _remote_state(
    files: RemoteFiles,
    stat_paths: Sequence[str],
    hash_paths: Sequence[str],
    options: CopyOptions,
) -> dict[str, PathState]:
    command = shell_command(STATE_SCRIPT, sudo=options.sudo)
    done = await files.exec(command, state_request(stat_paths, hash_paths))
    if done.exit_status != 0:
        raise RemoteFileError(
            stat_paths[0], f"cannot inspect the destination: {_last_line(done.stderr)}"
        )
    return parse_state(done.stdout)


async def _apply(files: RemoteFiles, work: _Work, options: CopyOptions, outcome: _Outcome) -> None:
    """Create, send and fix what the comparison found, then one helper script per host."""
    try:
        await _apply_content(files, work, options, outcome)
    finally:
        if work.mtimes:
            await _set_mtimes(files, work, options, outcome)


async def _set_mtimes(
    files: RemoteFiles, work: _Work, options: CopyOptions, outcome: _Outcome
) -> None:
    """``--preserve``: one script sets the modification time of every file sent or differing.

    ``touch -t`` in UTC is POSIX (no GNU ``-d @EPOCH``); through ``sudo -n`` with ``--sudo``.
    """
    failed = {failure.path for failure in outcome.failed}
    sent = set(outcome.sent)
    paths = [p for p in work.mtimes if p not in failed and (p in sent or p in work.touch_only)]
    if not paths:
        return
    lines = ["export TZ=UTC0"]
    for index, path in enumerate(paths):
        stamp = time.strftime("%Y%m%d%H%M.%S", time.gmtime(work.mtimes[path]))
        touch = shlex.join(["touch", "-c", "-m", "-t", stamp, "--", path])
        lines.append(f"{touch} 2>/dev/null || echo {index}")
    done = await files.exec(
        shell_command(None, sudo=options.sudo), ("\n".join([*lines, "exit 0", ""])).encode()
    )
    bad = {int(w) for w in done.stdout.decode("ascii", "replace").split() if w.isdigit()}
    for index, path in enumerate(paths):
        if done.exit_status != 0 or index in bad:
            outcome.fail(path, "cannot set its modification time")
        elif path in work.touch_only:
            outcome.fixed.append((path, "mtime"))


async def _apply_content(
    files: RemoteFiles, work: _Work, options: CopyOptions, outcome: _Outcome
) -> None:
    sends = work.sends
    if not options.staged:
        sends = await _make_dirs(files, work, outcome)
        await _fix_modes(files, work.chmods, outcome)
        if not sends:
            return
    elif not (work.make_dirs or sends or work.chmods or work.chowns):
        return
    try:
        staging = await _staging_dir(files, sends, options)
    except RemoteFileError as exc:
        for item in sends:
            outcome.fail(item.target, exc.reason)
        return
    script = _Script(staging, options)
    try:
        await script.upload(files, sends, outcome)
        if options.staged:
            script.add_metadata(work)
        cleanup = f"rc=$?; rm -rf -- {shlex.quote(staging)}; exit $rc"
        command = f"{shell_command(None, sudo=options.sudo)}; {cleanup}"
        done = await files.exec(command, script.text().encode())
    except RemoteFileError as exc:
        await _quietly(files.exec(f"rm -rf -- {shlex.quote(staging)}"))
        already = {failure.path for failure in outcome.failed}
        for item in sends:
            if item.target not in already:
                outcome.fail(item.target, exc.reason)
        return
    script.read_outcome(done.exit_status, done.stdout, done.stderr, outcome)


async def _make_dirs(files: RemoteFiles, work: _Work, outcome: _Outcome) -> list[_Send]:
    """Create the missing directories, each with its mode, in one helper command.

    One round trip however many directories (over SFTP it would be two requests each, and
    without SFTP two sessions each). Parents come first; a directory that cannot be made is
    reported once, with the files below it counted, as before.
    """
    blocked = _Blocked()
    if work.make_dirs:
        lines = []
        for index, directory in enumerate(work.make_dirs):
            # the first is the topmost missing one: its parents may be missing too
            mkdir = ["mkdir", *(["-p"] if index == 0 else []), "--", directory]
            mode = f"{work.dir_modes.get(directory, DIR_MODE):04o}"
            make = f"{shlex.join(mkdir)} 2>&1 && {shlex.join(['chmod', mode, '--', directory])}"
            lines.append(
                f'if ! err=$( {make} 2>&1); then printf "fail {index} %s\\n" '
                '"$(printf "%s" "$err" | head -n 1)"; fi'
            )
        done = await files.exec("sh -s", "\n".join([*lines, "exit 0", ""]).encode())
        reasons: dict[int, str] = {}
        if done.exit_status != 0:
            reasons = dict.fromkeys(range(len(work.make_dirs)), _last_line(done.stderr))
        for line in done.stdout.decode("utf-8", "replace").splitlines():
            word, _, rest = line.partition(" ")
            number, _, reason = rest.partition(" ")
            if word == "fail" and number.isdigit():
                reasons[int(number)] = reason.rsplit(": ", 1)[-1].strip().lower() or "failed"
        for index, directory in enumerate(work.make_dirs):
            if index in reasons and blocked.ancestor(directory) is None:
                blocked.block(directory, f"cannot create the directory: {reasons[index]}")
    sends = [item for item in work.sends if not blocked.holds(item.target)]
    blocked.report(outcome)
    return sends


async def _fix_modes(files: RemoteFiles, chmods: list[tuple[str, int]], outcome: _Outcome) -> None:
    for target, mode in chmods:
        try:
            await files.chmod(target, mode)
        except RemoteFileError as exc:
            outcome.fail(target, exc.reason)
        else:
            outcome.fixed.append((target, "mode"))


async def _staging_dir(files: RemoteFiles, sends: list[_Send], options: CopyOptions) -> str:
    """Where changed files are uploaded before the helper script moves them into place.

    Staged (``--sudo``/``--owner``): a private ``mktemp -d`` of the login user, since it may not
    write the destination. Otherwise a ``.bastion-XXXXXXXX`` directory (0700) beside the
    destination, on its file system, so moving a file into place is a rename.
    """
    if options.staged:
        made = await files.exec("mktemp -d")
        staging = made.stdout.decode("utf-8", "replace").strip()
        if made.exit_status != 0 or not staging.startswith("/"):
            reason = _last_line(made.stderr) or "mktemp -d failed"
            raise RemoteFileError("mktemp", f"cannot make a private directory: {reason}")
        return staging
    anchor = posixpath.commonpath([posixpath.dirname(item.target) for item in sends])
    staging = posixpath.join(anchor, f".bastion-{secrets.token_hex(4)}")
    try:
        await files.mkdir(staging)
        await files.chmod(staging, 0o700)
    except RemoteFileError as exc:
        raise RemoteFileError(anchor, f"cannot write in {anchor}: {exc.reason}") from exc
    return staging


class _Script:
    """The helper script that puts uploaded files into place, and how its output maps back.

    Files are uploaded into ``STAGING/N/NAME``, one ``N`` per destination directory and mode.
    Each group then takes one step: ``chmod`` and ``mv`` (staging beside the destination), or
    ``install`` with mode and owner into a ``mktemp -d`` beside the destination, then ``mv``
    (private staging). Every ``mv`` onto an existing file is a rename: atomic.
    """

    def __init__(self, staging: str, options: CopyOptions) -> None:
        self._staging = staging
        self._options = options
        self._owner_args = options.owner.install_args() if options.owner else []
        self._lines = [
            'fail() { printf "fail %s %s\\n" "$1" "$(printf "%s" "$2" | head -n 1)"; }',
            f"S={shlex.quote(staging)}",
        ]
        self._steps: dict[str, tuple[list[str], str]] = {}
        """Step id -> (the paths it decides, what success means: '' sent, else a fix)."""

    async def upload(self, files: RemoteFiles, sends: list[_Send], outcome: _Outcome) -> None:
        groups: dict[tuple[str, int], list[_Send]] = {}
        for item in sends:
            groups.setdefault((posixpath.dirname(item.target), item.mode), []).append(item)
        stages = [f"{self._staging}/{index}" for index in range(len(groups))]
        uploaded: set[str] = set()
        placed = zip(stages, groups.values(), strict=True)
        if isinstance(files, BulkUpload) and len(sends) >= TAR_FILES:  # tar makes the stages
            members = [
                (item.source.local, f"{index}/{posixpath.basename(item.target)}", item)
                for index, (_stage, items) in enumerate(placed)
                for item in items
            ]
            try:
                streamed = await files.put_many(
                    self._staging, [(local, name) for local, name, _ in members]
                )
            except RemoteFileError as exc:
                for *_, item in members:
                    outcome.fail(item.target, exc.reason)
                return
            if streamed:
                uploaded = {item.target for *_, item in members}
                self._place_all(groups, uploaded)
                return
            placed = zip(stages, groups.values(), strict=True)
        await asyncio.gather(*(files.mkdir(stage) for stage in stages))
        slots = asyncio.Semaphore(PARALLEL_FILES)

        async def upload(item: _Send, stage: str) -> None:
            async with slots:
                try:
                    name = posixpath.basename(item.target)
                    await files.put(item.source.local, f"{stage}/{name}", 0o600)
                except RemoteFileError as exc:
                    outcome.fail(item.target, exc.reason)
                else:
                    uploaded.add(item.target)

        await asyncio.gather(*(upload(item, stage) for stage, items in placed for item in items))
        self._place_all(groups, uploaded)

    def _place_all(self, groups: dict[tuple[str, int], list[_Send]], uploaded: set[str]) -> None:
        for index, ((folder, mode), items) in enumerate(groups.items()):
            ready = [item for item in items if item.target in uploaded]
            if ready:
                self._place_group(str(index), folder, mode, ready)

    def add_metadata(self, work: _Work) -> None:
        """Staged only: create missing directories, fix modes and owners of identical files."""
        if work.make_dirs:
            dir_mode = f"{DIR_MODE:04o}"
            args = ["install", "-d", "-m", dir_mode, *self._owner_args, "--", *work.make_dirs]
            command = shlex.join(args)
            for mode in sorted(set(work.dir_modes.values()) - {DIR_MODE}):
                wanted = [d for d in work.make_dirs if work.dir_modes.get(d) == mode]
                command += " && " + shlex.join(["chmod", f"{mode:04o}", "--", *wanted])
            self._step("dirs", work.make_dirs, "", command, first=True)
        for mode in sorted({mode for _, mode in work.chmods}):
            paths = [target for target, wanted in work.chmods if wanted == mode]
            chmod = shlex.join(["chmod", f"{mode:04o}", "--", *paths])
            self._step(f"mode{mode:o}", paths, "mode", chmod)
        if work.chowns and self._options.owner:
            chown = shlex.join(["chown", self._options.owner.chown_spec(), "--", *work.chowns])
            self._step("owner", work.chowns, "owner", chown)

    def _place_group(self, index: str, folder: str, mode: int, items: list[_Send]) -> None:
        names = [posixpath.basename(item.target) for item in items]
        move = shlex.join(["mv", "-f", "--", *names, folder + "/"])
        if not self._options.staged:
            chmod = shlex.join(["chmod", f"{mode:04o}", "--", *names])
            body = f'cd "$S/{index}" && {chmod} && {move}'
        else:
            template = shlex.quote(posixpath.join(folder, ".bastion.XXXXXXXX"))
            install = shlex.join(["install", "-m", f"{mode:04o}", *self._owner_args, "--", *names])
            body = (
                f't=$(mktemp -d {template}) && cd "$S/{index}" && {install} "$t" '
                f'&& cd "$t" && {move}; rc=$?; cd /; [ -n "$t" ] && rm -rf -- "$t"; exit $rc'
            )
        self._step(index, [item.target for item in items], "", f"( {body} )")

    def _step(
        self, step: str, paths: list[str], fixed: str, command: str, first: bool = False
    ) -> None:
        self._steps[step] = (paths, fixed)
        # "$( (" with a space: "$((" would start an arithmetic expansion
        line = f'if ! err=$( {command} 2>&1); then fail {step} "$err"; fi'
        if first:
            self._lines.insert(2, line)
        else:
            self._lines.append(line)

    def text(self) -> str:
        return "\n".join([*self._lines, "exit 0", ""])

    def read_outcome(
        self, exit_status: int | None, stdout: bytes, stderr: bytes, outcome: _Outcome
    ) -> None:
        failed: dict[str, str] = {}
        if exit_status != 0:
            reason = _last_line(stderr) or f"helper exited with status {exit_status}"
            failed = dict.fromkeys(self._steps, reason)
        for line in stdout.decode("utf-8", "replace").splitlines():
            word, _, rest = line.partition(" ")
            step, _, reason = rest.partition(" ")
            if word == "fail" and step in self._steps:
                failed[step] = reason or "failed"
        for step, (paths, fixed) in self._steps.items():
            for path in paths:
                if step in failed:
                    outcome.fail(path, failed[step])
                elif step == "dirs":
                    continue
                elif fixed:
                    outcome.fixed.append((path, fixed))
                else:
                    outcome.sent.append(path)


async def _quietly(call: Awaitable[object]) -> None:
    """Await a best-effort cleanup; its failure must not hide the copy's own outcome."""
    with contextlib.suppress(RemoteFileError):
        await call


def _last_line(data: bytes) -> str:
    """A helper's reason: its last line on stderr (sudo may warn before it fails)."""
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines()]
    return next((line for line in reversed(lines) if line), "")


def _result(host: Host, outcome: _Outcome, emit: OutputSink) -> HostResult:
    failed_paths = {failure.path for failure in outcome.failed}
    fixes: dict[str, list[str]] = {}
    for path, what in outcome.fixed:
        fixes.setdefault(path, []).append(what)
    sent = set(outcome.sent)
    changed = sorted(path for path in sent | set(fixes) if path not in failed_paths)
    notes = {path: "" if path in sent else f" ({', '.join(fixes[path])})" for path in changed}
    lines = listed([f"changed {path}{notes[path]}" for path in changed], "changed")
    lines += failure_lines(outcome.failed)
    lines.append(
        f"{len(changed)} changed, {len(outcome.unchanged)} unchanged, {len(outcome.failed)} failed"
    )
    report = FileReport(
        kind="copy",
        changed=tuple(changed),
        unchanged=tuple(sorted(outcome.unchanged)),
        failed=tuple(outcome.failed),
    )
    return file_result(host, report, lines, emit)
