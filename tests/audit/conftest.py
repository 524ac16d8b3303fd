"""A seeded lab for the audit: its own lab directory and subnet, so seeding touches no other test.

node1 stays clean. node2 holds an unencrypted private key whose public half is authorized on
node3, and shares node1's host key (a cloned image). node3 has an undeclared root key, an
RSA-1024 key, password login with a user holding a password hash, NOPASSWD ALL sudo, a locked
account with a key, an authorized_keys2 file, a symlink to /etc/shadow as authorized_keys in a
world-writable home, and two nologin accounts with a key, one of them barred from forwarding by
a Match block.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TEST_NET, Cli, cli_env, is_root, lab_available

AUDIT_SUBNET = f"127.{TEST_NET}.6"
# A password hash for a lab-only password; the test checks it never leaves the node.
ALICE_HASH = (
    "$6$bastionaudit$GDORvQJrkGS1F6FARSq2u15T1tnC3hr9nwI.6QG5tdaqvOOHWLFyX9bv3Lav8Em7YnBJo9yfX0"
    "ujfbBQ5L1AC0"
)


@dataclass(frozen=True)
class Key:
    private: str
    public: str
    fingerprint: str


@dataclass(frozen=True)
class AuditLab:
    cli: Cli
    lab_dir: Path
    keys: dict[str, Key]
    lab_key: Key

    def secrets(self) -> list[str]:
        """Strings that must never appear in any output."""
        bodies = [k.private.splitlines()[1] for k in self.keys.values()]
        return [ALICE_HASH, "$6$", "PRIVATE KEY", *bodies]


def _keygen(directory: Path, name: str, kind: str, bits: int | None = None) -> Key:
    path = directory / name
    args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"{name}@seed", "-f", str(path)]
    if bits:
        args[4:4] = ["-b", str(bits)]
    subprocess.run(args, check=True)
    listed = subprocess.run(
        ["ssh-keygen", "-lf", f"{path}.pub"], check=True, capture_output=True, text=True
    )
    return Key(
        path.read_text(), path.with_suffix(".pub").read_text().strip(), listed.stdout.split()[1]
    )


def _run_on(cli: Cli, host: str, script: str) -> None:
    done = cli("run", "-i", "lab", "-H", host, script, timeout=120)
    assert done.returncode == 0, f"seeding {host} failed: {done.stdout}{done.stderr}"


def _node3_script(keys: dict[str, Key]) -> str:
    return f"""set -eu
useradd -m -s /bin/bash ops
useradd -m -s /bin/bash alice
useradd -m -s /bin/bash olduser
useradd -m -s /bin/bash mallory
useradd -m -s /usr/sbin/nologin tunnel
useradd -m -s /usr/sbin/nologin tunnel2
usermod -p '*' ops
usermod -p '*' tunnel
usermod -p '*' tunnel2
usermod -p '{ALICE_HASH}' alice
passwd -l olduser >/dev/null
echo 'ops ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/ops
chmod 440 /etc/sudoers.d/ops
seed() {{  # seed USER FILE LINE...
    u=$1 f=$2; shift 2
    install -d -m 700 -o "$u" -g "$u" "/home/$u/.ssh"
    printf '%s\\n' "$@" >"/home/$u/.ssh/$f"
    chown "$u:$u" "/home/$u/.ssh/$f"; chmod 600 "/home/$u/.ssh/$f"
}}
seed ops authorized_keys '{keys["rsa1024"].public}' '{keys["lateral"].public}'
seed alice authorized_keys2 '{keys["alice"].public}'
seed olduser authorized_keys '{keys["olduser"].public}'
seed tunnel authorized_keys '{keys["tunnel"].public}'
seed tunnel2 authorized_keys '{keys["tunnel"].public}'
install -d -m 700 -o mallory -g mallory /home/mallory/.ssh
ln -s /etc/shadow /home/mallory/.ssh/authorized_keys
chmod 777 /home/mallory
echo '{keys["intruder"].public}' >>/root/.ssh/authorized_keys
"""


def _node2_script(keys: dict[str, Key]) -> str:
    return f"""set -eu
install -d -m 700 /root/.ssh
cat >/root/.ssh/id_lateral <<'EOF'
{keys["lateral"].private.strip()}
EOF
chmod 600 /root/.ssh/id_lateral
"""


def _seed_sshd_configs(lab_dir: Path) -> None:
    """Edit the configs the running sshd use (what `sshd -T -f` reads, as after a reload)."""
    node3 = lab_dir / "nodes" / "node3" / "sshd_config"
    text = node3.read_text()
    text = text.replace("PasswordAuthentication no", "PasswordAuthentication yes")
    text = text.replace("UsePAM no", "UsePAM yes")
    # OpenSSH's default: authorized_keys2 counts too.
    text = text.replace(
        "AuthorizedKeysFile .ssh/authorized_keys\n",
        "AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2\n",
    )
    # A Match block: the audit must evaluate it per account (tunnel2 cannot forward).
    text += "Match User tunnel2\n    AllowTcpForwarding no\n"
    node3.write_text(text)
    node2 = lab_dir / "nodes" / "node2"
    shared = node2 / "cloned_host_key"
    shutil.copy(lab_dir / "nodes" / "node1" / "ssh_host_ed25519_key", shared)
    shared.chmod(0o600)
    config = node2 / "sshd_config"
    config.write_text(config.read_text() + f"HostKey {shared}\n")


@pytest.fixture(scope="session")
def audit_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditLab]:
    """The seeded 3-node lab on 127.<net>.6.1-3 (root only: it creates accounts on nodes)."""
    reason = lab_available()
    if reason:
        pytest.fail(f"integration tests need the lab: {reason}")
    if not is_root():
        pytest.skip("the seeded audit lab creates accounts on its nodes: it needs root")
    tmp = tmp_path_factory.mktemp("auditlab")
    lab_dir = tmp / "lab"
    cli = Cli(cli_env(tmp, lab_dir), cwd=tmp)
    up = cli("lab", "up", "--nodes", "3", "--subnet", AUDIT_SUBNET, timeout=120)
    assert up.returncode == 0, up.stderr
    try:
        keydir = tmp / "keys"
        keydir.mkdir()
        keys = {
            "intruder": _keygen(keydir, "intruder", "ed25519"),
            "rsa1024": _keygen(keydir, "rsa1024", "rsa", 1024),
            "lateral": _keygen(keydir, "lateral", "ed25519"),
            "alice": _keygen(keydir, "alice", "ed25519"),
            "olduser": _keygen(keydir, "olduser", "ed25519"),
            "tunnel": _keygen(keydir, "tunnel", "ed25519"),
        }
        _run_on(cli, "node3", _node3_script(keys))
        _run_on(cli, "node2", _node2_script(keys))
        _seed_sshd_configs(lab_dir)
        lab_pub = (lab_dir / "id_ed25519.pub").read_text().strip()
        listed = subprocess.run(
            ["ssh-keygen", "-lf", str(lab_dir / "id_ed25519.pub")],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        lab_key = Key("", lab_pub, listed.stdout.split()[1])
        yield AuditLab(cli, lab_dir, keys, lab_key)
    finally:
        down = cli("lab", "down", timeout=120)
        assert down.returncode == 0, down.stderr
