"""Copy and fetch as executor work: a host's `FileTransfer` session, under ``--timeout``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bastion.executor import HostWork
from bastion.models import Host, HostResult, Status
from bastion.transport.base import OutputSink, Transport
from bastion.transport.files import FileTransfer, RemoteFiles

FilesBody = Callable[[RemoteFiles, Host, OutputSink], Awaitable[HostResult]]
"""One host's copy or fetch, given its open files."""


def files_work(body: FilesBody, timeout: float | None) -> HostWork:
    """Run ``body`` on each host over its transport's file transfer, within ``timeout``.

    A host whose transport cannot transfer files fails with that reason; the others go on.
    """

    async def work(transport: Transport, host: Host, sink: OutputSink) -> HostResult:
        if not isinstance(transport, FileTransfer):
            return HostResult(
                host=host.name,
                address=host.address,
                status=Status.FAILED,
                error=f"transport {transport.name!r} cannot transfer files "
                "(copy and fetch need transport: asyncssh)",
            )
        session = transport.with_files(host, lambda files: body(files, host, sink))
        try:
            return await asyncio.wait_for(session, timeout)
        except TimeoutError:
            return HostResult(
                host=host.name,
                address=host.address,
                status=Status.TIMEOUT,
                error=f"timed out after {timeout:g}s",
            )

    return work
