"""The config file (~/.config/bastion/config.toml): precedence flag > env > file > default."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BASTION, REPO


def bastion(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_RUNTIME_DIR": str(home / "run"),
    }
    return subprocess.run(
        [*BASTION, *args],
        env={**base, **(env or {})},
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / ".config" / "bastion").mkdir(parents=True)
    (tmp_path / "inventory.yaml").write_text(
        "hosts:\n  web[1-3]: {address: '192.0.2.[1-3]', labels: {role: web}}\n"
        "  db1: {address: 192.0.2.9, labels: {role: db}}\n"
    )
    return tmp_path


def listed(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == 0, done.stderr
    return [json.loads(line)["host"] for line in done.stdout.splitlines()]


def config(home: Path, text: str) -> None:
    (home / ".config" / "bastion" / "config.toml").write_text(text)


def test_the_file_gives_defaults_and_the_environment_and_flags_win(home: Path) -> None:
    # `inventory list` never connects anywhere: the precedence is seen in what it lists.
    config(home, '[defaults]\nselector = "role=web"\n[inventory.list]\njson = true\n')
    assert listed(bastion(home, "inventory", "list")) == ["web1", "web2", "web3"]
    config(home, '[defaults]\ninventory = "other.yaml"\n[inventory.list]\njson = true\n')
    (home / "other.yaml").write_text("hosts:\n  solo: {address: 192.0.2.50}\n")
    assert listed(bastion(home, "inventory", "list")) == ["solo"]
    by_env = bastion(home, "inventory", "list", env={"BASTION_INVENTORY": "inventory.yaml"})
    assert listed(by_env) == ["web1", "web2", "web3", "db1"]
    by_flag = bastion(
        home, "inventory", "list", "-i", "inventory.yaml", env={"BASTION_INVENTORY": "other.yaml"}
    )
    assert listed(by_flag) == ["web1", "web2", "web3", "db1"]


def test_a_command_table_wins_over_defaults(home: Path) -> None:
    config(
        home,
        '[defaults]\nselector = "role=db"\n[inventory.list]\nselector = "role=web"\njson = true\n',
    )
    assert listed(bastion(home, "inventory", "list")) == ["web1", "web2", "web3"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[inventory.list]\njsn = true\n",
            "config.toml: unknown option 'jsn' in [inventory.list]; did you mean 'json'?",
        ),
        (
            "[defaults\n",
            "config.toml: Expected ']' at the end of a table declaration (at line 1, column 10)",
        ),
        ("defaults = 3\n", "config.toml: [defaults] must be a table"),
    ],
)
def test_a_bad_config_file_is_one_line_and_exit_2(home: Path, text: str, message: str) -> None:
    config(home, text)
    done = bastion(home, "inventory", "list")
    assert done.returncode == 2
    assert done.stderr.startswith("bastion: error: ")
    assert done.stderr.rstrip("\n").endswith(message)
    assert done.stderr.count("\n") == 1


def test_bastion_config_chooses_or_disables_the_file(home: Path) -> None:
    config(home, "[inventory.list]\njsn = true\n")  # broken: must not be read below
    other = home / "mine.toml"
    other.write_text("[inventory.list]\njson = true\n")
    assert len(listed(bastion(home, "inventory", "list", env={"BASTION_CONFIG": str(other)}))) == 4
    plain = bastion(home, "inventory", "list", env={"BASTION_CONFIG": "none"})
    assert plain.returncode == 0, plain.stderr
    assert not plain.stdout.startswith("{")
    missing = bastion(home, "inventory", "list", env={"BASTION_CONFIG": str(home / "nope.toml")})
    assert missing.returncode == 2
    assert "nope.toml not found" in missing.stderr
