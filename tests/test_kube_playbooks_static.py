"""The shipped kubeadm playbooks without any host: shellcheck on every shell snippet, a guard
on every step that changes something, golden rendered kubeadm/Calico files, and the
Vagrantfile against inventories/vagrant.yaml.

Snippets are rendered with sample values the way the engine renders them (Jinja2,
StrictUndefined, values interpolated into shell quoted unless ``| raw``), then checked with
``shellcheck -s sh`` (POSIX sh: the nodes' /bin/sh is dash).

Golden files: tests/data/golden/kube/; ``UPDATE_GOLDEN=1`` rewrites them.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from bastion.inventory import load_inventory

REPO = Path(__file__).resolve().parent.parent
PLAYBOOKS = REPO / "playbooks"
GOLDEN = REPO / "tests" / "data" / "golden" / "kube"
SHELL_FIELDS = ("run", "unless", "only_if")
GUARDS = ("creates", "removes", "unless", "only_if")
SAMPLE_TOKEN = "abcdef.0123456789abcdef"
SAMPLE_HASH = "0" * 32 + "f" * 32


class Raw(str):
    """A value the template marked ``| raw``: interpolated verbatim."""


def _quote(value: object) -> str:
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return ""
    return shlex.quote(str(value))


SHELL_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, finalize=_quote, autoescape=False)
SHELL_ENV.filters["raw"] = Raw
PLAIN_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
)


class Registers(dict[str, Any]):
    """Any host's registered results: every name reads as a sample result."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def __missing__(self, key: str) -> dict[str, Any]:
        stdout = {
            "kubeadm_version": "v1.33.4\n",
            "join_token": SAMPLE_TOKEN + "\n",
            "ca_hash": SAMPLE_HASH + "\n",
            "api_address": "192.0.2.11\n",
            "cluster_nodes": "node1\nnode2\n",
            "join_state": "join\n",
        }.get(key, "sample\n")
        return {
            "stdout": stdout,
            "stderr": "",
            "rc": 0,
            "json": None,
            "status": "ok",
            "changed": False,
            "skipped": False,
            "failed": False,
        }


HOSTS = {
    "node1": {"name": "node1", "address": "192.0.2.11"},
    "node2": {"name": "node2", "address": "192.0.2.12"},
    "node3": {"name": "node3", "address": "192.0.2.13"},
}


def context(play: dict[str, Any], host: str) -> dict[str, Any]:
    """The variables a host sees in ``play`` under site.yaml, with sample registers."""
    site = yaml.safe_load((PLAYBOOKS / "site.yaml").read_text())
    variables: dict[str, Any] = {**(play.get("vars") or {}), **site["vars"]}
    variables.update(backup_dir="/srv/backups", fetch_dir="/srv/out")
    fixed = {
        "host": {**HOSTS[host], "labels": {}, "vars": {}, "groups": []},
        "hosts": {name: Registers(name) for name in HOSTS},
        "inventory_hosts": list(HOSTS),
        "playbook_dir": str(PLAYBOOKS),
    }
    rendered = {}
    for key, value in variables.items():
        rendered[key] = (
            PLAIN_ENV.from_string(value).render({**fixed, **variables})
            if isinstance(value, str)
            else value
        )
    return {**rendered, **fixed}


def plays() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(PLAYBOOKS.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if "steps" in document:
            yield path.name, document


def shell_snippets() -> Iterator[tuple[str, str, str]]:
    """(where, host, text) for every shell string of every step, as each host renders it."""
    for name, play in plays():
        for step in play["steps"]:
            fields = [(f, step[f]) for f in SHELL_FIELDS if f in step]
            if "command" in (step.get("wait_for") or {}):
                fields.append(("wait_for.command", step["wait_for"]["command"]))
            for field, text in fields:
                for host in HOSTS:
                    yield f"{name}: {step['name']}: {field}", host, text


def test_every_play_and_the_composition_parse_and_import_existing_files() -> None:
    site = yaml.safe_load((PLAYBOOKS / "site.yaml").read_text())
    imported = [i if isinstance(i, str) else i["file"] for i in site["import"]]
    assert imported == [
        "prereqs.yaml",
        "control-plane.yaml",
        "cni-weave.yaml",
        "cni-calico.yaml",
        "cni-flannel.yaml",
        "join.yaml",
        "verify.yaml",
    ]
    for name in imported:
        assert (PLAYBOOKS / name).is_file(), name
    names = {name for name, _ in plays()}
    assert names >= {*imported, "backup.yaml", "reset.yaml"}
    for name, play in plays():
        steps = [s["name"] for s in play["steps"]]
        assert len(steps) == len(set(steps)), f"{name}: step names must be unique"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_every_shell_snippet_and_script_passes_shellcheck(tmp_path: Path) -> None:
    files: dict[Path, str] = {}
    for index, (where, host, text) in enumerate(shell_snippets()):
        play = yaml.safe_load((PLAYBOOKS / where.split(":")[0]).read_text())
        rendered = SHELL_ENV.from_string(text).render(context(play, host))
        path = tmp_path / f"snippet{index}.sh"
        path.write_text(f"# {where} ({host})\n{rendered}\n")
        files[path] = f"{where} ({host})"
    scripts = sorted((PLAYBOOKS / "scripts").glob("*.sh"))
    assert len(files) > 60 and len(scripts) >= 4
    checked = subprocess.run(
        ["shellcheck", "-s", "sh", "-f", "gcc", *map(str, files), *map(str, scripts)],
        capture_output=True,
        text=True,
        check=False,
    )
    report = checked.stdout
    for path, where in files.items():
        report = report.replace(str(path), where)
    assert checked.returncode == 0, report


def test_shellcheck_does_find_a_bad_snippet(tmp_path: Path) -> None:
    # The check above can fail: an unquoted expansion in a rendered snippet is reported.
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    bad = tmp_path / "bad.sh"
    bad.write_text(SHELL_ENV.from_string("x={{ v }}; rm -rf $x/y").render(v="a b") + "\n")
    checked = subprocess.run(["shellcheck", "-s", "sh", str(bad)], capture_output=True, check=False)
    assert checked.returncode != 0


def test_when_and_until_expressions_compile_and_evaluate() -> None:
    for name, play in plays():
        for step in play["steps"]:
            for field in ("when", "until"):
                if field not in step:
                    continue
                expression = SHELL_ENV.compile_expression(step[field])
                for host in HOSTS:
                    values = context(play, host)
                    values["result"] = {"rc": 0, "stdout": "", "stderr": ""}
                    assert expression(**values) in (True, False), f"{name}: {step['name']}"


# Steps that run every time on purpose, and why.
ALWAYS_RUN = {
    ("backup.yaml", "etcd snapshot and resources"): "a backup is taken at each run",
    ("cni-calico.yaml", "calico pod cidr is not the example's"): "refuses; changes nothing",
}


def test_every_step_that_changes_something_has_a_guard() -> None:
    for name, play in plays():
        for step in play["steps"]:
            if not ({"run", "script"} & step.keys()) or step.get("readonly"):
                continue  # copy/template/fetch compare content; readonly steps change nothing
            if step.get("changed_when") == "false":
                continue  # a probe or a verification: never counted as a change
            when = str(step.get("when", ""))
            guarded = any(g in step for g in GUARDS) or re.search(r"\bhosts[\[.]", when)
            assert guarded or (name, step["name"]) in ALWAYS_RUN, f"{name}: {step['name']}"


def test_secrets_stay_off_command_lines_and_are_marked() -> None:
    join = yaml.safe_load((PLAYBOOKS / "join.yaml").read_text())
    steps = {s["name"]: s for s in join["steps"]}
    assert steps["join token"].get("secret") is True
    assert "--ttl 15m" in steps["join token"]["run"]
    assert steps["join configuration"]["template"]["mode"] == "0600"
    assert steps["join configuration"].get("secret") is True
    for step in join["steps"]:
        for field in ("run", "unless", "only_if"):
            text = str(step.get(field, ""))
            # Only the token id (its first 6 characters, public) may reach a command line.
            assert "join_token" not in text or "truncate(6, true, '', 0)" in text, step["name"]
            assert "--token" not in text and "--discovery-token" not in text, step["name"]


def render_file(template: str, host: str, play_name: str, **overrides: Any) -> str:
    play = yaml.safe_load((PLAYBOOKS / play_name).read_text())
    values = {**context(play, host), **overrides}
    values["host"] = {**values["host"], "address": f"192.168.56.1{host[-1]}"}
    text = (PLAYBOOKS / "templates" / template).read_text()
    return PLAIN_ENV.from_string(text).render(values)


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{path} differs (UPDATE_GOLDEN=1 to accept)"


def test_kubeadm_init_config_is_v1beta4_with_the_inventory_address() -> None:
    text = render_file("kubeadm-config.yaml.j2", "node1", "control-plane.yaml")
    golden("kubeadm-config.node1.yaml", text)
    docs = {d["kind"]: d for d in yaml.safe_load_all(text)}
    init, cluster = docs["InitConfiguration"], docs["ClusterConfiguration"]
    assert init["apiVersion"] == cluster["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert init["localAPIEndpoint"]["advertiseAddress"] == "192.168.56.11"
    assert init["nodeRegistration"]["name"] == "node1"
    assert init["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": "192.168.56.11"}
    ]
    assert cluster["kubernetesVersion"] == "v1.33.4"
    assert cluster["controlPlaneEndpoint"] == "192.168.56.11:6443"
    assert cluster["networking"] == {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/12"}
    assert docs["KubeletConfiguration"]["cgroupDriver"] == "systemd"


def test_join_config_carries_token_and_ca_hash_for_the_worker() -> None:
    text = render_file("kubeadm-join.yaml.j2", "node2", "join.yaml")
    golden("kubeadm-join.node2.yaml", text)
    join = yaml.safe_load(text)
    assert join["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert join["kind"] == "JoinConfiguration"
    discovery = join["discovery"]["bootstrapToken"]
    assert discovery == {
        "apiServerEndpoint": "192.0.2.11:6443",
        "token": SAMPLE_TOKEN,
        "caCertHashes": [f"sha256:{SAMPLE_HASH}"],
    }
    assert "unsafeSkipCAVerification" not in text
    assert join["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": "192.168.56.12"}
    ]


def test_calico_installation_sets_the_pod_cidr_explicitly() -> None:
    text = render_file("calico-installation.yaml.j2", "node1", "cni-calico.yaml")
    golden("calico-installation.yaml", text)
    installation = next(yaml.safe_load_all(text))
    [pool] = installation["spec"]["calicoNetwork"]["ipPools"]
    assert pool["cidr"] == "10.244.0.0/16"
    # Not the operator's firstFound default (10.0.2.15 on every Vagrant VM): the Node's IP.
    autodetect = installation["spec"]["calicoNetwork"]["nodeAddressAutodetectionV4"]
    assert autodetect == {"kubernetes": "NodeInternalIP"}
    other = render_file(
        "calico-installation.yaml.j2", "node1", "cni-calico.yaml", pod_cidr="10.32.0.0/12"
    )
    body = "\n".join(line for line in other.splitlines() if not line.startswith("#"))
    assert 'cidr: "10.32.0.0/12"' in body and "192.168" not in body


def test_weave_and_flannel_pin_their_manifests_and_use_the_pod_cidr() -> None:
    weave = yaml.safe_load((PLAYBOOKS / "cni-weave.yaml").read_text())
    assert weave["vars"]["weave_version"] == "v2.8.1"
    # The release script's versioned manifest (v2.8.1 bin/release uploads -1.8, -1.9, -1.11).
    assert weave["vars"]["weave_manifest_url"].endswith("/weave-daemonset-k8s-1.11.yaml")
    assert "set env" not in str(weave["steps"])  # IPALLOC_RANGE goes in before the apply
    flannel = yaml.safe_load((PLAYBOOKS / "cni-flannel.yaml").read_text())
    assert re.fullmatch(r"v\d+\.\d+\.\d+", flannel["vars"]["flannel_version"])
    assert "latest" not in flannel["vars"]["flannel_manifest_url"]
    assert flannel["vars"]["pod_cidr"] == "10.244.0.0/16"


UPSTREAM = REPO / "tests" / "standins" / "upstream"


def agent_container(text: str, daemonset: str) -> dict[str, Any]:
    """The first container of ``daemonset`` in a manifest (multi-document or a v1 List)."""
    for doc in yaml.safe_load_all(text):
        for item in (doc or {}).get("items") or [doc or {}]:
            if item.get("kind") == "DaemonSet" and item["metadata"]["name"] == daemonset:
                return item["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]
    raise AssertionError(f"no DaemonSet {daemonset}")


def cni_manifest(tmp_path: Path, upstream: str, *args: str) -> str:
    """scripts/cni-manifest.sh on an upstream manifest, with a curl that serves it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text(f'#!/bin/sh\nshift 2; cp {UPSTREAM / upstream} "$1"\n')
    (bin_dir / "curl").chmod(0o755)
    dest = tmp_path / "cni" / "manifest.yaml"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    script = PLAYBOOKS / "scripts" / "cni-manifest.sh"
    done = subprocess.run(
        ["sh", str(script), "https://example.invalid/m.yaml", str(dest), *args],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dest.read_text()


def test_weave_manifest_gets_ipalloc_range_before_apply(tmp_path: Path) -> None:
    text = cni_manifest(
        tmp_path, "weave-daemonset-k8s-1.11-v2.8.1.yaml",
        "name: weave-net", "weave", "IPALLOC_RANGE", "10.244.0.0/16",
    )  # fmt: skip
    weave = agent_container(text, "weave-net")
    assert weave["name"] == "weave" and weave["image"] == "weaveworks/weave-kube:2.8.1"
    assert weave["env"][0] == {"name": "IPALLOC_RANGE", "value": "10.244.0.0/16"}
    assert [e["name"] for e in weave["env"][1:]] == ["INIT_CONTAINER", "HOSTNAME"]


def test_flannel_manifest_gets_the_node_ip_interface_and_the_network(tmp_path: Path) -> None:
    text = cni_manifest(
        tmp_path, "kube-flannel-v0.28.9.yml", "name: kube-flannel-ds", "kube-flannel",
        "FLANNELD_IFACE", "fieldRef:status.hostIP", "10.32.0.0/16",
    )  # fmt: skip
    flannel = agent_container(text, "kube-flannel-ds")
    # flannel main.go: FLANNELD_IFACE is --iface (flagutil.SetFlagsFromEnv), which takes an
    # IP; status.hostIP is the kubelet's node IP, the inventory address.
    assert flannel["env"][0] == {
        "name": "FLANNELD_IFACE",
        "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}},
    }
    assert [e["name"] for e in flannel["env"][1:3]] == ["POD_NAME", "POD_NAMESPACE"]
    assert '"Network": "10.32.0.0/16"' in text and "10.244.0.0/16" not in text


def vagrantfile_nodes() -> dict[str, str]:
    text = (REPO / "Vagrantfile").read_text()
    block = re.search(r"^NODES = \{\n(.*?)^\}", text, re.M | re.S)
    assert block, "Vagrantfile: no NODES = { ... } table"
    return dict(re.findall(r'"(node\d+)" => "([\d.]+)"', block.group(1)))


def test_vagrantfile_and_the_vagrant_inventory_agree() -> None:
    text = (REPO / "Vagrantfile").read_text()
    inventory = load_inventory(REPO / "inventories" / "vagrant.yaml")
    nodes = vagrantfile_nodes()
    assert nodes == {name: host.address for name, host in inventory.hosts.items()}
    assert nodes == {f"node{i}": f"192.168.56.1{i}" for i in (1, 2, 3)}
    assert re.search(r"^CPUS = 2$", text, re.M) and re.search(r"^MEMORY_MB = 2048$", text, re.M)
    assert re.search(r'^BOX = "(bento/ubuntu-24\.04|debian/bookworm64)"', text, re.M)
    identity = inventory.hosts["node1"].identity_file
    assert identity is not None
    key = re.search(r'^PUBLIC_KEY_PATH = File.expand_path\("([^"]+)"\)', text, re.M)
    assert key and os.path.expanduser(key.group(1)) == os.path.expanduser(identity) + ".pub"
    assert inventory.groups["masters"] == ("node1",)
    assert {h.user for h in inventory.hosts.values()} == {"vagrant"}
    assert "/home/vagrant/.ssh/authorized_keys" in text
