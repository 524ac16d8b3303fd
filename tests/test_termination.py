"""Ctrl-C and SIGTERM while the records are being written: held until they are written."""

from __future__ import annotations

import os
import signal

import pytest

from bastion.cli import termination


def test_a_ctrl_c_while_the_records_are_written_waits_for_them() -> None:
    written = []
    with pytest.raises(KeyboardInterrupt), termination.records_first():
        os.kill(os.getpid(), signal.SIGINT)
        written.append("run.json")  # not cut short by the signal
        written.append("history")
    assert written == ["run.json", "history"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_a_sigterm_meanwhile_is_reported_as_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(termination, "_sigterm_seen", [])
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with pytest.raises(KeyboardInterrupt), termination.records_first():
            os.kill(os.getpid(), signal.SIGTERM)  # would kill this test without the hold
        assert termination.terminated_by_sigterm()
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_nothing_held_nothing_raised() -> None:
    with termination.records_first():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
