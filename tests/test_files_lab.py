"""`bastion copy` and `bastion fetch` end to end against the real OpenSSH lab.

Each lab node has its own /root, /etc, /home and /tmp (as root), so a file copied to node1 is
seen on node1 only: what a node holds is checked with `bastion run` on that node.
"""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from tests.conftest import LAB_SUBNET, Cli, is_root

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not is_root(), reason="per-node files need the root lab"),
]

DEPLOY = "bastion-deploy"
"""A non-root login with passwordless sudo, created on node1 only."""


def records(text: str) -> dict[str, dict[str, object]]:
    return {str(r["host"]): r for r in (json.loads(line) for line in text.splitlines())}


def on_node(lab: Cli, node: str, command: str) -> str:
    """What ``command`` prints on ``node`` (as root)."""
    done = lab("run", "-i", "lab", "-H", node, "-o", "json", command)
    assert done.returncode == 0, done.stdout + done.stderr
    return str(records(done.stdout)[node]["stdout"])


def on_all(lab: Cli, command: str) -> None:
    done = lab("run", "-i", "lab", "--all", "-o", "quiet", command)
    assert done.returncode == 0, done.stderr


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def custom_inventory(lab: Cli, path: Path, users: dict[str, str], extra: str = "") -> Path:
    """An inventory of the lab's nodes with other login users (and more YAML after it)."""
    lab_dir = Path(lab.env["BASTION_LAB_DIR"])
    lines = [
        "defaults:",
        f"  identity_file: {lab_dir / 'id_ed25519'}",
        f"  known_hosts: {lab_dir / 'known_hosts'}",
        "  connect_timeout: 5",
        "hosts:",
    ]
    for node, user in users.items():
        lines.append(f"  {node}: {{address: {LAB_SUBNET}.{node[-1]}, user: {user}}}")
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@pytest.fixture(scope="module")
def deploy_user(lab: Cli) -> str:
    """``bastion-deploy`` on node1: the lab key, NOPASSWD sudo (node1's private /etc)."""
    on_node(
        lab,
        "node1",
        f"id {DEPLOY} >/dev/null 2>&1 || useradd -m -s /bin/sh {DEPLOY}; "
        f"usermod -p '*' {DEPLOY}; "  # no password, but not locked: sshd accepts the key
        f"install -d -m 700 -o {DEPLOY} -g {DEPLOY} /home/{DEPLOY}/.ssh; "
        f"install -m 600 -o {DEPLOY} -g {DEPLOY} /root/.ssh/authorized_keys "
        f"/home/{DEPLOY}/.ssh/authorized_keys; "
        f"echo '{DEPLOY} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/{DEPLOY}; "
        f"chmod 440 /etc/sudoers.d/{DEPLOY}",
    )
    return DEPLOY


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "conf").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n")
    (root / "conf" / "b.conf").write_text("port = 80\n")
    (root / "conf" / "c.conf").write_text("workers = 4\n")
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "run.sh").chmod(0o755)
    return root


def test_copy_a_tree_then_only_the_changed_file_moves(lab: Cli, tree: Path) -> None:
    on_all(lab, "rm -rf /root/copy-tree")
    dest = "/root/copy-tree/app"
    first = lab("copy", "-i", "lab", "--all", "-r", str(tree), "/root/copy-tree/", "-o", "json")
    assert first.returncode == 0, first.stderr
    everything = [f"{dest}/a.txt", f"{dest}/conf/b.conf", f"{dest}/conf/c.conf", f"{dest}/run.sh"]
    for record in records(first.stdout).values():
        assert record["status"] == "ok"
        assert record["files"] == {"changed": everything, "unchanged": [], "failed": []}

    (tree / "conf" / "b.conf").write_text("port = 8080\n")
    second = lab("copy", "-i", "lab", "--all", "-r", str(tree), "/root/copy-tree/")
    assert second.returncode == 0, second.stderr
    for node in ("node1", "node2", "node3"):
        assert f"{node}: changed {dest}/conf/b.conf\n" in second.stdout
        assert f"{node}: 1 changed, 3 unchanged, 0 failed\n" in second.stdout
    assert second.stdout.count("changed /") == 3
    assert "ok  node[1-3]" in second.stderr

    listing = on_node(
        lab,
        "node2",
        f"cd {dest} && sha256sum a.txt conf/b.conf conf/c.conf run.sh && stat -c '%a %n' run.sh "
        "&& find /root/copy-tree -name '*bastion*' | wc -l",
    )
    assert listing == (
        f"{sha256('alpha' + chr(10))}  a.txt\n"
        f"{sha256('port = 8080' + chr(10))}  conf/b.conf\n"
        f"{sha256('workers = 4' + chr(10))}  conf/c.conf\n"
        f"{sha256('#!/bin/sh' + chr(10) + 'echo run' + chr(10))}  run.sh\n"
        "755 run.sh\n"
        "0\n"  # no temporary file left behind
    )

    again = lab("copy", "-i", "lab", "--all", "-r", str(tree), "/root/copy-tree/", "--force")
    assert again.returncode == 0 and "4 changed, 0 unchanged" in again.stdout


def test_copy_with_sudo_and_owner_as_a_user_who_is_not_root(
    lab: Cli, deploy_user: str, tmp_path: Path
) -> None:
    inventory = custom_inventory(lab, tmp_path / "inv.yaml", {"node1": deploy_user})
    source = tmp_path / "app.conf"
    source.write_text("secret = 1\n")
    on_node(lab, "node1", "rm -rf /etc/bastion-sudo")

    def copy(*args: str) -> dict[str, object]:
        done = lab("copy", "-i", str(inventory), "--all", "-o", "json", *args)
        assert done.returncode == 0, done.stdout + done.stderr
        return records(done.stdout)["node1"]

    sent = copy(
        "--sudo", "--owner", "root:root", "--mode", "0640", str(source), "/etc/bastion-sudo/"
    )
    assert sent["files"] == {
        "changed": ["/etc/bastion-sudo/app.conf"],
        "unchanged": [],
        "failed": [],
    }
    state = on_node(
        lab,
        "node1",
        "stat -c '%U:%G %a' /etc/bastion-sudo/app.conf; cat /etc/bastion-sudo/app.conf; "
        f"{{ find /tmp -mindepth 1 -maxdepth 1 -user {deploy_user}; "
        "find /etc/bastion-sudo -name '.bastion*'; } | wc -l",
    )
    assert state == "root:root 640\nsecret = 1\n0\n"  # the private upload is gone

    same = copy(
        "--sudo", "--owner", "root:root", "--mode", "0640", str(source), "/etc/bastion-sudo/"
    )
    assert same["files"] == {
        "changed": [],
        "unchanged": ["/etc/bastion-sudo/app.conf"],
        "failed": [],
    }
    owner_only = copy("--sudo", "--owner", deploy_user, str(source), "/etc/bastion-sudo/")
    assert owner_only["stdout"] == (
        "changed /etc/bastion-sudo/app.conf (owner)\n1 changed, 0 unchanged, 0 failed\n"
    )
    assert on_node(lab, "node1", "stat -c '%U %a' /etc/bastion-sudo/app.conf") == (
        f"{deploy_user} 640\n"
    )


def test_without_sudo_a_protected_destination_fails_that_host_only(
    lab: Cli, deploy_user: str, tmp_path: Path
) -> None:
    inventory = custom_inventory(
        lab, tmp_path / "inv.yaml", {"node1": deploy_user, "node2": "root"}
    )
    source = tmp_path / "x.conf"
    source.write_text("x\n")
    done = lab(
        "copy", "-i", str(inventory), "--all", "-o", "json", str(source), "/etc/x-nosudo.conf"
    )
    assert done.returncode == 1
    result = records(done.stdout)
    assert result["node2"]["status"] == "ok"
    assert result["node1"]["status"] == "failed"
    reason = "/etc/x-nosudo.conf: cannot write in /etc: permission denied"
    assert result["node1"]["error"] == reason
    assert f"  failed  node1  {reason}\n" in done.stderr
    sudo_without_rights = lab(
        "copy", "-i", str(inventory), "-H", "node1", "--sudo", str(source), "/etc/x-nosudo.conf"
    )
    assert sudo_without_rights.returncode == 0  # bastion-deploy may sudo; root may too


def test_a_destination_that_is_a_file_where_a_directory_is_needed(lab: Cli, tree: Path) -> None:
    on_all(lab, "rm -rf /root/clash")
    on_node(lab, "node2", "echo i-am-a-file > /root/clash")
    done = lab("copy", "-i", "lab", "--all", "-r", str(tree), "/root/clash/", "-o", "json")
    assert done.returncode == 1
    result = records(done.stdout)
    assert result["node1"]["status"] == result["node3"]["status"] == "ok"
    assert result["node2"]["status"] == "failed"
    assert result["node2"]["error"] == (
        "/root/clash: is a regular file; a directory is needed there (4 files not copied)"
    )
    assert on_node(lab, "node2", "cat /root/clash") == "i-am-a-file\n"


def test_a_missing_local_source_is_a_usage_error_before_any_host(lab: Cli, tmp_path: Path) -> None:
    done = lab("copy", "-i", "lab", "--all", str(tmp_path / "nope"), "/root/")
    assert done.returncode == 2
    assert done.stderr == f"bastion: error: SRC: local source {tmp_path / 'nope'} does not exist\n"
    directory = lab("copy", "-i", "lab", "--all", str(tmp_path), "/root/")
    assert directory.returncode == 2 and "use -r" in directory.stderr


def test_destination_templates_are_per_host_and_shell_safe(lab: Cli, tmp_path: Path) -> None:
    inventory = custom_inventory(
        lab,
        tmp_path / "inv.yaml",
        {"node1": "root", "node2": "root"},
        extra="vars:\n  evil: \"$(touch pwned); 'x' `touch pwned`\"\n",
    )
    on_all(lab, "rm -rf /root/tpl /root/pwned")
    source = tmp_path / "app.conf"
    source.write_text("t\n")
    done = lab("copy", "-i", str(inventory), "--all", str(source), "/root/tpl/{host}-{evil}/")
    assert done.returncode == 0, done.stderr
    assert on_node(lab, "node2", "ls /root/tpl; test ! -e /root/pwned && echo safe") == (
        "node2-$(touch pwned); 'x' `touch pwned`\nsafe\n"
    )
    unknown = lab("copy", "-i", str(inventory), "--all", str(source), "/root/{nope}/")
    assert unknown.returncode == 2
    assert "unknown placeholder {nope}" in unknown.stderr


def test_fetch_hostname_from_three_nodes_gives_three_files(lab: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = lab("fetch", "-i", "lab", "--all", "/etc/hostname", str(out))
    assert done.returncode == 0, done.stderr
    for node in ("node1", "node2", "node3"):
        fetched = out / node / "etc" / "hostname"
        assert fetched.read_text() == f"{node}\n"
        assert stat.S_IMODE(fetched.stat().st_mode) == 0o600
        assert f"{node}: fetched /etc/hostname -> {fetched}\n" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["node1", "node2", "node3"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700

    kept = lab("fetch", "-i", "lab", "-H", "node1", "--preserve", "/etc/hostname", str(out))
    assert kept.returncode == 0
    remote_mode = on_node(lab, "node1", "stat -c %a /etc/hostname").strip()
    assert f"{stat.S_IMODE((out / 'node1/etc/hostname').stat().st_mode):o}" == remote_mode


def test_fetch_a_tree_and_a_file_missing_on_one_host(lab: Cli, tmp_path: Path) -> None:
    on_all(
        lab,
        "rm -rf /root/logs; mkdir -p /root/logs/app && "
        'echo "$(hostname) log" > /root/logs/app/x.log',
    )
    on_node(lab, "node2", "rm /root/logs/app/x.log")
    out = tmp_path / "out"
    done = lab("fetch", "-i", "lab", "--all", "-o", "json", "/root/logs/app/x.log", str(out))
    assert done.returncode == 1
    result = records(done.stdout)
    assert result["node2"]["status"] == "failed"
    assert result["node2"]["error"] == "/root/logs/app/x.log: no such file or directory"
    assert (out / "node3/root/logs/app/x.log").read_text() == "node3 log\n"
    assert not (out / "node2/root/logs/app/x.log").exists()

    no_r = lab("fetch", "-i", "lab", "-H", "node1", "/root/logs", str(out))
    assert no_r.returncode == 1 and "is a directory: use -r to fetch it" in no_r.stderr
    tree = lab("fetch", "-i", "lab", "-H", "node1", "-r", "/root/logs", str(out), "-o", "json")
    assert tree.returncode == 0, tree.stderr
    assert records(tree.stdout)["node1"]["files"] == {
        "fetched": [str(out / "node1/root/logs/app/x.log")],
        "failed": [],
    }


def test_fetch_an_unreadable_file_fails_that_path_and_host_only(
    lab: Cli, deploy_user: str, tmp_path: Path
) -> None:
    inventory = custom_inventory(
        lab, tmp_path / "inv.yaml", {"node1": deploy_user, "node2": "root"}
    )
    out = tmp_path / "out"
    done = lab(
        "fetch",
        "-i",
        str(inventory),
        "--all",
        "-o",
        "json",
        "/etc/shadow",
        "/etc/hostname",
        str(out),
    )
    assert done.returncode == 1
    result = records(done.stdout)
    assert result["node1"]["status"] == "failed"
    assert result["node1"]["error"] == "/etc/shadow: permission denied"
    assert (out / "node1/etc/hostname").read_text() == "node1\n"
    assert not (out / "node1/etc/shadow").exists()
    assert result["node2"]["status"] == "ok"
    assert (out / "node2/etc/shadow").exists()
    assert "failed  node1  /etc/shadow: permission denied" in done.stderr
