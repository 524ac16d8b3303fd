"""Option parsing ends at the first word of the remote command, as in pdsh, clush, pssh and ssh.

Each row of `ROWS` is a real command with dash options, typed as a user types it after
``bastion run [options]``. It must run unchanged (the words joined with spaces, as ssh joins
them) on the selected hosts only, and the history must record the whole command.

The oracle is what the nodes really ran: every tool in the table is, on the nodes' PATH
(``BASTION_LAB_PATH_PREFIX``), a recorder that appends ``address<TAB>tool<TAB>args...`` to a
log, then runs the real tool only when that is harmless (``uname``, ``ls``, ...). Tools that
would change this machine (``swapoff``, ``reboot``, ``mount``, ``iptables``...) are only
recorded: the lab nodes share this host's kernel, so a real ``swapoff -a`` would be this
machine's. Shell builtins (``echo``) are checked by their output instead.

The lab is this module's own, on 127.$BASTION_TEST_NET.31, started with the recorders first on
the nodes' PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TEST_NET, Cli, cli_env, lab_available

pytestmark = pytest.mark.lab

SUBNET = f"127.{TEST_NET}.31"
ADDRESS = {f"node{n}": f"{SUBNET}.{n}" for n in (1, 2, 3)}
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

REAL = ("uname", "ls", "df", "ps", "free", "touch", "sed", "head", "find", "cat", "sort", "id")
"""Recorded, then really run: read-only, or writing only in the node's own /tmp."""
RECORDED_ONLY = (
    "swapoff",
    "kubectl",
    "tar",
    "grep",
    "systemctl",
    "hostname",
    "journalctl",
    "iptables",
    "rm",
    "kubeadm",
    "crictl",
    "apt-get",
    "mount",
    "reboot",
    "shutdown",
    "docker",
    "crontab",
)
"""Recorded and never run: they would change this machine, or print too much."""


@dataclass(frozen=True)
class Row:
    words: tuple[str, ...]
    """What follows ``bastion run -i lab`` and the row's selection on the command line."""
    selection: tuple[str, ...] = ("-H", "node1")
    hosts: tuple[str, ...] = ("node1",)
    stdout: str | None = None
    """For shell builtins (no recorder sees them): the exact standard output."""

    @property
    def command(self) -> str:
        """The remote command: the words after the options (and after a ``--``), as ssh joins
        them."""
        words = self.words[1:] if self.words[:1] == ("--",) else self.words
        return " ".join(words)


ROWS = [
    Row(("uname", "-a")),
    Row(("ls", "-la", "/")),
    Row(("df", "-h", "/")),
    Row(("ps", "-ef")),
    Row(("free", "-m")),
    Row(("swapoff", "-a")),
    Row(("kubectl", "get", "pods", "-A", "-o", "wide")),
    Row(("tar", "-xf", "f", "-C", "/")),
    Row(("grep", "-r", "-i", "x", "/etc")),
    Row(("systemctl", "-q", "is-active", "kubelet")),
    Row(("touch", "/tmp/x", "-a")),
    Row(("hostname", "-H", "node3")),
    Row(("journalctl", "-u", "kubelet", "-n", "5", "--no-pager")),
    Row(("iptables", "-L", "-n", "-v")),
    Row(("rm", "-rf", "/tmp/bst-cli-nothing")),
    Row(("sed", "-n", "1p", "/etc/hostname")),
    Row(("head", "-c", "4", "/etc/hostname")),
    Row(("find", "/etc", "-maxdepth", "1", "-name", "hostname")),
    Row(("cat", "-A", "/etc/hostname")),
    Row(("sort", "-r", "-u", "/etc/hostname")),
    Row(("id", "-u")),
    Row(("kubeadm", "token", "create", "--print-join-command")),
    Row(("crictl", "ps", "-a")),
    Row(("apt-get", "install", "-y", "-q", "kubelet")),
    Row(("mount", "-t", "tmpfs", "none", "/mnt")),
    Row(("reboot", "-f")),
    Row(("shutdown", "-h", "now")),
    Row(("docker", "run", "-t", "-i", "--rm", "busybox")),
    Row(("crontab", "-l", "-u", "root")),
    Row(("kubectl", "logs", "-l", "run=pingpong", "-g", "x", "--all-namespaces")),
    Row(("kubectl", "exec", "-i", "-t", "pod", "--", "sh", "-c", "true")),
    Row(("echo", "-x", "node2"), stdout="node1: -x node2\n"),
    Row(("echo", "--all", "-H", "node3", "--help"), stdout="node1: --all -H node3 --help\n"),
    Row(("--", "uname", "-a")),
    Row(("ls -la /",)),
    Row(("ps", "-ef"), selection=("-g", "workers"), hosts=("node2", "node3")),
    Row(("df", "-h"), selection=("--all", "-x", "node3"), hosts=("node1", "node2")),
    Row(("swapoff", "-a"), selection=("-l", "role=worker", "-x", "node3"), hosts=("node2",)),
]


@dataclass(frozen=True)
class RecordingLab:
    cli: Cli
    log: Path

    def calls(self) -> list[tuple[str, ...]]:
        """(address, tool, args...) per call the recorders saw, in order."""
        text = self.log.read_text() if self.log.exists() else ""
        return [tuple(line.split("\t")) for line in text.splitlines()]


def recorder(log: Path, real: bool) -> str:
    # The node is told apart by the address it was reached on ($SSH_CONNECTION's third
    # field), which holds in the user-mode lab too, where nodes share /etc/hostname.
    then = f'exec env PATH={SAFE_PATH} "$tool" "$@"' if real else "exit 0"
    return f"""#!/bin/sh
# TEST STAND-IN (tests/test_command_line_lab.py): records its arguments, then {then}
tool=${{0##*/}}
set -- "${{SSH_CONNECTION:-? ? ?}}" "$@"
address=$(echo "$1" | cut -d' ' -f3)
shift
{{ printf '%s\\t%s' "$address" "$tool"; for arg in "$@"; do printf '\\t%s' "$arg"; done
  printf '\\n'; }} >>{log}
{then}
"""


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingLab]:
    reason = lab_available()
    if reason:
        pytest.fail(f"needs the lab: {reason}")
    # Not under /tmp: every node has its own /tmp, and the recorders must share the log.
    root = Path(tempfile.mkdtemp(prefix="bst-cli-recorders-", dir="/var/tmp"))
    os.chmod(root, 0o755)
    (root / "bin").mkdir(mode=0o755)
    log = root / "calls.log"
    for tool in REAL + RECORDED_ONLY:
        script = root / "bin" / tool
        script.write_text(recorder(log, real=tool in REAL))
        script.chmod(0o755)
    tmp = tmp_path_factory.mktemp("command-line")
    cli = Cli(cli_env(tmp, tmp / "lab"), cwd=tmp)
    cli.env["BASTION_LAB_PATH_PREFIX"] = str(root / "bin")
    up = cli("lab", "up", "--nodes", "3", "--subnet", SUBNET, timeout=120)
    assert up.returncode == 0, up.stderr
    try:
        yield RecordingLab(cli, log)
    finally:
        down = cli("lab", "down", timeout=120)
        shutil.rmtree(root, ignore_errors=True)
        assert down.returncode == 0, down.stderr


def last_history(cli: Cli) -> dict[str, object]:
    lines = Path(cli.env["BASTION_HISTORY_FILE"]).read_text().splitlines()
    entry = json.loads(lines[-1])
    assert isinstance(entry, dict)
    return entry


@pytest.mark.parametrize("row", ROWS, ids=[" ".join(r.selection + r.words) for r in ROWS])
def test_the_command_runs_unchanged_on_the_selected_hosts_only(
    recording: RecordingLab, row: Row
) -> None:
    recording.log.unlink(missing_ok=True)
    done = recording.cli("run", "-i", "lab", *row.selection, *row.words)
    assert done.returncode == 0, done.stderr
    calls = recording.calls()
    if row.stdout is not None:
        assert done.stdout == row.stdout
        assert calls == []
    else:
        tool, *args = row.command.split(" ")
        expected = sorted((ADDRESS[host], tool, *args) for host in row.hosts)
        assert sorted(calls) == expected
    entry = last_history(recording.cli)
    assert entry["command"] == row.command
    assert sorted(entry["hosts"]) == list(row.hosts)  # type: ignore[call-overload]


def test_options_after_the_first_word_are_the_commands_even_when_they_select_nothing(
    recording: RecordingLab,
) -> None:
    # A command followed by what would have been bastion options: the options are the
    # command's, and without a selection before the command nothing is selected at all.
    recording.log.unlink(missing_ok=True)
    done = recording.cli("run", "-i", "lab", "uname", "-a", "--all")
    assert done.returncode == 2
    assert done.stderr.startswith("bastion: error: ")
    assert recording.calls() == []


def test_maxrc_exits_with_the_largest_remote_exit_status(recording: RecordingLab) -> None:
    # pdsh -S and clush -S: node1 exits 41, node2 42, node3 43.
    command = "set -- $SSH_CONNECTION; exit $(( ${3##*.} + 40 ))"
    worst = recording.cli("run", "-i", "lab", "--all", "-S", command)
    assert worst.returncode == 43, worst.stderr
    assert recording.cli("run", "-i", "lab", "-H", "node[1-2]", "--maxrc", command).returncode == 42
    assert recording.cli("run", "-i", "lab", "--all", command).returncode == 1  # bastion's own


def test_a_timeout_takes_a_unit(recording: RecordingLab) -> None:
    done = recording.cli("run", "-i", "lab", "-H", "node1", "-t", "1s", "-o", "json", "sleep 30")
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["status"] == "timeout"
    assert "timed out after 1s" in done.stderr
