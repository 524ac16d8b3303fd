"""The agent daemon: ``python -m bastion.agent.server --persist SECONDS --idle SECONDS``.

Started by `bastion.agent.lifecycle.start`, in its own session. It takes ``agent.lock`` (one
agent per user), listens on ``agent.sock`` (0600, in the 0700 directory of `paths`), checks
every client's uid with SO_PEERCRED and refuses other users, runs requests through the
`ConnectionPool`, closes connections idle for ``--idle`` and exits, removing its socket, once
nothing has used it for ``--persist``. It logs what it does to ``agent.log`` (0600): never a
command's output, its standard input or anything secret.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bastion.agent.flow import ClientFlow
from bastion.agent.paths import (
    LOCK_NAME,
    LOG_NAME,
    SOCKET_NAME,
    ensure_private_dir,
    peer_credentials,
)
from bastion.agent.pool import ConnectionPool
from bastion.agent.protocol import (
    LINE_LIMIT,
    VERSION,
    Message,
    decode,
    encode,
    host_from_wire,
    jumps_from_wire,
    options_from_wire,
    result_to_wire,
    stdin_from_wire,
)
from bastion.limits import raise_soft_limit_to_hard
from bastion.models import HostResult, Reason, Status, Stream
from bastion.private_files import open_private
from bastion.transport.base import CommandSpec


class AgentLog:
    """Timestamped lines in the 0600 agent log."""

    def __init__(self, path: Path) -> None:
        self._fd = open_private(path, "a")

    def __call__(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.write(self._fd, f"{stamp} [{os.getpid()}] {message}\n".encode())


class AgentServer:
    """Serves clients on the socket until stopped or unused for ``persist_s``."""

    def __init__(self, directory: Path, persist_s: float, idle_s: float, log: AgentLog) -> None:
        self.directory = directory
        self.socket_path = directory / SOCKET_NAME
        self.persist_s = persist_s
        self.pool = ConnectionPool(idle_s, log)
        self._log = log
        self._started_wall = time.time()
        self._started = time.monotonic()
        self._last_activity = time.monotonic()
        self._clients = 0
        self._requests = 0
        self._stopping = asyncio.Event()
        self._inode: int | None = None
        """The socket file's inode once bound: removed at exit only if it is still ours."""

    async def serve(self) -> None:
        listener = self._bind()
        server = await asyncio.start_unix_server(self._client, sock=listener, limit=LINE_LIMIT)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(signum, self._stopping.set)
        self._log(
            f"started: socket {self.socket_path}, persist {self.persist_s:g}s, "
            f"idle {self.pool.idle_s:g}s"
        )
        watchdog = asyncio.ensure_future(self._watch())
        try:
            await self._stopping.wait()
        finally:
            watchdog.cancel()
            server.close()
            self._remove_socket(listener)
            await self.pool.close()
            self._log(f"stopped after {time.monotonic() - self._started:.0f}s")

    def _bind(self) -> socket.socket:
        """Listen on the socket path, created 0600 and renamed into place (a stale one goes)."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        staging = self.directory / f".{SOCKET_NAME}.{os.getpid()}"
        staging.unlink(missing_ok=True)
        umask = os.umask(0o177)
        try:
            listener.bind(str(staging))
        finally:
            os.umask(umask)
        os.chmod(staging, 0o600)
        listener.listen(128)
        os.replace(staging, self.socket_path)
        self._inode = os.stat(self.socket_path).st_ino
        return listener

    def _remove_socket(self, listener: socket.socket) -> None:
        with contextlib.suppress(OSError):
            if os.stat(self.socket_path).st_ino == self._inode:
                self.socket_path.unlink()
        listener.close()

    async def _watch(self) -> None:
        """Close idle connections; stop once unused for ``persist_s``."""
        tick = max(0.2, min(1.0, self.pool.idle_s / 4, self.persist_s / 4))
        while True:
            await asyncio.sleep(tick)
            self.pool.reap()
            if self._clients or self.pool.busy:
                self._last_activity = time.monotonic()
            elif time.monotonic() - self._last_activity > self.persist_s:
                self._log(f"unused for {self.persist_s:g}s: exiting")
                self._stopping.set()
                return

    def status(self) -> Message:
        unused = time.monotonic() - self._last_activity
        return {
            "version": VERSION,
            "pid": os.getpid(),
            "socket": str(self.socket_path),
            "log": str(self.directory / LOG_NAME),
            "started": datetime.fromtimestamp(self._started_wall, UTC).isoformat(),
            "uptime_s": round(time.monotonic() - self._started, 1),
            "persist_s": self.persist_s,
            "idle_s": self.pool.idle_s,
            # This status request is a client: the deadline counts from when it is over.
            "exits_in_s": round(max(0.0, self.persist_s - (0 if self._clients > 1 else unused)), 1),
            "requests": self._requests,
            "connections": self.pool.describe(),
        }

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        pid, uid = peer_credentials(sock)
        if uid != os.getuid():
            self._log(f"refused a client of uid {uid} (pid {pid}): not this agent's user")
            with contextlib.suppress(OSError):
                writer.write(encode({"error": "refused: this agent serves another user"}))
                writer.close()
            return
        self._clients += 1
        self._last_activity = time.monotonic()
        tasks: dict[object, asyncio.Task[None]] = {}
        flow = ClientFlow(writer)

        def send(message: Message) -> None:
            if not writer.is_closing():
                writer.write(encode(message))

        send({"hello": VERSION, "pid": os.getpid()})
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, OSError):
                    break
                if not line:
                    break
                self._last_activity = time.monotonic()
                if self._handle(line, send, flow, tasks) == "stop":
                    self._log(f"stop requested by pid {pid}")
                    with contextlib.suppress(OSError):
                        await writer.drain()
                    self._stopping.set()
        finally:
            # The client went away (a run interrupted): stop what it still had running.
            for task in list(tasks.values()):
                task.cancel()
            flow.close()
            if tasks:
                await asyncio.gather(*tasks.values(), return_exceptions=True)
            self._clients -= 1
            self._last_activity = time.monotonic()
            writer.close()

    def _handle(
        self,
        line: bytes,
        send: Callable[[Message], None],
        flow: ClientFlow,
        tasks: dict[object, asyncio.Task[None]],
    ) -> str | None:
        """Answer one request line; its op."""
        try:
            message = decode(line)
        except ValueError as exc:
            send({"id": None, "error": f"bad request: {exc}"})
            return None
        request_id = message.get("id")
        op = message.get("op")
        if op == "run":
            self._requests += 1
            task = asyncio.ensure_future(self._run(message, send, flow))
            tasks[request_id] = task
            task.add_done_callback(lambda _: tasks.pop(request_id, None))
        elif op == "cancel":
            running = tasks.get(request_id)
            if running is not None:
                running.cancel()
        elif op == "status":
            send({"id": request_id, "status": self.status()})
        elif op == "stop":
            send({"id": request_id, "stopping": True})
        else:
            send({"id": request_id, "error": f"bad request: unknown op {op!r}"})
        return str(op)

    async def _run(
        self, message: Message, send: Callable[[Message], None], flow: ClientFlow
    ) -> None:
        request_id = message.get("id")
        try:
            key = json.dumps([message["options"], message.get("jumps") or {}], sort_keys=True)
            wire_options, wire_jumps = message["options"], message.get("jumps") or {}
            transport = self.pool.transport_for(
                key, lambda: options_from_wire(wire_options, jumps_from_wire(wire_jumps))
            )
            host = host_from_wire(message["host"])
            timeout = message.get("timeout")
            spec = CommandSpec(
                str(message["command"]),
                None if timeout is None else float(timeout),
                stdin_from_wire(message.get("stdin")),
                keep_output_chars=0,  # the output is streamed to the client, never kept here
                flow=flow,  # and read from the host only as fast as the client reads it
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            send({"id": request_id, "error": f"bad request: {type(exc).__name__}: {exc}"})
            return

        def on_output(stream: Stream, text: str) -> None:
            send({"id": request_id, "stream": stream, "data": text})

        try:
            result = await transport.run(host, spec, on_output)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not take the agent or other hosts down
            self._log(f"internal error on {host.name}: {type(exc).__name__}: {exc}")
            result = HostResult(
                host=host.name,
                address=host.address,
                status=Status.FAILED,
                error=f"internal error in the agent (please report): {type(exc).__name__}",
                reason=Reason.INTERNAL,
            )
        send({"id": request_id, "result": result_to_wire(result)})


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bastion.agent.server")
    parser.add_argument("--persist", type=float, required=True, help="exit after this idle")
    parser.add_argument("--idle", type=float, required=True, help="close connections idle this")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    directory = ensure_private_dir()
    os.chdir("/")
    lock_fd = open_private(directory / LOCK_NAME, "a")
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another agent of this user is running; its socket serves
    log = AgentLog(directory / LOG_NAME)
    soft_before, soft_after = raise_soft_limit_to_hard()
    if soft_after > soft_before:
        log(f"open-files limit raised from {soft_before} to {soft_after}")
    server = AgentServer(directory, args.persist, args.idle, log)
    asyncio.run(server.serve())
    os.close(lock_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
