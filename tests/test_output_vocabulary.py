"""One output vocabulary (issue 13 item 10): ``-o/--output FORMAT`` is a format everywhere,
with the human default named ``text``; destinations are ``--to``. The old spellings work for one
release, each with one deprecation line. No host is contacted.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bastion.cli.audit_cmd import ReportFormat, report_spellings
from tests.conftest import BASTION, cli_env

DEPRECATED = "bastion: warning: "


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


@pytest.mark.parametrize(
    ("args", "old", "new"),
    [
        (["run", "-o", "inline", "-H", "x", "true"], "-o inline", "-o text"),
        (["copy", "-o", "inline", "-H", "x", "a", "b"], "-o inline", "-o text"),
        (["audit", "-F", "json"], "audit -F/--format", "-o/--output"),
        (["audit", "-O", "report.json"], "audit -O FILE", "--to FILE"),
        (["audit", "--output", "report.html"], "audit --output FILE", "--to FILE"),
        (["audit", "-o", "terminal"], "-o terminal", "-o text"),
        (["cluster", "status", "-o", "table"], "-o table", "-o text"),
        (["cluster", "backup", "-o", "backups"], "cluster backup -o/--output DIR", "--to DIR"),
    ],
)
def test_old_spellings_still_work_with_one_deprecation_line(
    tmp_path: Path, args: list[str], old: str, new: str
) -> None:
    cut = 2 if args[0] == "cluster" else 1  # a sub-command: `cluster status -i ...`
    done = bastion(tmp_path, *args[:cut], "-i", str(tmp_path / "none.yaml"), *args[cut:])
    warning, error = done.stderr.splitlines()
    assert warning == f"{DEPRECATED}{old} is deprecated (kept for one release); use {new}"
    assert error.startswith("bastion: error: -i: inventory not found")  # accepted, went on
    assert done.returncode == 2


@pytest.mark.parametrize(
    "args",
    [
        ["run", "-o", "text", "-H", "x", "true"],
        ["audit", "-o", "json", "--to", "report.json"],
        ["audit", "-o", "text"],
        ["cluster", "status", "-o", "text"],
        ["cluster", "backup", "--to", "backups"],
    ],
)
def test_the_new_spellings_are_quiet(tmp_path: Path, args: list[str]) -> None:
    cut = 2 if args[0] == "cluster" else 1
    done = bastion(tmp_path, *args[:cut], "-i", str(tmp_path / "none.yaml"), *args[cut:])
    assert done.stderr.startswith("bastion: error: -i: inventory not found"), done.stderr
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "-o", "yaml"],
        ["agent", "status", "-o", "yaml"],
        ["history", "-o", "yaml"],
        ["run", "-o", "yaml", "-H", "x", "true"],
        ["cluster", "status", "-o", "yaml"],
    ],
)
def test_an_unknown_format_is_one_line(tmp_path: Path, args: list[str]) -> None:
    done = bastion(tmp_path, *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("bastion: error: ") and done.stderr.count("\n") == 1
    assert "yaml" in done.stderr


def test_history_takes_o_json_and_the_old_flag(tmp_path: Path) -> None:
    assert bastion(tmp_path, "history", "-o", "json").returncode == 0
    old = bastion(tmp_path, "history", "--json")
    assert old.returncode == 0
    assert old.stderr.startswith(f"{DEPRECATED}--json is deprecated")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (("text", None, None, None), (ReportFormat.TEXT, None)),
        (("html", Path("a.html"), None, None), (ReportFormat.HTML, Path("a.html"))),
        (("text", None, "sarif", Path("s.sarif")), (ReportFormat.SARIF, Path("s.sarif"))),
        (
            ("a.html", None, "html", None),
            (ReportFormat.HTML, Path("a.html")),
        ),  # -F html --output a.html
        (("md", None, None, None), (ReportFormat.MARKDOWN, None)),
    ],
)
def test_audit_report_spellings(
    given: tuple[str, Path | None, str | None, Path | None],
    expected: tuple[ReportFormat, Path | None],
) -> None:
    assert report_spellings(*given) == expected
