"""A fake transport for tests of what runs on top of the executor (the playbook engine...).

`FakeTransport` implements the `Transport` protocol (`transport.base`) with scripted replies,
in-memory files per host and a log of every call; no SSH, no shell. Inject it through
`RunOptions.make_transport`::

    fake = FakeTransport({"hostname": Reply("node1\\n")})
    options = RunOptions(make_transport=fake.factory)

A reply is looked up by ``(host name, command)`` first, then by ``command``, then the
``default``; a reply may be a `Reply`, a list of them (one per call, the last one repeating:
retries), or a function of the `Call` (which may read and change ``fake.files``). A command
with no reply is a failed result whose stderr says so, and is listed in ``unexpected``.

It is also a `FileTransfer`: ``fetch`` reads ``fake.files[host]`` (absolute paths; the home is
``/root``), and file writes (``put``, ``mkdir``, ``rename``...) change it. The helper commands
that ``copy`` runs (``RemoteFiles.exec``) go through the replies like any command; copy's
real semantics (stat, hashes, atomic rename as root) stay tested on the lab.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from bastion.models import Host, HostResult, Reason, Status
from bastion.transport.base import CommandSpec, ConnectOptions, Link, LinkFailure, OutputSink
from bastion.transport.files import ExecResult, FilesWork, RemoteEntry, RemoteFileError

HOME = "/root"


@dataclass(frozen=True, slots=True)
class Reply:
    """What a host answers: output, exit status, or (``unreachable``) a connection error."""

    stdout: str = ""
    stderr: str = ""
    exit_status: int = 0
    unreachable: str | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """One command a host was asked to run."""

    host: str
    command: str
    stdin: bytes | None
    timeout: float | None
    files: dict[str, bytes] = field(repr=False, compare=False, default_factory=dict)
    """This host's in-memory files (path -> content), for replies that are functions."""


Scripted = Reply | Sequence[Reply] | Callable[[Call], Reply]


class FakeTransport:
    """Scripted replies, in-memory files and a call log, behind the `Transport` protocol."""

    name = "fake"

    def __init__(
        self,
        replies: Mapping[str | tuple[str, str], Scripted] | None = None,
        *,
        default: Scripted | None = None,
        files: Mapping[str, Mapping[str, bytes]] | None = None,
    ) -> None:
        self.replies: dict[str | tuple[str, str], Scripted] = dict(replies or {})
        self.default = default
        self.files: dict[str, dict[str, bytes]] = {h: dict(f) for h, f in (files or {}).items()}
        self.calls: list[Call] = []
        self.unexpected: list[Call] = []
        self._turns: dict[tuple[str, str], int] = {}
        self.closed = 0

    def factory(self, name: str, options: ConnectOptions) -> FakeTransport:
        """For `RunOptions.make_transport`: this one fake, whatever transport is asked for."""
        return self

    def commands(self, host: str | None = None) -> list[str]:
        """The commands run so far (on ``host`` only, if given), in order."""
        return [c.command for c in self.calls if host is None or c.host == host]

    async def run(self, host: Host, spec: CommandSpec, on_output: OutputSink) -> HostResult:
        """Answer ``spec`` from the script, streaming the reply's output to ``on_output``."""
        call = Call(
            host.name, spec.command, spec.stdin, spec.timeout, self.files.setdefault(host.name, {})
        )
        self.calls.append(call)
        reply = self._reply(call)
        if reply is None:
            self.unexpected.append(call)
            reply = Reply(stderr=f"fake: no reply scripted for {spec.command!r}\n", exit_status=127)
        if reply.unreachable is not None:
            return HostResult(host.name, host.address, Status.UNREACHABLE, error=reply.unreachable)
        if reply.stdout:
            on_output("stdout", reply.stdout)
        if reply.stderr:
            on_output("stderr", reply.stderr)
        status = Status.OK if reply.exit_status == 0 else Status.FAILED
        error = None if status is Status.OK else f"exit status {reply.exit_status}"
        return HostResult(
            host.name,
            host.address,
            status,
            exit_status=reply.exit_status,
            stdout=reply.stdout,
            stderr=reply.stderr,
            error=error,
        )

    def _reply(self, call: Call) -> Reply | None:
        key: str | tuple[str, str] = (call.host, call.command)
        scripted = self.replies.get(key)
        if scripted is None:
            key = call.command
            scripted = self.replies.get(key, self.default)
        if scripted is None:
            return None
        if isinstance(scripted, Reply):
            return scripted
        if callable(scripted):
            return scripted(call)
        turn = self._turns.get((call.host, call.command), 0)
        self._turns[(call.host, call.command)] = turn + 1
        return scripted[min(turn, len(scripted) - 1)]

    async def with_files(self, host: Host, work: FilesWork) -> HostResult:
        """Run ``work`` on ``host``'s in-memory files (`FileTransfer`)."""
        return await work(_MemoryFiles(self, host))

    async def close(self) -> None:
        """Count closes (the executor closes every transport it made)."""
        self.closed += 1

    async def open_link(self, host: Host, *, retry: bool) -> Link:
        """The fake has no plain connections: durable jobs need the lab."""
        raise LinkFailure(
            "the fake transport runs no durable jobs", reason=Reason.NO_SESSION, transient=False
        )


class _MemoryFiles:
    """One host's ``fake.files`` behind the `RemoteFiles` protocol (directories implied)."""

    def __init__(self, fake: FakeTransport, host: Host) -> None:
        self._fake = fake
        self._host = host
        self._files = fake.files.setdefault(host.name, {})
        self._dirs: set[str] = {"/", HOME}
        self._modes: dict[str, int] = {}

    def _path(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(HOME, path))

    def _is_dir(self, path: str) -> bool:
        prefix = path.rstrip("/") + "/"
        return path in self._dirs or any(name.startswith(prefix) for name in self._files)

    async def exec(self, command: str, stdin: bytes | None = None) -> ExecResult:
        done = await self._fake.run(self._host, CommandSpec(command, None, stdin), _quiet)
        return ExecResult(done.exit_status, done.stdout.encode(), done.stderr.encode())

    async def home(self) -> str:
        return HOME

    async def stat(self, path: str) -> RemoteEntry | None:
        path = self._path(path)
        name = posixpath.basename(path) or "/"
        if path in self._files:
            size = len(self._files[path])
            return RemoteEntry(name, "file", size, self._modes.get(path, 0o644))
        if self._is_dir(path):
            return RemoteEntry(name, "dir", 0, 0o755)
        return None

    async def scandir(self, path: str) -> list[RemoteEntry]:
        path = self._path(path)
        if not self._is_dir(path):
            raise RemoteFileError(path, "not a directory")
        prefix = path.rstrip("/") + "/"
        names = {
            name[len(prefix) :].split("/", 1)[0] for name in self._files if name.startswith(prefix)
        }
        names |= {d[len(prefix) :].split("/", 1)[0] for d in self._dirs if d.startswith(prefix)}
        entries = [await self.stat(prefix + name) for name in sorted(names)]
        return [entry for entry in entries if entry is not None]

    async def readlink(self, path: str) -> str:
        """The in-memory files hold no symlinks."""
        raise RemoteFileError(self._path(path), "not a symlink")

    async def mkdir(self, path: str, *, parents: bool = False) -> None:
        self._dirs.add(self._path(path))

    async def put(self, source: Path, path: str, mode: int) -> None:
        path = self._path(path)
        self._files[path] = source.read_bytes()
        self._modes[path] = mode

    async def get(self, path: str, sink: BinaryIO) -> None:
        path = self._path(path)
        if path not in self._files:
            raise RemoteFileError(path, "no such file")
        sink.write(self._files[path])

    async def chmod(self, path: str, mode: int) -> None:
        self._modes[self._path(path)] = mode

    async def rename(self, source: str, target: str) -> None:
        source, target = self._path(source), self._path(target)
        if source not in self._files:
            raise RemoteFileError(source, "no such file")
        self._files[target] = self._files.pop(source)
        self._modes[target] = self._modes.pop(source, 0o644)

    async def remove(self, path: str) -> None:
        self._files.pop(self._path(path), None)


def _quiet(stream: object, text: str) -> None:
    """Output of a files helper command: not the step's output."""
