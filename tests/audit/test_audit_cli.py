"""`bastion audit` through the real command line, without a lab: what happens around the hosts.

The one host is a loopback address where nothing listens (connection refused at once), so each
run is quick and the report has that host's COLL-01 (exit 3).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TEST_NET, Cli, cli_env

NOWHERE = f"127.{TEST_NET}.7.99"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    (tmp_path / "inventory.yaml").write_text(
        f"hosts:\n  ghost: {{address: {NOWHERE}, port: 9, connect_timeout: 2}}\n"
    )
    return Cli(cli_env(tmp_path, tmp_path / "lab"), cwd=tmp_path)


def test_the_report_is_printed_even_when_its_copy_cannot_be_stored(
    cli: Cli, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    cli.env["XDG_STATE_HOME"] = str(blocked)  # the state directory cannot be created
    done = cli("audit", "-i", "inventory.yaml", "-o", "json", timeout=120)
    assert done.returncode == 3, done.stderr  # the hosts' exit code, not the disk's
    report = json.loads(done.stdout)
    assert [h["host"] for h in report["not_audited"]] == ["ghost"]
    warnings = [line for line in done.stderr.splitlines() if line.startswith("bastion: warning")]
    assert len(warnings) == 1 and "was not stored" in warnings[0], done.stderr
    assert "Traceback" not in done.stderr


def test_the_stored_copy_is_written_after_the_report(cli: Cli, tmp_path: Path) -> None:
    done = cli("audit", "-i", "inventory.yaml", "-o", "json", timeout=120)
    assert done.returncode == 3, done.stderr
    stored = list((tmp_path / "state" / "bastion" / "audits").glob("audit-*.json"))
    assert len(stored) == 1
    assert json.loads(stored[0].read_text())["summary"] == json.loads(done.stdout)["summary"]


@pytest.mark.parametrize("where", ["missing/dir/report.json", "."])
def test_an_unusable_output_file_is_exit_2_before_any_host(cli: Cli, where: str) -> None:
    done = cli("audit", "-i", "inventory.yaml", "-o", "json", "--to", where, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("bastion: error: ") and len(done.stderr.splitlines()) == 1
    assert done.stdout == ""
