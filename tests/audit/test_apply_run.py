"""`access apply`'s per-host work against a scripted transport: write, new login, revert."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from bastion.audit.apply_run import HostScripts, apply_work, restore_latest_script
from bastion.models import Host, Reason, Status
from bastion.transport.base import LinkFailure, LinkLost

HOST = Host(name="web1", address="127.0.0.1")
WRITTEN = b"@@written root /root/.ssh/authorized_keys\n"


class FakeLink:
    def __init__(self, replies: list[tuple[bytes, int] | Exception], log: list[str]) -> None:
        self.replies = replies
        self.log = log

    async def exec(self, command: str, on_data: Callable[[str, bytes], None]) -> int:
        self.log.append("true" if command == "true" else "script")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        on_data("stdout", reply[0])
        return reply[1]

    def close(self) -> None:
        self.log.append("close")


class FakeTransport:
    name = "fake"

    def __init__(self, links: list[FakeLink | LinkFailure]) -> None:
        self.links = links
        self.opened = 0

    async def open_link(self, host: Host, *, retry: bool) -> FakeLink:
        del host, retry
        self.opened += 1
        link = self.links.pop(0)
        if isinstance(link, LinkFailure):
            raise link
        return link

    async def run(self, *args: Any) -> Any:
        raise AssertionError("not used")

    async def close(self) -> None:
        pass


def work(transport: FakeTransport) -> Any:
    scripts = {"web1": HostScripts("write", "restore")}
    return asyncio.run(apply_work(scripts)(transport, HOST, lambda *a: None))  # type: ignore[arg-type]


def test_a_working_new_login_keeps_the_write() -> None:
    log: list[str] = []
    writer = FakeLink([(WRITTEN, 0)], log)
    transport = FakeTransport([writer, FakeLink([(b"", 0)], log)])
    result = work(transport)
    assert result.status is Status.OK and result.error is None
    assert log == ["script", "true", "close", "close"]  # the check on a second connection
    assert transport.opened == 2


def test_a_failed_new_login_restores_over_the_first_connection() -> None:
    log: list[str] = []
    writer = FakeLink([(WRITTEN, 0), (b"@@restored root /root/.ssh/authorized_keys\n", 0)], log)
    transport = FakeTransport(
        [writer, LinkFailure("authentication failed", reason=Reason.AUTH, transient=False)]
    )
    result = work(transport)
    assert result.status is Status.FAILED
    assert result.error == "bastion could not log in again (authentication failed): reverted"
    assert "@@reverted authentication failed" in result.stdout
    assert log == ["script", "script", "close"]  # restore ran before the first link closed


def test_a_failed_revert_says_so() -> None:
    log: list[str] = []
    writer = FakeLink([(WRITTEN, 0), (b"", 1)], log)
    transport = FakeTransport([writer, FakeLink([(b"", 1)], log)])
    result = work(transport)
    assert result.error == "bastion could not log in again (`true` exited 1); REVERT FAILED"


def test_nothing_written_needs_no_check() -> None:
    log: list[str] = []
    transport = FakeTransport([FakeLink([(b"@@failed root /x\n", 1)], log)])
    result = work(transport)
    assert result.status is Status.FAILED and transport.opened == 1


def test_a_lost_connection_still_checks_the_login() -> None:
    log: list[str] = []
    writer = FakeLink([LinkLost("reset")], log)
    transport = FakeTransport(
        [writer, LinkFailure("authentication failed", reason=Reason.AUTH, transient=False)]
    )
    result = work(transport)
    assert result.status is Status.FAILED
    assert "bastion cannot log in any more (authentication failed)" in (result.error or "")


def test_unreachable_is_unreachable() -> None:
    transport = FakeTransport(
        [LinkFailure("connection refused", reason=Reason.REFUSED, transient=False)]
    )
    assert work(transport).status is Status.UNREACHABLE


@pytest.mark.parametrize("stamp", ["", "../x", "2026*", "20261202T194600Z; rm -rf /"])
def test_restore_refuses_a_stamp_that_is_not_one(stamp: str) -> None:
    with pytest.raises(ValueError, match="not a backup stamp"):
        restore_latest_script(stamp)


def test_host_strings_in_apply_output_are_shown_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    from bastion.audit.apply import Change, FilePlan, HostPlan
    from bastion.cli.access_cmd import _print_plan

    path = "/home/e\x1b]52;c;aGk=\x07/.ssh/authorized_keys"
    change = Change("-", "ssh-ed25519 AAAA bad\x1b[2J", "undeclared")
    plan = HostPlan("web1", [FilePlan("web1", "eve", path, (), (), (change,), True)])
    _print_plan(plan, check=True)
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "\x07" not in shown
    assert "^[]52;c;aGk=^G" in shown  # cat -v notation (render/visible.py)
