"""What the operator's terminal shows when hosts print hostile bytes or very long lines.

Real sshd nodes (`bastion lab`) print escape sequences with printf; bastion runs on a pty, and
a pyte screen, fed every byte bastion wrote, is the oracle for what the operator sees.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import LAB_SUBNET, Cli
from tests.pty_terminal import TerminalRun, run_in_pty

pytestmark = pytest.mark.lab

HOSTILE = {
    # The clipboard (OSC 52), the window title (OSC 0), then a line of its own.
    "node1": r"printf 'copy \033]52;c;cm0gLXJmIH4=\007me\033]0;pwned\007\n'; echo node1 done",
    # A carriage return and backspaces painting "all good" over "disk FULL".
    "node2": r"printf 'disk FULL\rall good!\n'; printf 'abc\b\b\bxyz\n'",
    # Clear the screen, move up and erase another host's line, a C1 CSI, a bidi override.
    "node3": r"printf '\033[2J\033[H\033[3A\033[2Kwiped\n'; printf '\302\2332J c1\n'; "
    r"printf 'ab\342\200\256cd\n'",
}
SEEN = {  # what the operator must see, character for character (cat -v notation)
    "node1": ["copy ^[]52;c;cm0gLXJmIH4=^Gme^[]0;pwned^G", "node1 done"],
    "node2": ["disk FULL^Mall good!", "abc^H^H^Hxyz"],
    "node3": ["^[[2J^[[H^[[3A^[[2Kwiped", "M-^[2J c1", "ab<U+202E>cd"],
}
KUBEADM_JOIN = (
    "kubeadm join 192.0.2.10:6443 --token abcdef.0123456789abcdef "
    "--discovery-token-ca-cert-hash sha256:" + "0123456789abcdef" * 4
)
CERTIFICATE = "MIIDBTCCAe2gAwIBAgIIQ" + "A" * 180 + "=="


def per_host(commands: dict[str, str]) -> str:
    """One shell command that runs ``commands[host]`` on each lab host (by its address)."""
    cases = " ".join(f"{LAB_SUBNET}.{name[-1]}) {command} ;;" for name, command in commands.items())
    return f'set -- $SSH_CONNECTION; case "$3" in {cases} esac'


def rows_of(screen_lines: list[str], host: str) -> list[str]:
    """The text after ``host:`` (and its padding) on every screen row prefixed with it."""
    return [row.split(":", 1)[1].lstrip(" ") for row in screen_lines if row.startswith(f"{host}:")]


def test_control_characters_from_hosts_are_shown_never_interpreted(lab: Cli) -> None:
    run, _ = run_in_pty(lab, "run", "-i", "lab", "--all", per_host(HOSTILE))
    assert run.returncode == 0, run.data
    screen = run.screen()
    lines = run.lines()
    for host, expected in SEEN.items():
        assert rows_of(lines, host) == expected, lines
    assert screen.title == "" and screen.icon_name == ""  # no OSC reached the terminal
    assert "bastion: 3 hosts in" in "\n".join(lines)
    # No host wrote anything but its own prefixed rows: every other row is bastion's summary.
    others = [r for r in lines if r and not re.match(r"node[1-3]:|bastion: |  ok ", r)]
    assert others == [], lines


def test_the_oracle_sees_the_attack_with_raw(lab: Cli) -> None:
    """The same run with --raw: the pyte screen shows what an unprotected terminal suffers."""
    # node3's screen clear is left out: it would wipe the others' lines or not, by timing.
    attacks = {host: HOSTILE[host] for host in ("node1", "node2")}
    run, _ = run_in_pty(lab, "run", "-i", "lab", "-H", "node[1-2]", "--raw", per_host(attacks))
    assert run.returncode == 0
    screen = run.screen()
    lines = run.lines()
    assert screen.title == "pwned"
    # "all good!" painted over node2's own prefix: the line no longer says who wrote it.
    assert any(row.startswith("all good!") for row in lines), lines
    assert rows_of(lines, "node2") != SEEN["node2"]


EVERY_ASCII_CONTROL = (
    "printf '" + "".join(f"\\{code:03o}x" for code in [*range(0, 9), *range(11, 32), 127]) + "\\n'"
)
"""printf of every C0 control but tab and line feed, and DEL, each followed by an x."""


def test_the_notation_is_cat_v_for_every_ascii_control(lab: Cli) -> None:
    """For ASCII control characters the notation is exactly what `cat -v` prints."""
    commands = f"{{ {HOSTILE['node2']}; {EVERY_ASCII_CONTROL}; }}"
    run, _ = run_in_pty(lab, "run", "-i", "lab", "-H", "node2", commands, columns=200)
    seen = rows_of(run.lines(), "node2")
    printed = subprocess.run(
        ["sh", "-c", f"{commands} | cat -v"], capture_output=True, text=True, check=True
    )
    assert seen == printed.stdout.splitlines()
    assert len(seen) == 3 and seen[2].startswith("^@x^Ax")


def test_a_hostile_stderr_line_cannot_repaint_the_summary(lab: Cli) -> None:
    command = r"printf '\033]0;pwned\007oops\033[1A\033[2K all fine\n' >&2; exit 3"
    run, _ = run_in_pty(lab, "run", "-i", "lab", "-H", "node1", command)
    assert run.returncode == 1
    lines = run.lines()
    assert "  failed  node1  exit status 3: ^[]0;pwned^Goops^[[1A^[[2K all fine" in lines, lines
    assert run.screen().title == ""


def test_long_lines_are_not_broken_with_newlines_on_an_80_column_terminal(lab: Cli) -> None:
    command = f"echo '{KUBEADM_JOIN}'; echo '{CERTIFICATE}'"
    run, _ = run_in_pty(lab, "run", "-i", "lab", "-H", "node1", command, columns=80)
    assert run.returncode == 0
    # The terminal wraps the line (soft wrap: copying it from the screen gives one line);
    # bastion wrote each one whole, with no newline of its own inside.
    for line in (KUBEADM_JOIN, CERTIFICATE):
        assert re.search(rb"node1: +" + re.escape(line.encode()) + rb"\r\n", run.data), run.data
    rows = run.lines()
    start = next(i for i, row in enumerate(rows) if row.startswith("node1:"))
    joined = "".join(row.ljust(80) for row in rows[start : start + 3]).rstrip()
    assert joined.split(":", 1)[1].lstrip() == KUBEADM_JOIN


def test_play_output_is_shown_visibly(lab: Cli, tmp_path: Path) -> None:
    book = tmp_path / "hostile.yaml"
    book.write_text(
        "name: hostile\nhosts: -H node1\nsteps:\n"
        "  - name: print\n"
        "    run: printf 'ok\\033]0;pwned\\007\\rFULL\\n'; exit 1\n"
    )
    run, _ = run_in_pty(lab, "play", "-i", "lab", str(book))
    assert run.returncode == 1
    screen = run.screen()
    assert screen.title == ""
    assert any("ok^[]0;pwned^G^MFULL" in row for row in run.lines()), run.lines()


def check_colours(run: TerminalRun) -> dict[str, object]:
    screen = run.screen()
    colours: dict[str, object] = {}
    for y, row in enumerate(screen.display):
        match = re.match(r"(node[1-3]):", row)
        if match:
            colours[match.group(1)] = screen.buffer[y][0].fg
    return colours


def test_each_host_prefix_has_its_own_colour_unless_no_color(lab: Cli) -> None:
    env = {key: value for key, value in lab.env.items() if key != "NO_COLOR"}
    coloured = Cli(env, lab.cwd)
    run, _ = run_in_pty(coloured, "run", "-i", "lab", "--all", "hostname")
    colours = check_colours(run)
    assert sorted(colours) == ["node1", "node2", "node3"]
    assert len(set(colours.values())) == 3 and "default" not in colours.values(), colours
    plain, _ = run_in_pty(lab, "run", "-i", "lab", "--all", "hostname")  # NO_COLOR=1
    assert set(check_colours(plain).values()) == {"default"}


def test_stdout_and_stderr_text_line_up_on_a_terminal(lab: Cli) -> None:
    run, _ = run_in_pty(lab, "run", "-i", "lab", "--all", "echo out; echo err >&2")
    assert run.returncode == 0
    rows = [row for row in run.lines() if row.startswith("node")]
    assert len(rows) == 6, rows
    assert {row.rindex(" ") + 1 for row in rows} == {len("node1 [stderr]: ")}, rows
