"""``--sudo`` against the lab with non-root login users: stopping root commands, passwords.

Two login users are created on every node (idempotently, in the nodes' own /etc): one with
NOPASSWD sudo, one whose sudo asks for a password. The lab's nodes are processes on this
machine, so a test can look at every node's process table (and its command lines and
environments) in this machine's /proc.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bastion.command import SudoPassword, sudo_guard_text, with_sudo
from tests.conftest import BASTION, Cli, is_root

pytestmark = pytest.mark.skipif(not is_root(), reason="the lab's own /etc per node needs root")

NOPASSWD_USER = "bst-sudo-np"
PASSWORD_USER = "bst-sudo-pw"
PASSWORD = "Pw-bst-sudo-7f3c9a"
USERS_SCRIPT = f"""
set -e
account() {{  # name uid sudoers-line
    id "$1" >/dev/null 2>&1 || useradd -m -u "$2" -s /bin/bash "$1" 2>/dev/null
    home=$(getent passwd "$1" | cut -d: -f6)
    mkdir -p "$home/.ssh"
    cp /root/.ssh/authorized_keys "$home/.ssh/authorized_keys"
    chown -R "$1:" "$home/.ssh"
    chmod 700 "$home/.ssh"
    chmod 600 "$home/.ssh/authorized_keys"
    printf '%s\\n' "$3" >"/etc/sudoers.d/$1"
    chmod 440 "/etc/sudoers.d/$1"
}}
account {NOPASSWD_USER} 64231 '{NOPASSWD_USER} ALL=(ALL:ALL) NOPASSWD: ALL'
account {PASSWORD_USER} 64232 '{PASSWORD_USER} ALL=(ALL:ALL) ALL'
# sshd without PAM refuses a locked account ("!" in shadow) even with a key: '*' is not locked.
usermod -p '*' {NOPASSWD_USER}
echo '{PASSWORD_USER}:{PASSWORD}' | chpasswd
visudo -c >/dev/null
mkdir -p /root/bst-sudo-files/sub
echo root-only-a >/root/bst-sudo-files/a
echo root-only-b >/root/bst-sudo-files/sub/b
chmod -R go-rwx /root/bst-sudo-files
"""


@dataclass(frozen=True)
class SudoLab:
    cli: Cli
    inventories: dict[str, Path]

    def run(self, user: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.cli("run", "-i", str(self.inventories[user]), *args, timeout=timeout)


@pytest.fixture(scope="module")
def sudo_lab(lab: Cli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SudoLab]:
    tmp = tmp_path_factory.mktemp("sudo")
    script = tmp / "users.sh"
    script.write_text(USERS_SCRIPT)
    made = lab("run", "-i", "lab", "--all", "--script", str(script))
    assert made.returncode == 0, made.stdout + made.stderr
    lab_dir = Path(lab.env["BASTION_LAB_DIR"])
    base = (lab_dir / "inventory.yaml").read_text()
    inventories = {}
    for user in (NOPASSWD_USER, PASSWORD_USER):
        # Beside the lab's inventory: its key and known_hosts paths are relative to it.
        inventory = lab_dir / f"{user}.yaml"
        inventory.write_text(base.replace("user: root", f"user: {user}"))
        inventories[user] = inventory
    yield SudoLab(lab, inventories)
    cleanup = tmp / "cleanup.sh"
    cleanup.write_text(
        f"userdel -r {NOPASSWD_USER} 2>/dev/null; userdel -r {PASSWORD_USER} 2>/dev/null; "
        f"rm -rf /etc/sudoers.d/{NOPASSWD_USER} /etc/sudoers.d/{PASSWORD_USER} "
        "/root/bst-sudo-files; true\n"
    )
    lab("run", "-i", "lab", "--all", "--script", str(cleanup))


def processes_with(marker: str) -> list[tuple[int, str]]:
    """Running (not zombie) processes whose command line has ``marker``: (pid, owner uid).

    bastion's own process (its argv has the command too) is not one of them.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            uid = (entry / "status").read_text().split("\nUid:")[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker.encode() in cmdline and b"\0bastion\0" not in cmdline and state != "Z":
            found.append((int(entry.name), uid))
    return found


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def stubborn(marker: str) -> str:
    """A command that ignores TERM (so only KILL stops it) and names ``marker``."""
    return f"trap '' TERM; sleep 300; echo {marker}"


@pytest.mark.parametrize(
    "how",
    [["--transport", "asyncssh"], ["--transport", "paramiko"], ["--durable"]],
    ids=["asyncssh", "paramiko", "durable"],
)
def test_a_timeout_stops_the_root_process_group(sudo_lab: SudoLab, how: list[str]) -> None:
    marker = f"bst-sudo-timeout-{how[-1].strip('-')}"
    done = sudo_lab.run(
        NOPASSWD_USER, "-H", "node1", *how, "-t", "2", "--sudo", "--", stubborn(marker)
    )
    assert done.returncode == 1, done.stderr
    assert "timed out after 2s; remote process group stopped" in done.stderr
    # Said only once true: nothing of the root command is left when bastion has returned.
    assert processes_with(marker) == []


@pytest.mark.parametrize(
    ("signum", "how"),
    [(signal.SIGINT, []), (signal.SIGTERM, []), (signal.SIGINT, ["--durable"])],
    ids=["ctrl-c", "sigterm", "ctrl-c-durable"],
)
def test_an_interrupt_stops_the_root_process_group(
    sudo_lab: SudoLab, signum: int, how: list[str]
) -> None:
    marker = f"bst-sudo-interrupt-{signum}-{len(how)}"
    running = subprocess.Popen(
        [
            *BASTION,
            *("run", "-i", str(sudo_lab.inventories[NOPASSWD_USER]), "-H", "node1", *how),
            *("--sudo", "--", stubborn(marker)),
        ],
        env=sudo_lab.cli.env,
        cwd=sudo_lab.cli.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: any(uid == "0" for _, uid in processes_with(marker)), 30, "the root command"
        )
        running.send_signal(signum)
        _, stderr = running.communicate(timeout=30)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate()
    assert running.returncode == (130 if signum == signal.SIGINT else 143), stderr
    assert processes_with(marker) == []


def test_password_only_sudo_fails_fast_with_one_clear_line(sudo_lab: SudoLab) -> None:
    started = time.monotonic()
    done = sudo_lab.run(PASSWORD_USER, "--all", "--sudo", "--", "id", "-u", timeout=30)
    elapsed = time.monotonic() - started
    assert done.returncode == 1
    assert elapsed < 15, elapsed  # never waits for a password nobody types
    summary = [line for line in done.stderr.splitlines() if line.startswith("  failed")]
    assert summary == ["  failed  node[1-3]  exit status 1: sudo: a password is required"]


def test_sudo_user_runs_as_that_user(sudo_lab: SudoLab) -> None:
    done = sudo_lab.run(NOPASSWD_USER, "-H", "node1", "--sudo-user", "nobody", "--", "id", "-un")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "node1: nobody\n"


def test_fetch_sudo_reads_root_only_files(sudo_lab: SudoLab, tmp_path: Path) -> None:
    inventory = str(sudo_lab.inventories[NOPASSWD_USER])
    plain = sudo_lab.cli(
        "fetch", "-i", inventory, "-H", "node1", "/root/bst-sudo-files/a", str(tmp_path)
    )
    assert plain.returncode == 1
    assert "permission denied" in plain.stdout
    done = sudo_lab.cli(
        "fetch",
        "-i",
        inventory,
        "-H",
        "node1",
        "--sudo",
        "-r",
        "/root/bst-sudo-files",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    root = tmp_path / "node1" / "root" / "bst-sudo-files"
    assert (root / "a").read_text() == "root-only-a\n"
    assert (root / "sub" / "b").read_text() == "root-only-b\n"
    assert (root / "a").stat().st_mode & 0o777 == 0o600
    missing = sudo_lab.cli(
        "fetch", "-i", inventory, "-H", "node1", "--sudo", "/root/no-such-bst-sudo", str(tmp_path)
    )
    assert missing.returncode == 1
    assert "/root/no-such-bst-sudo: no such file or directory" in missing.stdout


# --- the password: -K ---------------------------------------------------------------------


@dataclass
class Typed:
    returncode: int
    stdout: str
    stderr: str
    terminal: bytes
    leaks: list[str]


def with_password(
    cli: Cli,
    args: list[str],
    password: str,
    *,
    stdin: bytes | None = None,
    watch_for: str | None = None,
) -> Typed:
    """Run bastion with a terminal of its own to type ``password`` on at its prompt.

    While the command runs (once a process naming ``watch_for`` is seen), every process's
    command line and environment in /proc is searched for the password.
    """
    primary, secondary = os.openpty()
    name = os.ttyname(secondary)

    def controlling_terminal() -> None:
        # A new session's first terminal opened becomes its controlling terminal: /dev/tty.
        os.close(os.open(name, os.O_RDWR))

    source = secondary
    if stdin is not None:  # a pipe holding it all: bastion reads its stdin before it asks
        source, writer = os.pipe()
        os.write(writer, stdin)
        os.close(writer)
    running = subprocess.Popen(
        [*BASTION, *args],
        env=cli.env,
        cwd=cli.cwd,
        stdin=source,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=controlling_terminal,  # noqa: PLW1509 (it only opens a file)
    )
    os.close(secondary)
    if source != secondary:
        os.close(source)
    fcntl.fcntl(primary, fcntl.F_SETFL, os.O_NONBLOCK)
    terminal = b""
    leaks: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while b"sudo password: " not in terminal:
            assert time.monotonic() < deadline, terminal
            select.select([primary], [], [], 0.5)
            # EIO: no process has the terminal open yet (bastion is still starting).
            with contextlib.suppress(BlockingIOError, OSError):
                terminal += os.read(primary, 4096)
        os.write(primary, password.encode() + b"\r")
        if watch_for is not None:
            wait_for(lambda: processes_with(watch_for) != [], 30, "the remote command")
            leaks = password_in_proc(password)
        stdout, stderr = running.communicate(timeout=60)
        with contextlib.suppress(OSError):
            terminal += os.read(primary, 65536)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate()
        os.close(primary)
    return Typed(running.returncode, stdout.decode(), stderr.decode(), terminal, leaks)


def password_in_proc(password: str) -> list[str]:
    """Every /proc/PID/cmdline or environ (of any process here, lab nodes included) with it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        for part in ("cmdline", "environ"):
            try:
                if password.encode() in (entry / part).read_bytes():
                    found.append(f"{entry}/{part}")
            except OSError:
                continue
    return found


def test_ask_sudo_pass_runs_as_root_and_the_password_is_nowhere(
    sudo_lab: SudoLab, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    marker = "bst-sudo-asked"
    typed = with_password(
        sudo_lab.cli,
        [
            *("run", "-i", str(sudo_lab.inventories[PASSWORD_USER]), "--all", "-K"),
            *("--out-dir", str(out_dir), "-o", "json"),
            "--",
            f"sleep 2; echo {marker} $(id -u); cat /etc/sudoers.d/{PASSWORD_USER} >/dev/null",
        ],
        PASSWORD,
        watch_for=marker,
    )
    assert typed.returncode == 0, typed.stderr
    rows = [json.loads(line) for line in typed.stdout.splitlines()]
    assert sorted(row["stdout"] for row in rows) == [f"{marker} 0\n"] * 3
    assert typed.leaks == []
    # Not echoed, not in the output, the records, the history or anywhere under out-dir.
    assert PASSWORD.encode() not in typed.terminal
    assert PASSWORD not in typed.stdout + typed.stderr
    history = Path(sudo_lab.cli.env["BASTION_HISTORY_FILE"])
    assert PASSWORD not in history.read_text()
    written = [path for path in out_dir.rglob("*") if path.is_file()]
    [record] = [path for path in written if path.name == "run.json"]
    assert json.loads(record.read_text())["options"]["ask_sudo_pass"] is True
    for path in written:
        assert PASSWORD.encode() not in path.read_bytes(), path


def test_ask_sudo_pass_keeps_stdin_for_the_command(sudo_lab: SudoLab) -> None:
    # For the NOPASSWD user sudo never reads the password line: the guard must drop it, so the
    # command sees exactly the operator's stdin.
    for user, transport in [
        (NOPASSWD_USER, "asyncssh"),
        (PASSWORD_USER, "asyncssh"),
        (PASSWORD_USER, "paramiko"),
    ]:
        inventory = str(sudo_lab.inventories[user])
        typed = with_password(
            sudo_lab.cli,
            ["run", "-i", inventory, "-H", "node1", "--transport", transport, "-K", "--", "cat"],
            PASSWORD,
            stdin=b"line one\nline two\n",
        )
        assert typed.returncode == 0, typed.stderr
        assert typed.stdout == "node1: line one\nnode1: line two\n", (user, transport)


def test_fetch_with_ask_sudo_pass_reads_root_only_files(sudo_lab: SudoLab, tmp_path: Path) -> None:
    typed = with_password(
        sudo_lab.cli,
        [
            *("fetch", "-i", str(sudo_lab.inventories[PASSWORD_USER]), "-H", "node2", "-K"),
            *("/root/bst-sudo-files/a", str(tmp_path)),
        ],
        PASSWORD,
    )
    assert typed.returncode == 0, typed.stdout + typed.stderr
    fetched = tmp_path / "node2" / "root" / "bst-sudo-files" / "a"
    assert fetched.read_text() == "root-only-a\n"
    assert PASSWORD not in typed.stdout + typed.stderr


def test_a_wrong_password_fails_clearly_and_without_waiting(sudo_lab: SudoLab) -> None:
    started = time.monotonic()
    typed = with_password(
        sudo_lab.cli,
        ["run", "-i", str(sudo_lab.inventories[PASSWORD_USER]), "-H", "node1", "-K", "--", "id"],
        "not-the-password",
    )
    assert time.monotonic() - started < 30
    assert typed.returncode == 1
    assert "node1 [stderr]: sudo: 2 incorrect password attempts" in typed.stderr.splitlines()
    assert [line for line in typed.stderr.splitlines() if line.startswith("  failed")] == [
        "  failed  node1  exit status 1: Sorry, try again."
    ]


def test_ask_sudo_pass_without_a_terminal_is_a_usage_error(sudo_lab: SudoLab) -> None:
    done = subprocess.run(
        [*BASTION, "run", "-i", "lab", "--all", "-K", "--", "id"],
        env=sudo_lab.cli.env,
        cwd=sudo_lab.cli.cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,  # no controlling terminal
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "bastion: error: --ask-sudo-pass: -K/--ask-sudo-pass needs a terminal to ask on (none here)"
    )


# --- units ----------------------------------------------------------------------------------


def test_the_password_is_never_in_the_command_and_masks_itself() -> None:
    password = SudoPassword.typed("hunter2-bst")
    command = with_sudo("id", password=password)
    assert "hunter2-bst" not in command
    assert "sudo -S -p ''" in command
    assert "hunter2-bst" not in repr(password) + str(password)
    assert password.stdin(b"data") == f"hunter2-bst\n{password.mark}\ndata".encode()
    with pytest.raises(ValueError):
        SudoPassword.typed("two\nlines")


def test_the_guard_is_posix_sh_and_shellcheck_clean() -> None:
    shellcheck = subprocess.run(
        ["shellcheck", "-s", "sh", "bastion/sudo_guard.sh"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shellcheck.returncode == 0, shellcheck.stdout
    assert "#" not in sudo_guard_text().split("\n", 1)[0]  # comments stay in the file


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_the_guard_passes_stdin_and_the_exit_status_through(shell: str) -> None:
    command = with_sudo("cat; exit 7").replace("sudo -n -- ", "", 1)
    done = subprocess.run(
        [shell, "-c", command], input=b"kept\n", capture_output=True, check=False, timeout=30
    )
    assert (done.returncode, done.stdout) == (7, b"kept\n")


def test_the_guard_stops_the_group_when_the_watched_process_is_gone() -> None:
    marker = "bst-sudo-unit-watch"
    # The watched process stands for the login shell that ran sudo, which the group kill ends.
    watched = subprocess.Popen(["sleep", "300"])
    guard = subprocess.Popen(
        ["sh", "-c", sudo_guard_text(), "bastion-sudo", str(watched.pid), "", stubborn(marker)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_for(lambda: processes_with(marker) != [], 10, "the command")
        watched.kill()
        watched.wait()
        # The guard (and with it the session's output pipe) ends only once the group is gone.
        stdout, _ = guard.communicate(timeout=30)
    finally:
        for process in (watched, guard):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert (guard.returncode, stdout) == (143, b"")
    assert processes_with(marker) == []
