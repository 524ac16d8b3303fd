"""The shipped kubeadm playbooks and `bastion cluster`, on a real sshd lab, with the real engine.

Only the Kubernetes and host tools are stand-ins (tests/standins/kube_standins.py: kubeadm,
kubectl, apt-get, systemctl, modprobe, sysctl, swapoff, containerd, curl, gpg, etcdctl,
iptables...), first on the nodes' PATH through BASTION_LAB_PATH_PREFIX. The stand-ins log
every call to ``state/calls.log`` and keep the cluster in ``state/cluster.json``, which every
node sees (shared outside /etc, /root, /home, /tmp). The lab is this module's own, on
127.$BASTION_TEST_NET.12, and needs root (a user-mode lab shares this host's /etc).

The tests are one scenario, in order: bootstrap, a second run, status, backup, a
half-finished init, reset, a Flannel bootstrap on the reset cluster.

Every node has two interfaces in the stand-ins' model (``state/interfaces.json``): eth0 with
VirtualBox's NAT address 10.0.2.15 on every node (and the default route), eth1 with the
inventory address, as on the Vagrant VMs; the CNIs pick their address the way upstream's code
does (tests/standins/kube_standins.py cites it), so a playbook that lets Calico autodetect
``firstFound`` or flannel take the default-route interface fails here as it would there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_NET, Cli, cli_env, is_root, lab_available

# A site.yaml run takes 15-30 s on a quiet 2-core machine, several times that when it is busy.
pytestmark = [pytest.mark.lab, pytest.mark.timeout(400)]

SUBNET = f"127.{TEST_NET}.12"
STANDINS = REPO / "tests" / "standins" / "kube_standins.py"
TOOLS = (
    *("kubeadm", "kubectl", "etcdctl", "containerd", "curl", "gpg", "iptables", "ip6tables", "ip"),
    "hostname",
    *("apt-get", "apt-mark", "apt-cache", "dpkg-query", "systemctl"),
    *("modprobe", "lsmod", "sysctl", "swapoff", "swapon"),
)
NODES = ("node1", "node2", "node3")
K8S = "1.35"
NAT = "10.0.2.15"
# Host paths the stand-ins write as the real tools would (the lab nodes share /var).
HOST_PATHS = (Path("/var/lib/etcd"), Path("/var/lib/cni"))


@dataclass(frozen=True)
class KubeLab:
    cli: Cli
    root: Path
    """Holds bin/ (the stand-ins, first on the nodes' PATH) and state/ (what they record)."""

    @property
    def state(self) -> Path:
        return self.root / "state"

    def calls(self) -> list[tuple[str, str, list[str]]]:
        """(node, tool, args) of every stand-in call so far, in order."""
        log = self.state / "calls.log"
        if not log.exists():
            return []
        rows = []
        for line in log.read_text().splitlines():
            node, tool, text = line.split("\t")
            args = json.loads(text)
            while tool == "kubectl" and args and args[0].startswith("-"):
                # Leading global options (--kubeconfig F, -n NS, --request-timeout=5s): the
                # verb comes first in the rows, as for the other tools.
                args = args[1:] if "=" in args[0] else args[2:]
            rows.append((node, tool, args))
        return rows

    def cluster(self) -> dict[str, object]:
        return json.loads((self.state / "cluster.json").read_text())  # type: ignore[no-any-return]

    def secrets_issued(self) -> list[str]:
        tokens = self.cluster().get("issued", [])
        assert isinstance(tokens, list)
        return [str(t) for t in tokens]


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeLab]:
    reason = lab_available()
    if reason:
        pytest.fail(f"needs the lab: {reason}")
    if not is_root():
        pytest.skip("needs the root-mode lab: in user mode the stand-ins would write this /etc")
    # Not under /tmp: every node has its own /tmp, and the stand-ins must share state/.
    root = Path(tempfile.mkdtemp(prefix="bastion-kube-standins-", dir="/var/tmp"))
    (root / "bin").mkdir()
    (root / "state").mkdir()
    # A copy beside bin/, not links into the checkout: a checkout under /tmp is not in the
    # nodes' /tmp.
    standins = root / STANDINS.name
    shutil.copy2(STANDINS, standins)
    for tool in TOOLS:
        (root / "bin" / tool).symlink_to(standins)
    shutil.copytree(STANDINS.parent / "upstream", root / "upstream")  # the manifests curl serves
    interfaces = {n: [["eth0", NAT], ["eth1", f"{SUBNET}.{i}"]] for i, n in enumerate(NODES, 1)}
    (root / "state" / "interfaces.json").write_text(json.dumps(interfaces))
    ours = [p for p in HOST_PATHS if not p.exists()]
    tmp = tmp_path_factory.mktemp("kube")
    cli = Cli(cli_env(tmp, tmp / "lab"), cwd=tmp)
    cli.env["BASTION_LAB_PATH_PREFIX"] = str(root / "bin")
    up = cli("lab", "up", "--nodes", "3", "--subnet", SUBNET, timeout=120)
    assert up.returncode == 0, up.stderr
    try:
        yield KubeLab(cli, root)
    finally:
        down = cli("lab", "down", timeout=120)
        shutil.rmtree(root, ignore_errors=True)
        for path in ours:
            shutil.rmtree(path, ignore_errors=True)
        assert down.returncode == 0, down.stderr


def first(calls: list[tuple[str, str, list[str]]], node: str, tool: str, *words: str) -> int:
    """The index of the first call of ``tool`` on ``node`` whose args start with ``words``."""
    for index, (where, name, args) in enumerate(calls):
        if where == node and name == tool and args[: len(words)] == list(words):
            return index
    raise AssertionError(f"no call {tool} {' '.join(words)} on {node}")


def mutating(calls: list[tuple[str, str, list[str]]]) -> list[tuple[str, str, list[str]]]:
    """The calls that would change a real node or cluster."""
    changes = []
    for node, tool, args in calls:
        verb = args[0] if args else ""
        if (
            (tool == "kubeadm" and verb in {"init", "join", "reset"})
            or (tool == "kubeadm" and args[:2] in (["token", "create"], ["token", "delete"]))
            or (tool == "apt-get" and verb == "install")
            or (tool == "apt-mark" and verb in {"hold", "unhold"})
            or (tool == "systemctl" and verb in {"enable", "restart", "mask", "start"})
            or (tool in {"modprobe", "swapoff", "gpg", "etcdctl"})
            or (tool == "sysctl" and "--system" in args)
            or (tool == "kubectl" and verb in {"apply", "create", "replace", "set", "delete"})
        ) and not any("bastion-netcheck" in a for a in args):  # verify's short-lived pods
            changes.append((node, tool, args))
    return changes


def test_the_standins_come_first_with_and_without_sudo(kube: KubeLab) -> None:
    for sudo in ((), ("--sudo",)):
        done = kube.cli(
            "run",
            "-i",
            "lab",
            "--all",
            *sudo,
            "for t in kubeadm apt-get curl; do command -v $t; done",
        )
        assert done.returncode == 0, done.stderr
        found = {line.split()[-1] for line in done.stdout.splitlines() if ": " in line}
        assert found == {str(kube.root / "bin" / t) for t in ("kubeadm", "apt-get", "curl")}


def test_bootstrap_orders_the_steps_inits_once_and_joins_the_workers(kube: KubeLab) -> None:
    done = kube.cli(
        "cluster", "bootstrap", "-i", "lab", "--cni", "weave", "--k8s-version", K8S,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    calls = kube.calls()
    for node in NODES:
        order = [
            first(calls, node, "swapoff", "-a"),
            first(calls, node, "modprobe", "overlay"),
            first(calls, node, "sysctl", "--system"),
            first(calls, node, "apt-get", "install", "-y", "-q", "containerd"),
            first(calls, node, "containerd", "config", "default"),
            first(calls, node, "curl"),
            first(calls, node, "gpg"),
            first(calls, node, "apt-get", "install", "-y", "-q", "--allow-change-held-packages"),
            first(calls, node, "apt-mark", "hold"),
        ]
        assert order == sorted(order), node
    inits = [(n, a) for n, t, a in calls if t == "kubeadm" and a[:1] == ["init"]]
    assert [n for n, _ in inits] == ["node1"]
    assert "--skip-token-print" in inits[0][1]
    joins = [n for n, t, a in calls if t == "kubeadm" and a[:1] == ["join"]]
    assert sorted(joins) == ["node2", "node3"]
    assert first(calls, "node1", "kubeadm", "init") < first(calls, "node1", "kubectl", "apply")
    assert first(calls, "node1", "kubectl", "apply") < first(
        calls, "node1", "kubeadm", "token", "create"
    )
    token_at = first(calls, "node1", "kubeadm", "token", "create")
    assert calls[token_at][2][:4] == ["token", "create", "--ttl", "15m"]
    assert token_at < min(first(calls, n, "kubeadm", "join") for n in ("node2", "node3"))
    # The join material reached node2 and node3, through the 0600 file, and only them.
    cluster = kube.cluster()
    [token] = kube.secrets_issued()
    assert sorted(j["node"] for j in cluster["joins"]) == ["node2", "node3"]  # type: ignore[attr-defined]
    assert {j["token_id"] for j in cluster["joins"]} == {token[:6]}  # type: ignore[attr-defined]
    assert cluster["nodes"]["node2"]["address"] == f"{SUBNET}.2"  # type: ignore[index]
    # Both tokens gone: join.yaml's once the workers joined, and kubeadm init's own 24 h one.
    assert cluster["tokens"] == []
    [default_token] = cluster["issued_default"]  # type: ignore[misc]
    # Weave: the release script's versioned manifest, IPALLOC_RANGE in it before the apply.
    weave = cluster["objects"]["cni/weave"]  # type: ignore[index]
    assert weave["env"]["IPALLOC_RANGE"] == "10.244.0.0/16"
    assert "env_set_after_apply" not in weave
    [url] = [a[-1] for n, t, a in calls if t == "curl" and "weave" in a[-1]]
    assert url.endswith("/v2.8.1/weave-daemonset-k8s-1.11.yaml")
    # containerd's sandbox image is kubeadm 1.35's (Debian's containerd defaults to pause:3.6).
    dump = kube.cli(
        "run", "-i", "lab", "--all", "--sudo", "containerd config dump | grep sandbox_image"
    )
    assert dump.stdout.count('sandbox_image = "registry.k8s.io/pause:3.10.1"') == 3, dump.stdout
    assert cluster["sandbox_image_at_init"] == "registry.k8s.io/pause:3.10.1"
    # verify.yaml proved pod traffic between every pair of nodes and DNS from every node,
    # and deleted its pods.
    assert netcheck_execs(calls) == {
        **{(a, "ping"): 2 for a in NODES},
        **{(a, "nslookup"): 1 for a in NODES},
    }
    assert cluster["pods"] == {}
    leftover = kube.cli("run", "-i", "lab", "--all", "ls /etc/kubernetes")
    assert "kubeadm-join.yaml" not in leftover.stdout
    assert "kubeadm-config.yaml" in leftover.stdout  # on node1 only
    assert [line for line in leftover.stdout.splitlines() if "kubeadm-config" in line] == [
        "node1: kubeadm-config.yaml"
    ]
    assert_never_leaked(kube, token, done.stdout + done.stderr)
    assert_never_leaked(kube, default_token, done.stdout + done.stderr)
    # The admin kubeconfig came back to the bastion, 0600.
    fetched = kube.cli.cwd / "out" / "admin.conf"
    assert stat.S_IMODE(fetched.stat().st_mode) == 0o600
    assert fetched.read_text().startswith("# stand-in kubeconfig admin.conf")


def netcheck_execs(calls: list[tuple[str, str, list[str]]]) -> dict[tuple[str, str], int]:
    """(node of the check pod, program) -> how many times verify.yaml's check ran it."""
    counts: dict[tuple[str, str], int] = {}
    for _, tool, args in calls:
        if tool == "kubectl" and args[:1] == ["exec"] and args[1].startswith("bastion-netcheck-"):
            key = (args[1].removeprefix("bastion-netcheck-"), args[3])
            counts[key] = counts.get(key, 0) + 1
    return counts


def assert_never_leaked(kube: KubeLab, token: str, *outputs: str) -> None:
    secret_part = token.split(".")[1]
    history = Path(kube.cli.env["BASTION_HISTORY_FILE"]).read_text()
    assert token and secret_part
    for where, text in [
        ("output", "".join(outputs)),
        ("history", history),
        ("stand-in call log", (kube.state / "calls.log").read_text()),
    ]:
        assert secret_part not in text, where


def test_a_second_bootstrap_changes_nothing(kube: KubeLab) -> None:
    before = len(kube.calls())
    done = kube.cli(
        "cluster", "bootstrap", "-i", "lab", "--cni", "weave", "--k8s-version", K8S,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert " 0 changed," in done.stdout.splitlines()[-1]
    assert mutating(kube.calls()[before:]) == []
    assert len(kube.secrets_issued()) == 1  # no new token: every worker is joined


def test_status_shows_nodes_roles_and_capacity(kube: KubeLab) -> None:
    table = kube.cli("cluster", "status", "-i", "lab")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "NODE", "ROLES", "READY", "VERSION", "INTERNAL-IP",
        "CPU", "MEMORY", "PODS", "EPHEMERAL-STORAGE",
    ]  # fmt: skip
    assert lines[1].split() == [
        "node1", "control-plane", "Ready", "v1.35.8", f"{SUBNET}.1",
        "2", "2035236Ki", "110", "47830060Ki",
    ]  # fmt: skip
    assert lines[-1] == "3/3 nodes Ready (control plane node1)"
    as_json = kube.cli("cluster", "status", "-i", "lab", "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["ready"] == document["total"] == 3
    assert [n["name"] for n in document["nodes"]] == list(NODES)
    assert document["nodes"][2]["roles"] == []
    assert document["nodes"][2]["capacity"]["pods"] == "110"


def test_backup_fetches_every_kind_and_an_etcd_snapshot_0600(kube: KubeLab, tmp_path: Path) -> None:
    before = len(kube.calls())
    done = kube.cli("cluster", "backup", "-i", "lab", "--to", str(tmp_path / "b"), timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    [base] = (tmp_path / "b").iterdir()  # one directory per backup, named by its UTC time
    assert re.fullmatch(r"\d{8}T\d{6}Z", base.name)
    files = sorted(p for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files == [base / "etcd-snapshot.db", base / "resources.tar.gz"]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    with tarfile.open(base / "resources.tar.gz") as archive:
        names = set(archive.getnames())
    for kind in ("configmaps", "secrets", "deployments.apps", "events", "limitranges",
                 "podtemplates", "replicationcontrollers", "resourcequotas",
                 "controllerrevisions.apps"):  # fmt: skip
        assert f"resources/namespaced/{kind}.yaml" in names
    assert "resources/cluster/customresourcedefinitions.apiextensions.k8s.io.yaml" in names
    assert "resources/cluster/nodes.yaml" in names
    calls = kube.calls()[before:]
    assert not any("--export" in a for _, t, a in calls if t == "kubectl")
    # The snapshot first (a kind that fails later can no longer cost it), with the etcd
    # pod's own etcdctl (version-matched; nothing to install on the node).
    assert first(calls, "node1", "kubectl", "exec", "etcd-node1") < first(
        calls, "node1", "kubectl", "api-resources"
    )
    assert '"msg"' not in done.stdout  # etcdctl's JSON log lines stay out of the output


def test_backup_skips_and_names_a_kind_that_answers_503(kube: KubeLab, tmp_path: Path) -> None:
    # An aggregated API whose service is down (metrics-server here) answers 503 on list.
    cluster = kube.cluster()
    cluster["aggregated"] = {
        "metrics.k8s.io": {"available": False, "namespaced": ["pods"], "cluster": ["nodes"]}
    }
    (kube.state / "cluster.json").write_text(json.dumps(cluster))
    try:
        done = kube.cli("cluster", "backup", "-i", "lab", "--to", str(tmp_path), timeout=120)
    finally:
        cluster = kube.cluster()
        cluster.pop("aggregated")
        (kube.state / "cluster.json").write_text(json.dumps(cluster))
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr
    assert "not exported: pods.metrics.k8s.io nodes.metrics.k8s.io" in done.stdout + done.stderr
    assert "skipped nodes.metrics.k8s.io: Error from server (ServiceUnavailable)" in (
        done.stdout + done.stderr
    )
    # The snapshot and every other kind were still taken and fetched.
    [base] = tmp_path.iterdir()
    assert (base / "etcd-snapshot.db").stat().st_size > 0
    with tarfile.open(base / "resources.tar.gz") as archive:
        names = set(archive.getnames())
    assert "resources/namespaced/secrets.yaml" in names
    assert "resources/cluster/nodes.metrics.k8s.io.yaml" not in names


def test_backup_finds_the_etcd_pod_by_node_name_not_hostname(kube: KubeLab, tmp_path: Path) -> None:
    # The snapshot comes from kubeadm's static etcd pod, named etcd-<nodeRegistration.name>
    # (the inventory name) and found by its label on that node, never etcd-$(hostname): here
    # node1's hostname is a cloud VM's, not its name. No etcdctl on the node (the Vagrant
    # VMs have none) is no problem.
    (kube.root / "bin" / "etcdctl").unlink()
    (kube.state / "hostnames.json").write_text(json.dumps({"node1": "ip-10-0-2-15"}))
    before = len(kube.calls())
    try:
        done = kube.cli("cluster", "backup", "-i", "lab", "--to", str(tmp_path), timeout=120)
    finally:
        (kube.root / "bin" / "etcdctl").symlink_to(kube.root / STANDINS.name)
        (kube.state / "hostnames.json").unlink()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    calls = kube.calls()[before:]
    exec_at = first(calls, "node1", "kubectl", "exec", "etcd-node1")
    assert calls[exec_at][2][2:5] == ["--", "etcdctl", "--endpoints=https://127.0.0.1:2379"]
    [base] = tmp_path.iterdir()
    assert (base / "etcd-snapshot.db").read_bytes().startswith(b"stand-in etcd snapshot")
    assert not Path("/var/lib/etcd/bastion-snapshot.db").exists()  # moved, not copied


def test_backup_falls_back_to_the_host_etcdctl(kube: KubeLab, tmp_path: Path) -> None:
    # No etcd pod to exec into (say its mirror pod is gone): the host's etcdctl takes it.
    cluster = kube.cluster()
    cluster["etcd_pod_missing"] = True
    (kube.state / "cluster.json").write_text(json.dumps(cluster))
    before = len(kube.calls())
    try:
        done = kube.cli("cluster", "backup", "-i", "lab", "--to", str(tmp_path), timeout=120)
    finally:
        cluster = kube.cluster()
        cluster.pop("etcd_pod_missing")
        (kube.state / "cluster.json").write_text(json.dumps(cluster))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    calls = kube.calls()[before:]
    assert not any(t == "kubectl" and a[:1] == ["exec"] for _, t, a in calls)
    assert first(calls, "node1", "etcdctl", "--endpoints=https://127.0.0.1:2379") >= 0
    [base] = tmp_path.iterdir()
    assert (base / "etcd-snapshot.db").stat().st_size > 0


def test_a_half_finished_init_is_reset_and_redone(kube: KubeLab) -> None:
    # admin.conf (and the manifests) are there, but the API server never came up.
    cluster = kube.cluster()
    cluster["healthy"] = False
    (kube.state / "cluster.json").write_text(json.dumps(cluster))
    before = len(kube.calls())
    # Rebuilt with Calico this time: the reset control plane has no pod network left.
    done = kube.cli(
        "cluster", "bootstrap", "-i", "lab", "--cni", "calico", "--k8s-version", K8S,
        "-e", "apiserver_grace_s=0", timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    calls = kube.calls()[before:]
    reset = first(calls, "node1", "kubeadm", "reset")
    assert reset < first(calls, "node1", "kubeadm", "init")
    assert kube.cluster()["init_count"] == 2
    # The rebuilt control plane no longer knows the workers: they are reset and join again.
    for node in ("node2", "node3"):
        assert first(calls, node, "kubeadm", "reset") < first(calls, node, "kubeadm", "join")
    assert sorted(kube.cluster()["nodes"]) == list(NODES)  # type: ignore[call-overload]
    objects = kube.cluster()["objects"]
    assert objects["cni/calico"]["cidr"] == "10.244.0.0/16"  # type: ignore[index]
    # Each node's Calico address is its InternalIP, not firstFound's 10.0.2.15 (which would
    # stop calico-node on node2 and node3: duplicate address).
    assert objects["cni/calico"]["autodetect_v4"] == {"kubernetes": "NodeInternalIP"}  # type: ignore[index]
    verify = kube.cli(
        "play", "-i", "lab", str(REPO / "playbooks" / "verify.yaml"), "-e", "cni=calico", "-v"
    )
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr
    assert "ok       calico-system/calico-node-* running: 3" in verify.stdout
    assert "ok      pod traffic node3 -> node2" in verify.stdout
    assert "Deployment/tigera-operator" in objects  # type: ignore[operator]
    assert "cni/weave" not in objects  # type: ignore[operator]
    tokens = kube.secrets_issued()
    assert len(tokens) == 2
    assert_never_leaked(kube, tokens[1], done.stdout + done.stderr)


def test_reset_refuses_without_yes_then_resets_every_node(kube: KubeLab) -> None:
    before = len(kube.calls())
    refused = kube.cli("cluster", "reset", "-i", "lab")
    assert refused.returncode == 2
    assert "without --yes" in refused.stderr and "Traceback" not in refused.stderr
    assert len(kube.calls()) == before
    done = kube.cli("cluster", "reset", "-i", "lab", "--yes", timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    calls = kube.calls()[before:]
    assert first(calls, "node1", "kubectl", "drain") < first(calls, "node1", "kubeadm", "reset")
    assert {n for n, t, a in calls if t == "kubeadm" and a[:1] == ["reset"]} == set(NODES)
    gone = kube.cli("run", "-i", "lab", "--all", "ls /etc/kubernetes")
    assert "admin.conf" not in gone.stdout and "kubelet.conf" not in gone.stdout
    # What kubeadm reset leaves is gone too: CNI links and state, every custom chain of
    # every table, IPv4 and IPv6.
    assert not Path("/var/lib/cni").exists()
    for node in NODES:
        state = json.loads((kube.state / f"node-{node}.json").read_text())
        assert state.get("links", []) == [], node
        for family, tables in state["chains"].items():
            assert all(chains == [] for chains in tables.values()), (node, family, tables)
    again = kube.cli("cluster", "reset", "-i", "lab", "--yes", timeout=120)
    assert again.returncode == 0
    assert " 0 changed," in again.stdout.splitlines()[-1]
    # The plan for the reset cluster: init, CNI and joins would run; nothing is changed.
    before = len(kube.calls())
    plan = kube.cli(
        "cluster", "bootstrap", "-i", "lab", "--cni", "weave", "--k8s-version", K8S,
        "--check", timeout=300,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr
    assert "would run  node1: umask 077; kubeadm init" in plan.stdout
    # The joins depend on what this run would register: "would run if", never "skipped".
    depends = "depends on join_state, registered by step 'join state' in this run"
    joining = "host.name != control_plane and hosts[host.name].join_state.stdout | trim == 'join'"
    step = "STEP 8/10 kubeadm join  [node[1-3]]\n"
    assert f"{step}  would run  node[2-3]: if {joining} ({depends})\n" in plan.stdout
    assert "skipped  node[2-3]: when: host.name != control_plane and" not in plan.stdout
    assert mutating(kube.calls()[before:]) == []
    assert os.environ.get("BASTION_LAB_PATH_PREFIX") is None  # the host's own PATH untouched


def test_flannel_on_the_reset_cluster_with_another_pod_cidr(kube: KubeLab) -> None:
    before = len(kube.calls())
    done = kube.cli(
        "cluster", "bootstrap", "-i", "lab", "--cni", "flannel", "--k8s-version", K8S,
        "--pod-cidr", "10.32.0.0/16", timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    calls = kube.calls()[before:]
    assert [n for n, t, a in calls if t == "kubeadm" and a[:1] == ["init"]] == ["node1"]
    cluster = kube.cluster()
    assert cluster["flannel_network"] == "10.32.0.0/16"  # the manifest's net-conf.json Network
    objects = cluster["objects"]
    assert "cni/flannel" in objects  # type: ignore[operator]
    assert "cni/weave" not in objects and "cni/calico" not in objects  # type: ignore[operator]
    config = kube.cli(
        "run", "-i", "lab", "-H", "node1", "--sudo", "cat /etc/kubernetes/kubeadm-config.yaml"
    )  # fmt: skip
    assert 'node1:   podSubnet: "10.32.0.0/16"\n' in config.stdout, config.stdout
    # verify.yaml (bootstrap's last play) finds a Running flannel pod on each of the 3 nodes.
    verify = kube.cli(
        "play", "-i", "lab", str(REPO / "playbooks" / "verify.yaml"), "-e", "cni=flannel", "-v"
    )
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr
    assert "node1 | ok       kube-flannel/kube-flannel-ds-* running: 3\n" in verify.stdout
    # flanneld was given the inventory address's interface (FLANNELD_IFACE = status.hostIP),
    # not the default-route NAT interface, so pods reach pods on other nodes.
    assert objects["cni/flannel"]["iface"] == "status.hostIP"  # type: ignore[index]
    assert "ok      pod traffic node2 -> node3" in verify.stdout


def test_bootstrap_fails_naming_the_pairs_when_pod_traffic_does_not_cross(kube: KubeLab) -> None:
    # flannel as the manifest comes (no --iface): every node takes the default-route
    # interface, 10.0.2.15, and VXLAN to "10.0.2.15" never leaves the node. Every pod still
    # runs: only verify.yaml's network check (bootstrap's last play) sees it.
    cluster = kube.cluster()
    cluster["objects"]["cni/flannel"]["iface"] = None  # type: ignore[index]
    (kube.state / "cluster.json").write_text(json.dumps(cluster))
    try:
        done = kube.cli(
            "cluster", "bootstrap", "-i", "lab", "--cni", "flannel", "--k8s-version", K8S,
            "--pod-cidr", "10.32.0.0/16", timeout=300,
        )  # fmt: skip
    finally:
        cluster = kube.cluster()
        cluster["objects"]["cni/flannel"]["iface"] = "status.hostIP"  # type: ignore[index]
        (kube.state / "cluster.json").write_text(json.dumps(cluster))
    assert done.returncode == 1, done.stdout[-3000:]
    out = done.stdout + done.stderr
    assert "pod network" in out and "failed" in out
    assert (
        "broken  pod traffic node1 -> node2" in out and "broken  pod traffic node3 -> node1" in out
    )
    assert "broken  cluster DNS from node2" in out
    assert kube.cluster()["pods"] == {}  # the check's pods are deleted on failure too


def test_audit_kube_reports_who_holds_the_cluster(kube: KubeLab, tmp_path: Path) -> None:
    # Someone bound alice to cluster-admin, and a 2-hour join token was left behind.
    cluster = kube.cluster()
    rbac = "rbac.authorization.k8s.io"
    cluster["rbac"] = [{
        "apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "alice-admin"},
        "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": rbac, "kind": "User", "name": "alice"}],
    }]  # fmt: skip
    (kube.state / "cluster.json").write_text(json.dumps(cluster))
    made = kube.cli(
        "run", "-i", "lab", "-H", "node1", "--sudo", "kubeadm token create --ttl 2h >/dev/null"
    )
    assert made.returncode == 0, made.stderr
    token_id = kube.secrets_issued()[-1][:6]
    access = tmp_path / "access.yaml"
    access.write_text("version: 1\nclusters:\n  node1:\n    cluster_admins: [user:bob]\n")
    try:
        done = kube.cli("audit", "-i", "lab", "--kube", "--access", str(access), "-F", "json",
                        timeout=300)  # fmt: skip
        matrix = kube.cli("audit", "-i", "lab", "-F", "md", timeout=300)
    finally:
        cluster = kube.cluster()
        cluster.pop("rbac")
        (kube.state / "cluster.json").write_text(json.dumps(cluster))
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr  # high findings
    found = {(f["id"], f["host"], f["account"]) for f in json.loads(done.stdout)["findings"]}
    assert ("K8S-10", "node1", "user:alice") in found  # not a default binding
    assert not any(a == "group:system:masters" for i, _, a in found if i == "K8S-10")
    # kubeadm's super-admin.conf: a system:masters certificate on the control plane.
    assert ("K8S-14", "node1", "user:kubernetes-super-admin") in found
    assert ("K8S-17", "node1", None) in found  # the API server's default anonymous auth
    assert ("K8S-15", "node1", f"token:{token_id}") in found  # the id only: never the secret
    assert_never_leaked(kube, kube.secrets_issued()[-1], done.stdout, matrix.stdout)
    assert ("K8S-23", "node1", "user:alice") in found and ("K8S-24", "node1", "user:bob") in found
    # kubeadm's own configuration opens nothing else (NodeRestriction, Node,RBAC, etcd certs).
    assert not {i for i, _, _ in found} & {"K8S-18", "K8S-19", "K8S-20"}
    # A plain audit reads the control plane's cluster too, and the matrix has its column.
    assert matrix.returncode == 1, matrix.stdout[-3000:] + matrix.stderr
    assert "| identity | node1 | node2 | node3 | cluster |" in matrix.stdout
    assert "node1:cluster-admin" in matrix.stdout
