"""Every option value and signal is input (issue 17 item 6, issue 15): through the real CLI.

No host is contacted: each case stops at its usage error, or at the missing inventory right
after its options were accepted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bastion.errors import MESSAGE_LIMIT, cut, one_line
from tests.conftest import BASTION, REPO, cli_env


def bastion(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BASTION, *args],
        env=cli_env(tmp_path, tmp_path / "lab"),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_error_line(done: subprocess.CompletedProcess[str], *, code: int = 2) -> str:
    assert done.returncode == code, done.stderr
    assert done.stderr.startswith("bastion: error: "), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and "╭" not in done.stderr
    return done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--nope", "true"],
        ["run", "-t"],
        ["run", "-f", "0", "-H", "x", "true"],
        ["run", "-f", "many", "-H", "x", "true"],
        ["run", "-o", "bogus", "-H", "x", "true"],
        ["nope"],
        ["history", "-n", "x"],
        ["inventory", "list", "--bogus"],
        ["lab", "up", "--nodes", "x"],
        ["copy", "--nope"],
        ["play", "--check"],
        ["audit", "--forks", "x"],
        ["agent", "status", "--no-such"],
    ],
)
def test_every_usage_error_is_one_line_exit_2(tmp_path: Path, args: list[str]) -> None:
    assert_one_error_line(bastion(tmp_path, *args))


@pytest.mark.parametrize(
    "args",
    [
        ["-t", "nan"],
        ["-t", "inf"],
        ["-t", "1e400"],
        ["-t", "-inf"],
        ["--timeout", "NaN"],
        ["--connect-timeout", "nan"],
        ["--connect-timeout", "inf"],
        ["--pause", "nan", "--batch", "1"],
        ["-t", "1" * 5000],
        ["-t", "\u00b2"],
        ["-t", "0"],
        ["-t", "5 fortnights"],
    ],
)
def test_non_finite_and_malformed_durations_are_refused(tmp_path: Path, args: list[str]) -> None:
    message = assert_one_error_line(bastion(tmp_path, "run", *args, "-H", "x", "true"))
    assert "--" in message  # names the option
    assert len(message) < 400


@pytest.mark.parametrize(
    "args",
    [
        ["-t", "30"],
        ["-t", "2.5"],
        ["-t", "30s"],
        ["-t", "500ms"],
        ["-t", "5m"],
        ["-t", "1h"],
        ["--connect-timeout", "10s"],
        ["--connect-timeout", "1m"],
        ["--batch", "1", "--pause", "2m"],
    ],
)
def test_durations_with_units_are_accepted(tmp_path: Path, args: list[str]) -> None:
    done = bastion(tmp_path, "run", "-i", str(tmp_path / "missing.yaml"), *args, "-H", "x", "true")
    message = assert_one_error_line(done)
    assert "inventory not found" in message  # past the options: they were accepted


def test_a_play_takes_the_same_durations(tmp_path: Path) -> None:
    book = REPO / "tests" / "playbooks" / "slow.yaml"
    done = bastion(tmp_path, "play", str(book), "-i", "missing", "--connect-timeout", "5m")
    assert "inventory not found" in assert_one_error_line(done)


def test_bare_bastion_prints_help_and_succeeds(tmp_path: Path) -> None:
    done = bastion(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Usage: bastion" in done.stdout
    assert done.stderr == ""


def test_a_command_alone_prints_its_help_and_succeeds(tmp_path: Path) -> None:
    done = bastion(tmp_path, "run")
    assert done.returncode == 0, done.stderr
    assert "Usage: bastion run" in done.stdout


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version_short_and_long(tmp_path: Path, flag: str) -> None:
    done = bastion(tmp_path, flag)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("bastion 0.")


def test_long_inputs_are_cut_in_messages(tmp_path: Path) -> None:
    huge = "x" * 100_000
    for args in (["run", "-o", huge, "-H", "x", "true"], ["run", "-t", huge, "-H", "x", "true"]):
        message = assert_one_error_line(bastion(tmp_path, *args))
        assert len(message) < MESSAGE_LIMIT + 100, len(message)
        assert "characters cut" in message or "…" in message


def test_an_unknown_host_of_100_kb_is_cut_too(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("hosts:\n  node1: {address: 127.0.0.1}\n")
    done = bastion(tmp_path, "run", "-i", str(inventory), "-H", "n" * 100_000, "true")
    message = assert_one_error_line(done)
    assert len(message) < MESSAGE_LIMIT + 100
    assert "characters cut" in message


@pytest.mark.parametrize("name", ["host", "hosts", "inventory_hosts", "playbook_dir", "result"])
def test_reserved_names_in_extra_vars_are_refused_as_in_vars(tmp_path: Path, name: str) -> None:
    book = REPO / "tests" / "playbooks" / "slow.yaml"
    message = assert_one_error_line(bastion(tmp_path, "play", str(book), "-e", f"{name}=x"))
    assert f"variable name {name!r} is reserved" in message
    values = tmp_path / "vars.yaml"
    values.write_text(f"{name}: x\n")
    message = assert_one_error_line(bastion(tmp_path, "play", str(book), "-e", f"@{values}"))
    assert "is reserved" in message


INTERRUPT_AT_IMPORT = """
import builtins, sys
sys.argv = ["bastion", *sys.argv[1:]]
target = sys.argv.pop(1)
real = builtins.__import__
def ctrl_c_there(name, *args, **kwargs):
    if name == target:
        raise KeyboardInterrupt  # what Ctrl-C does while that module is being imported
    return real(name, *args, **kwargs)
builtins.__import__ = ctrl_c_there
from bastion.cli.main import entry
entry()
"""


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("typer", ["--help"]),  # the first ~0.2 s: typer itself
        ("bastion.cli.app", ["run", "--help"]),
        ("bastion.cli.run_cmd", ["run", "-H", "x", "true"]),  # registering the command
        ("bastion.inventory", ["run", "-H", "x", "true"]),  # inside the command, before the run
    ],
)
def test_ctrl_c_at_any_moment_is_one_line_and_130(
    tmp_path: Path, module: str, args: list[str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPT_AT_IMPORT, module, *args],
        env=cli_env(tmp_path, tmp_path / "lab"),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr == "bastion: interrupted\n"


def test_one_line_flattens_and_cuts() -> None:
    assert one_line("a\nb\r\x1b[2Jc") == "a b  [2Jc"
    assert one_line("short") == "short"
    long_word = one_line("unknown host " + "n" * 5000 + " (inventory has node[1-3])")
    assert long_word.endswith("(inventory has node[1-3])")
    assert "characters cut" in long_word and len(long_word) < 300
    assert len(one_line("a " * 100_000)) <= MESSAGE_LIMIT + 40
    assert cut("abc", 10) == "abc"


HELP_PAGES = [
    [],
    ["run"],
    ["copy"],
    ["fetch"],
    ["play"],
    ["history"],
    ["audit"],
    ["jobs"],
    ["shell"],
    ["access", "apply"],
    ["inventory", "list"],
    ["lab", "up"],
    ["lab", "fault"],
    ["cluster", "bootstrap"],
    ["cluster", "status"],
    ["cluster", "backup"],
    ["agent", "start"],
    ["agent", "status"],
]


@pytest.mark.parametrize("command", HELP_PAGES, ids=lambda c: " ".join(c) or "bastion")
def test_help_reads_well_at_80_columns(tmp_path: Path, command: list[str]) -> None:
    env = {**cli_env(tmp_path, tmp_path / "lab"), "COLUMNS": "80"}
    done = subprocess.run(
        [*BASTION, *command, "--help"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if len(line) > 80] == []
    for noise in ("<list[", "<int", "<float", "<str>", "<path>", "<bool>", "x>=", "╭", "│"):
        assert noise not in done.stdout, noise
    if len(command) == 1:  # each top-level command ends with examples
        assert "Examples:" in done.stdout
        assert f"bastion {command[0]} " in done.stdout.split("Examples:")[1]
    if not command:  # the command list: every short help whole
        listed = done.stdout.split("Commands:")[1]
        assert "..." not in listed
