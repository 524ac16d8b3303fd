"""Hosts outside any inventory, as a pdsh/clush/pssh user types them, against the real lab.

No inventory file is given or found: user, key and known_hosts come from the HOME's
~/.ssh/config and ~/.ssh/known_hosts, as `ssh` itself would use them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BASTION, Cli

pytestmark = pytest.mark.lab


def lab_nodes(lab: Cli) -> dict[str, dict[str, object]]:
    listed = lab("inventory", "-i", "lab", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return {record["host"]: record for record in map(json.loads, listed.stdout.splitlines())}


def spec(node: dict[str, object], *, user: bool = False) -> str:
    """``[user@]address[:port]`` for a lab node, the port only when it is not 22."""
    port = "" if node["port"] == 22 else f":{node['port']}"
    return f"{node['user']}@{node['address']}{port}" if user else f"{node['address']}{port}"


@pytest.fixture
def home(lab: Cli, tmp_path: Path) -> dict[str, str]:
    """HOME with an ssh_config naming the lab's key and user, and the lab's known_hosts."""
    lab_dir = Path(lab.env["BASTION_LAB_DIR"])
    ssh = tmp_path / "home" / ".ssh"
    ssh.mkdir(parents=True, mode=0o700)
    shutil.copy(lab_dir / "known_hosts", ssh / "known_hosts")
    user = next(iter(lab_nodes(lab).values()))["user"]
    (ssh / "config").write_text(
        f"Host *\n  User {user}\n  IdentityFile {lab_dir / 'id_ed25519'}\n  IdentitiesOnly yes\n"
    )
    return {**lab.env, "HOME": str(tmp_path / "home")}


def run(
    env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BASTION, "run", *args],
        env=env,
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def hostnames(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert done.returncode == 0, done.stderr
    return {
        record["host"]: record["stdout"].strip()
        for record in map(json.loads, done.stdout.splitlines())
    }


def test_hosts_without_any_inventory_use_ssh_config_and_known_hosts(
    lab: Cli, home: dict[str, str], tmp_path: Path
) -> None:
    nodes = lab_nodes(lab)
    first, second = spec(nodes["node1"]), spec(nodes["node2"], user=True)
    done = run(home, tmp_path, "-H", first, "-w", second, "-o", "json", "cat /etc/hostname")
    assert hostnames(done) == {first: "node1", second: "node2"}


def test_host_lists_from_a_file_a_caret_file_and_stdin(
    lab: Cli, home: dict[str, str], tmp_path: Path
) -> None:
    nodes = lab_nodes(lab)
    listing = tmp_path / "hosts.txt"
    listing.write_text(f"# the lab\n{spec(nodes['node1'])}\n\n{spec(nodes['node3'])}  # last\n")
    wanted = {spec(nodes["node1"]): "node1", spec(nodes["node3"]): "node3"}
    by_file = run(home, tmp_path, "-h", str(listing), "-o", "json", "cat /etc/hostname")
    assert hostnames(by_file) == wanted
    by_caret = run(home, tmp_path, "-H", f"^{listing}", "-o", "json", "cat /etc/hostname")
    assert hostnames(by_caret) == wanted
    by_stdin = run(
        home, tmp_path, "-H", "-", "-o", "json", "cat /etc/hostname", stdin=listing.read_text()
    )
    assert hostnames(by_stdin) == wanted


def test_inventory_names_and_outside_hosts_in_one_run(
    lab: Cli, home: dict[str, str], tmp_path: Path
) -> None:
    outside = spec(lab_nodes(lab)["node3"], user=True)
    done = run(
        home, tmp_path, "-i", "lab", "-H", f"node1,{outside}", "-o", "json", "cat /etc/hostname"
    )
    assert hostnames(done) == {"node1": "node1", outside: "node3"}


def test_an_outside_host_with_an_unknown_key_is_refused(
    lab: Cli, home: dict[str, str], tmp_path: Path
) -> None:
    (Path(home["HOME"]) / ".ssh" / "known_hosts").write_text("")
    target = spec(lab_nodes(lab)["node2"])
    done = run(home, tmp_path, "-H", target, "true")
    assert done.returncode == 3
    assert "host key" in done.stdout + done.stderr


def test_without_an_inventory_all_and_groups_say_so(home: dict[str, str], tmp_path: Path) -> None:
    done = run(home, tmp_path, "--all", "true")
    assert done.returncode == 2
    assert done.stderr.startswith("bastion: error: --all: no inventory (looked for inventory.yaml)")
    assert done.stderr.count("\n") == 1


def test_an_ssh_config_alias_is_a_host(lab: Cli, home: dict[str, str], tmp_path: Path) -> None:
    node = lab_nodes(lab)["node2"]
    config = Path(home["HOME"]) / ".ssh" / "config"
    config.write_text(
        f"Host aliasnode\n  HostName {node['address']}\n  Port {node['port']}\n"
        + config.read_text()
    )
    known = Path(home["HOME"]) / ".ssh" / "known_hosts"
    # known_hosts names the address (as ssh checks HostName, not the alias).
    assert str(node["address"]) in known.read_text()
    done = run(home, tmp_path, "-H", "aliasnode", "-o", "json", "cat /etc/hostname")
    assert hostnames(done) == {"aliasnode": "node2"}
