"""docs/playbooks.md stays true: its example is the shipped file, and its output is real."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.conftest import REPO, Cli, is_root

pytestmark = pytest.mark.lab

DOC = (REPO / "docs" / "playbooks.md").read_text()
EXAMPLE = REPO / "playbooks" / "examples" / "hello.yaml"
EXAMPLE_ARG = "playbooks/examples/hello.yaml"
TIME = re.compile(r" in \d+\.\d+s:")


def console_runs() -> list[tuple[str, str]]:
    """Each ``$ bastion play ...`` command of the page's console blocks, with its output."""
    runs: list[tuple[str, str]] = []
    for block in re.findall(r"```console\n(.*?)```", DOC, flags=re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = chunk.partition("\n")
            if command.startswith("bastion play "):
                runs.append((command, output))
    return runs


def test_the_page_shows_the_example_file() -> None:
    shown = re.search(r"```yaml\n(name: hello\n.*?)```", DOC, flags=re.S)
    assert shown is not None
    body = "".join(
        line for line in EXAMPLE.read_text().splitlines(keepends=True) if not line.startswith("#")
    )
    assert shown.group(1) == body


@pytest.mark.skipif(not is_root(), reason="the page's output is the root-mode lab's")
def test_the_pages_commands_print_what_the_page_says(lab: Cli) -> None:
    runs = console_runs()
    assert [command.split()[-1] for command, _output in runs] == [
        "--check",
        EXAMPLE_ARG,
        EXAMPLE_ARG,
    ]
    clean = lab("run", "-i", "lab", "--all", "rm -rf /tmp/bastion-hello")
    assert clean.returncode == 0, clean.stderr
    try:
        in_repo = Cli(lab.env, REPO)  # the page's paths are relative to the repository
        for command, expected in runs:
            done = in_repo(*shlex.split(command)[1:])
            assert done.returncode == 0, done.stdout + done.stderr
            assert TIME.sub(" in T:", done.stdout) == TIME.sub(" in T:", expected), command
    finally:
        lab("run", "-i", "lab", "--all", "rm -rf /tmp/bastion-hello")
