"""Warm by default (docs/agent.md): a run with no agent running starts one, like Ansible's
ControlPersist, unless BASTION_PERSIST=off; the run's summary names the agent and times the
whole process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bastion.agent import lifecycle
from bastion.errors import UsageError
from bastion.process_clock import process_age_s
from bastion.render.summary import render_summary
from tests.conftest import BASTION, Cli
from tests.test_startup import LOADED_AFTER

# --- which runs start the agent (no process started) ---------------------------------------


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[float]:
    """`ensure_running` calls, recorded instead of starting an agent; no socket is there."""
    calls: list[float] = []

    def fake_ensure_running(seconds: float) -> Path:
        calls.append(seconds)
        return tmp_path / "agent.sock"

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setattr(lifecycle, "ensure_running", fake_ensure_running)
    return calls


def test_a_run_with_no_agent_starts_one_for_a_minute(
    started: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(lifecycle.PERSIST_ENV, raising=False)
    assert lifecycle.socket_for(None, False, False, None) is not None
    assert started == [lifecycle.AUTO_PERSIST_S] == [60.0]


def test_bastion_persist_sets_how_long_and_off_turns_it_off(
    started: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(lifecycle.PERSIST_ENV, "5m")
    lifecycle.socket_for(None, False, False, None)
    for off in ("off", "0", "OFF", "no"):
        monkeypatch.setenv(lifecycle.PERSIST_ENV, off)
        assert lifecycle.socket_for(None, False, False, None) is None
    assert started == [300.0]


def test_a_bad_bastion_persist_is_a_usage_error(
    started: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(lifecycle.PERSIST_ENV, "soon")
    with pytest.raises(UsageError, match="BASTION_PERSIST"):
        lifecycle.socket_for(None, False, False, None)
    assert started == []


@pytest.mark.parametrize(
    ("no_agent", "durable", "transport"),
    [(True, False, None), (False, True, None), (False, False, "paramiko"), (False, False, "mosh")],
)
def test_runs_that_bypass_the_agent_start_none(
    started: list[float],
    monkeypatch: pytest.MonkeyPatch,
    no_agent: bool,
    durable: bool,
    transport: str | None,
) -> None:
    monkeypatch.delenv(lifecycle.PERSIST_ENV, raising=False)
    assert lifecycle.socket_for(None, no_agent, durable, transport) is None
    lifecycle.prestart(None, no_agent, durable, transport)
    assert started == []
    assert lifecycle._spawned == []


def test_an_unsafe_socket_is_not_replaced_by_a_new_agent(
    started: list[float], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(lifecycle.PERSIST_ENV, raising=False)
    (tmp_path / "bastion").mkdir(mode=0o700)
    (tmp_path / "bastion" / "agent.sock").write_text("not a socket")
    assert lifecycle.socket_for(None, False, False, None) is None
    assert started == []


def test_the_summary_names_the_agent_in_one_word() -> None:
    assert render_summary([], 0.5, via="agent").splitlines()[0] == (
        "bastion: 0 hosts in 0.50s (agent): none finished"
    )
    assert "(" not in render_summary([], 0.5).splitlines()[0]


def test_process_age_counts_from_the_process_start() -> None:
    # A child that sleeps 0.3 s before asking: its age includes that (and its start-up).
    code = "import time; time.sleep(0.3); from bastion.process_clock import process_age_s as a; "
    code += "print(a())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(done.stdout) >= 0.29
    age = process_age_s()
    assert age is not None and age > 0


# --- against the real-sshd lab ----------------------------------------------------------------


@pytest.fixture
def warm(lab: Cli, tmp_path: Path) -> Iterator[Cli]:
    """The lab's CLI, warm by default (BASTION_PERSIST unset), with a private runtime dir."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in lab.env.items() if k != "BASTION_PERSIST"}
    cli = replace(lab, env={**env, "XDG_RUNTIME_DIR": str(runtime)})
    yield cli
    status = json.loads(cli("agent", "status", "-o", "json").stdout)
    if status["running"] and cli("agent", "stop").returncode != 0:
        os.kill(int(status["pid"]), signal.SIGKILL)


def test_the_first_run_leaves_its_connections_open_in_an_agent(warm: Cli) -> None:
    first = warm("run", "-i", "lab", "--all", "true")
    assert first.returncode == 0, first.stderr
    assert re.search(r"^bastion: 3 hosts in \d+\.\d\ds \(agent\): 3 ok$", first.stderr, re.M)
    status = json.loads(warm("agent", "status", "-o", "json").stdout)
    assert status["running"] is True
    assert status["persist_s"] == 60
    assert sorted(c["host"] for c in status["connections"]) == ["node1", "node2", "node3"]
    second = warm("run", "-i", "lab", "--all", "true")
    assert second.returncode == 0, second.stderr
    again = json.loads(warm("agent", "status", "-o", "json").stdout)
    assert [c["uses"] for c in again["connections"]] == [2, 2, 2]
    direct = warm("run", "-i", "lab", "--all", "--no-agent", "true")
    assert direct.returncode == 0
    assert "(agent)" not in direct.stderr


def test_bastion_persist_off_starts_no_agent(warm: Cli) -> None:
    cli = replace(warm, env={**warm.env, "BASTION_PERSIST": "off"})
    done = cli("run", "-i", "lab", "--all", "true")
    assert done.returncode == 0, done.stderr
    assert "(agent)" not in done.stderr
    assert json.loads(cli("agent", "status", "-o", "json").stdout)["running"] is False


def test_two_first_runs_at_once_share_one_agent(warm: Cli) -> None:
    argv = [*BASTION, "run", "-i", "lab", "--all", "true"]
    runs = [
        subprocess.Popen(
            argv, env=warm.env, cwd=warm.cwd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
    # A second agent started at the same time finds the lock taken and exits on its own.
    deadline = time.monotonic() + 30
    while len(_agents_of(warm)) != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(_agents_of(warm)) == 1


def _agents_of(cli: Cli) -> list[str]:
    """Pids of the live agents of ``cli``'s runtime directory."""
    marker = f"XDG_RUNTIME_DIR={cli.env['XDG_RUNTIME_DIR']}".encode()
    agents = []
    for proc in Path("/proc").iterdir():
        try:
            if b"bastion.agent.server" not in (proc / "cmdline").read_bytes():
                continue
            environ = (proc / "environ").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ and state != "Z":
            agents.append(proc.name)
    return agents


def test_a_run_the_agent_serves_imports_no_ssh_library(warm: Cli) -> None:
    # The first run of a session goes through the agent it starts: the agent imports
    # asyncssh and cryptography, the run does not (tests/test_startup.py prints the modules).
    done = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER, "run", "-i", "lab", "--all", "true"],
        env=warm.env,
        cwd=warm.cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "(agent)" in done.stderr, done.stderr
    loaded = set(done.stderr.strip().splitlines()[-1].split(","))
    assert "asyncssh" not in loaded
    assert "bastion.executor" in loaded  # the run did run
