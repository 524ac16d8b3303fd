#!/usr/bin/python3
# ruff: noqa: E501  (messages copy the real tools' long lines)
"""TEST STAND-INS, NOT THE REAL TOOLS: kubeadm, kubectl, apt-get, apt-mark, apt-cache,
dpkg-query, systemctl, modprobe, lsmod, sysctl, swapoff, swapon, containerd, curl, gpg,
etcdctl and iptables, for running the shipped playbooks (playbooks/) on `bastion lab` nodes.

One script; the tool it plays is the name it is called by (a symlink per tool in the bin
directory tests/test_kube_playbooks.py builds and puts first on the nodes' PATH with
BASTION_LAB_PATH_PREFIX). Each call is appended to ``<bin>/../state/calls.log`` as
``node<TAB>tool<TAB>json(args)`` and returns at once. Per node, the stand-ins write only
where a lab node has its own copy (/etc, /root); what the tools would keep elsewhere
(packages, services, modules, sysctls, swap) lives in ``state/node-<name>.json``, and the
cluster itself (nodes joined, tokens, the CA, applied CNI objects) in ``state/cluster.json``,
which every node reaches because the lab nodes share the host's file system outside /etc,
/root, /home and /tmp. Nothing here touches the network, the kernel or the host's packages.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ME = Path(sys.argv[0])
TOOL = ME.name
STATE = ME.parent.parent / "state"  # the bin directory of symlinks sits beside state/
NODE = socket.gethostname()
K8S = Path("/etc/kubernetes")
PATCH = "4"
CAPACITY = {
    "cpu": "2",
    "ephemeral-storage": "47830060Ki",
    "hugepages-2Mi": "0",
    "memory": "2035236Ki",
    "pods": "110",
}


class Exit(Exception):
    def __init__(self, code: int, message: str = "") -> None:
        self.code = code
        self.message = message


def load(name: str, default: dict[str, Any]) -> dict[str, Any]:
    path = STATE / name
    return json.loads(path.read_text()) if path.exists() else default


def save(name: str, data: dict[str, Any]) -> None:
    path = STATE / name
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def node_state() -> dict[str, Any]:
    return load(
        f"node-{NODE}.json",
        {"packages": {}, "held": [], "services": {}, "modules": [], "sysctl": {}, "swap": True},
    )


def cluster_state() -> dict[str, Any]:
    return load(
        "cluster.json",
        {"nodes": {}, "healthy": False, "tokens": [], "init_count": 0, "objects": {}},
    )


def options(args: list[str], with_value: set[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``args`` into options (``--k v``, ``--k=v``, flags) and positionals."""
    opts: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and arg != "-":
            if "=" in arg:
                key, value = arg.split("=", 1)
                opts[key] = value
            elif arg in with_value and i + 1 < len(args):
                opts[arg] = args[i + 1]
                i += 1
            else:
                opts[arg] = ""
        else:
            rest.append(arg)
        i += 1
    return opts, rest


# ---------------------------------------------------------------- packages, services, kernel


def package_version(name: str, wanted: str | None) -> str:
    if wanted:
        return wanted.replace("*", PATCH) + "-1.1" if "*" in wanted else wanted
    return "1.0-standin"


def apt_get(args: list[str]) -> None:
    opts, rest = options(args, {"-o"})
    if not rest:
        raise Exit(100, "E: Invalid operation")
    if rest[0] == "update":
        print("Reading package lists... Done (stand-in)")
        return
    if rest[0] != "install":
        return
    state = node_state()
    repo = Path("/etc/apt/sources.list.d/kubernetes.list")
    for spec in rest[1:]:
        name, _, wanted = spec.partition("=")
        if name in {"kubelet", "kubeadm", "kubectl"} and not repo.exists():
            raise Exit(100, f"E: Unable to locate package {name}")
        version = package_version(name, wanted or None)
        old = state["packages"].get(name)
        if name in state["held"] and old != version and "--allow-change-held-packages" not in opts:
            raise Exit(
                100,
                f"E: Held packages were changed and -y was used without --allow-change-held-packages ({name})",
            )
        state["packages"][name] = version
        if name == "containerd":
            state["services"]["containerd"] = {"active": True, "enabled": True}
        if name == "kubelet":
            state["services"].setdefault("kubelet", {"active": False, "enabled": False})
            (K8S / "manifests").mkdir(parents=True, exist_ok=True)  # as the kubelet package does
    save(f"node-{NODE}.json", state)
    print("Setting up packages... (stand-in)")


def apt_mark(args: list[str]) -> None:
    state = node_state()
    verb, names = args[0], args[1:]
    if verb == "showhold":
        for name in sorted(state["held"]):
            print(name)
        return
    for name in names:
        if name not in state["packages"]:
            raise Exit(100, f"E: Unable to locate package {name}")
        if verb == "hold" and name not in state["held"]:
            state["held"].append(name)
            print(f"{name} set on hold.")
        if verb == "unhold" and name in state["held"]:
            state["held"].remove(name)
            print(f"Canceled hold on {name}.")
    save(f"node-{NODE}.json", state)


def apt_cache(args: list[str]) -> None:
    repo = Path("/etc/apt/sources.list.d/kubernetes.list")
    name = args[-1]
    print(f"{name}:")
    match = (
        re.search(r"(https://pkgs\.k8s\.io/core:/stable:/v(\d+\.\d+)/deb/)", repo.read_text())
        if repo.exists()
        else None
    )
    if not match:
        print("  Installed: (none)\n  Candidate: (none)")
        return
    version = f"{match.group(2)}.{PATCH}-1.1"
    print(f"  Installed: (none)\n  Candidate: {version}\n  Version table:")
    print(f"     {version} 500\n        500 {match.group(1)}  Packages")


def dpkg_query(args: list[str]) -> None:
    opts, names = options(args, {"-f"})
    fmt = opts.get("-f", opts.get("--showformat", "${Package}\t${Version}\n"))
    fmt = fmt.replace("\\n", "\n")
    state = node_state()
    missing = False
    for name in names:
        version = state["packages"].get(name)
        if version is None:
            print(f"dpkg-query: no packages found matching {name}", file=sys.stderr)
            missing = True
            continue
        out = fmt.replace("${Status}", "install ok installed").replace("${Version}", version)
        sys.stdout.write(out.replace("${Package}", name))
    if missing:
        raise Exit(1)


def systemctl(args: list[str]) -> None:
    opts, rest = options(args, set())
    quiet = "--quiet" in opts or "-q" in opts
    if not rest:
        return
    verb, units = rest[0], rest[1:]
    state = node_state()
    services = state["services"]
    if verb == "daemon-reload":
        return
    for unit in units:
        service = services.setdefault(
            unit.removesuffix(".service"), {"active": False, "enabled": False}
        )
        if verb == "is-active":
            if not quiet:
                print("active" if service["active"] else "inactive")
            if not service["active"]:
                raise Exit(3)
        elif verb == "is-enabled":
            word = (
                "masked"
                if service.get("masked")
                else "enabled"
                if service["enabled"]
                else "disabled"
            )
            if not quiet:
                print(word)
            if word != "enabled":
                raise Exit(1)
        elif verb == "enable":
            service["enabled"] = True
            if "--now" in opts:
                service["active"] = True
        elif verb in {"start", "restart"}:
            service["active"] = True
        elif verb == "stop":
            service["active"] = False
        elif verb == "mask":
            service["masked"] = True
            print(f"Created symlink /etc/systemd/system/{unit} → /dev/null.")
    save(f"node-{NODE}.json", state)


def modprobe(args: list[str]) -> None:
    state = node_state()
    for name in [a for a in args if not a.startswith("-")]:
        if name not in state["modules"]:
            state["modules"].append(name)
    save(f"node-{NODE}.json", state)


def lsmod(args: list[str]) -> None:
    print("Module                  Size  Used by")
    for name in node_state()["modules"]:
        print(f"{name:<24}{16384:>6}  0")


def sysctl(args: list[str]) -> None:
    opts, keys = options(args, set())
    state = node_state()
    bridge = "br_netfilter" in state["modules"]
    if "--system" in opts:
        for conf in sorted(Path("/etc/sysctl.d").glob("*.conf")):
            for line in conf.read_text().splitlines():
                if "=" not in line or line.lstrip().startswith(("#", ";")):
                    continue
                key, value = (part.strip() for part in line.split("=", 1))
                if key.startswith("net.bridge.") and not bridge:
                    print(
                        f"sysctl: cannot stat /proc/sys/{key.replace('.', '/')}: No such file or directory",
                        file=sys.stderr,
                    )
                    continue
                state["sysctl"][key] = value
        save(f"node-{NODE}.json", state)
        return
    for key in keys:
        if key.startswith("net.bridge.") and not bridge:
            raise Exit(
                255,
                f"sysctl: cannot stat /proc/sys/{key.replace('.', '/')}: No such file or directory",
            )
        value = state["sysctl"].get(key, "0")
        print(value if "-n" in opts else f"{key} = {value}")


def swapoff(args: list[str]) -> None:
    state = node_state()
    state["swap"] = False
    save(f"node-{NODE}.json", state)


def swapon(args: list[str]) -> None:
    if node_state()["swap"]:
        print("/swap.img file   2G   0B   -2")


CONTAINERD_DEFAULT = """\
version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.8"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            BinaryName = ""
            SystemdCgroup = false
"""


def containerd(args: list[str]) -> None:
    if args[:2] == ["config", "default"]:
        sys.stdout.write(CONTAINERD_DEFAULT)
    elif args[:2] == ["config", "dump"]:
        config = Path("/etc/containerd/config.toml")
        sys.stdout.write(config.read_text() if config.exists() else CONTAINERD_DEFAULT)
    else:
        raise Exit(1, f"containerd stand-in: unsupported {args}")


# ---------------------------------------------------------------- downloads


def manifest_for(url: str) -> str:
    if url.endswith("/Release.key"):
        return "-----BEGIN PGP PUBLIC KEY BLOCK-----\nstand-in key\n-----END PGP PUBLIC KEY BLOCK-----\n"
    if match := re.search(r"weaveworks/weave/releases/download/v([\d.]+)/", url):
        return (
            "kind: DaemonSet\nmetadata:\n  name: weave-net\n  namespace: kube-system\n"
            f"spec:\n  containers:\n    - name: weave\n      image: weaveworks/weave-kube:{match.group(1)}\n"
        )
    if match := re.search(r"flannel-io/flannel/releases/download/(v[\d.]+)/kube-flannel.yml", url):
        return (
            "kind: ConfigMap\nmetadata:\n  name: kube-flannel-cfg\n  namespace: kube-flannel\ndata:\n  net-conf.json: |\n    {\n"
            '      "Network": "10.244.0.0/16",\n      "Backend": {"Type": "vxlan"}\n    }\n---\n'
            "kind: DaemonSet\nmetadata:\n  name: kube-flannel-ds\n  namespace: kube-flannel\n"
            f"spec:\n  containers:\n    - name: kube-flannel\n      image: ghcr.io/flannel-io/flannel:{match.group(1)}\n"
        )
    if re.search(r"projectcalico/calico/v[\d.]+/manifests/operator-crds.yaml$", url):
        return (
            "kind: CustomResourceDefinition\nmetadata:\n  name: installations.operator.tigera.io\n"
        )
    if re.search(r"projectcalico/calico/v[\d.]+/manifests/tigera-operator.yaml$", url):
        return (
            "kind: Deployment\nmetadata:\n  name: tigera-operator\n  namespace: tigera-operator\n"
        )
    raise Exit(22, f"curl: (22) The requested URL returned error: 404 (stand-in knows no {url})")


def curl(args: list[str]) -> None:
    opts, urls = options(args, {"-o", "--output"})
    body = manifest_for(urls[-1])
    out = opts.get("-o") or opts.get("--output")
    if out:
        Path(out).write_text(body)
    else:
        sys.stdout.write(body)


def gpg(args: list[str]) -> None:
    opts, _ = options(args, {"-o", "--output"})
    data = b"".join(STDIN)
    if b"BEGIN PGP PUBLIC KEY BLOCK" not in data:
        raise Exit(2, "gpg: no valid OpenPGP data found.")
    Path(opts.get("-o") or opts["--output"]).write_bytes(b"stand-in keyring\n" + data)


def etcdctl(args: list[str]) -> None:
    _, rest = options(args, {"--endpoints", "--cacert", "--cert", "--key"})
    if rest[:2] != ["snapshot", "save"]:
        raise Exit(1, f"etcdctl stand-in: unsupported {args}")
    if not cluster_state()["healthy"]:
        raise Exit(1, "context deadline exceeded")
    Path(rest[2]).write_bytes(b"stand-in etcd snapshot\n" * 64)
    print(f"Snapshot saved at {rest[2]}")


def iptables(args: list[str]) -> None:
    if args and args[0] == "-S":
        print("-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT")
        if (
            (K8S / "kubelet.conf").exists()
            or (K8S / "admin.conf").exists()
            or node_state().get("kube_rules")
        ):
            print("-N KUBE-FORWARD")
        return
    if args == ["-X"]:
        state = node_state()
        state["kube_rules"] = False
        save(f"node-{NODE}.json", state)


# ---------------------------------------------------------------- kubeadm


def yaml_documents(path: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def node_ip(registration: dict[str, Any]) -> str | None:
    for item in registration.get("kubeletExtraArgs") or []:
        if item.get("name") == "node-ip":
            return str(item["value"])
    return None


def ca_hash(cert: Path) -> str:
    pub = subprocess.run(
        ["openssl", "x509", "-pubkey", "-noout", "-in", str(cert)], capture_output=True, check=True
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, capture_output=True, check=True
    ).stdout
    return hashlib.sha256(der).hexdigest()


def kubeadm(args: list[str]) -> None:
    opts, rest = options(
        args, {"--config", "-o", "--ttl", "--description", "--cri-socket", "--kubernetes-version"}
    )
    verb = rest[0] if rest else ""
    if verb == "version":
        version = node_state()["packages"].get("kubeadm")
        if version is None:
            raise Exit(127, "kubeadm: not installed (stand-in)")
        print("v" + version.split("-")[0])
    elif rest[:2] == ["config", "validate"]:
        docs = yaml_documents(opts["--config"])
        kinds = {d.get("kind") for d in docs}
        bad = [
            d.get("kind")
            for d in docs
            if d.get("apiVersion", "").startswith("kubeadm.k8s.io/")
            and d["apiVersion"] != "kubeadm.k8s.io/v1beta4"
        ]
        if bad or not kinds & {"InitConfiguration", "ClusterConfiguration", "JoinConfiguration"}:
            raise Exit(1, f"invalid kubeadm config: {sorted(map(str, kinds))}")
        print("ok")
    elif verb == "init":
        kubeadm_init(opts)
    elif verb == "join":
        kubeadm_join(opts)
    elif verb == "reset":
        kubeadm_reset()
    elif rest[:2] == ["token", "create"]:
        cluster = cluster_state()
        if not cluster["healthy"]:
            raise Exit(1, "failed to create token: connection refused")
        token = f"{secrets.token_hex(3)}.{secrets.token_hex(8)}"
        cluster["tokens"].append(token)
        cluster.setdefault("issued", []).append(token)  # for tests: must never leak
        save("cluster.json", cluster)
        print(token)
    elif rest[:2] == ["token", "delete"]:
        cluster = cluster_state()
        cluster["tokens"] = [t for t in cluster["tokens"] if t.split(".")[0] != rest[2]]
        save("cluster.json", cluster)
        print(f'bootstrap token "{rest[2]}" deleted')
    else:
        raise Exit(1, f"kubeadm stand-in: unsupported {args}")


def kubeadm_init(opts: dict[str, str]) -> None:
    for leftover in ("manifests/kube-apiserver.yaml", "admin.conf", "kubelet.conf"):
        if (K8S / leftover).exists():
            name = "etc-kubernetes-" + leftover.replace("/", "-")
            raise Exit(
                1,
                f"[preflight] Some fatal errors occurred:\n\t[ERROR FileAvailable--{name}]: /etc/kubernetes/{leftover} already exists",
            )
    docs = {d["kind"]: d for d in yaml_documents(opts["--config"])}
    init, config = docs["InitConfiguration"], docs["ClusterConfiguration"]
    name = init["nodeRegistration"]["name"]
    address = node_ip(init["nodeRegistration"]) or init["localAPIEndpoint"]["advertiseAddress"]
    pki = K8S / "pki"
    (pki / "etcd").mkdir(parents=True, exist_ok=True)
    (K8S / "manifests").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=kubernetes",
            "-days",
            "1",
            "-keyout",
            str(pki / "ca.key"),
            "-out",
            str(pki / "ca.crt"),
        ],
        capture_output=True,
        check=True,
    )
    shutil.copy(pki / "ca.crt", STATE / "ca.crt")
    for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        (K8S / "manifests" / f"{component}.yaml").write_text(f"# stand-in static pod {component}\n")
    for conf in (
        "admin.conf",
        "super-admin.conf",
        "kubelet.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ):
        path = K8S / conf
        path.write_text(f"# stand-in kubeconfig {conf}\nserver: https://{address}:6443\n")
        path.chmod(0o600)
    cluster = cluster_state()
    cluster.update(
        healthy=True,
        init_count=cluster["init_count"] + 1,
        version=config["kubernetesVersion"],
        pod_subnet=config["networking"]["podSubnet"],
        nodes={
            name: {
                "address": address,
                "role": "control-plane",
                "version": config["kubernetesVersion"],
            }
        },
        objects={},
        tokens=[],
    )
    save("cluster.json", cluster)
    state = node_state()
    state["services"]["kubelet"] = {"active": True, "enabled": True}
    state["kube_rules"] = True
    save(f"node-{NODE}.json", state)
    print("Your Kubernetes control-plane has initialized successfully! (stand-in)")
    if "--skip-token-print" not in opts:
        print(f"kubeadm join {address}:6443 --token <value withheld by the stand-in>")


def kubeadm_join(opts: dict[str, str]) -> None:
    if (K8S / "kubelet.conf").exists():
        raise Exit(
            1,
            "[preflight] Some fatal errors occurred:\n\t[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists",
        )
    config = Path(opts["--config"])
    mode = config.stat().st_mode & 0o777
    if mode != 0o600:
        raise Exit(1, f"stand-in: {config} has mode {mode:o}, want 600")
    join = {d["kind"]: d for d in yaml_documents(str(config))}["JoinConfiguration"]
    discovery = join["discovery"]["bootstrapToken"]
    cluster = cluster_state()
    if discovery["token"] not in cluster["tokens"]:
        raise Exit(1, "could not find a JWS signature in the cluster-info ConfigMap for token ID")
    want = "sha256:" + ca_hash(STATE / "ca.crt")
    if want not in discovery["caCertHashes"]:
        raise Exit(
            1,
            f"cluster CA found in cluster-info ConfigMap is invalid: none of the public keys {discovery['caCertHashes']} are pinned",
        )
    name = join["nodeRegistration"]["name"]
    (K8S / "pki").mkdir(parents=True, exist_ok=True)
    shutil.copy(STATE / "ca.crt", K8S / "pki" / "ca.crt")
    kubelet_conf = K8S / "kubelet.conf"
    kubelet_conf.write_text(
        f"# stand-in kubeconfig kubelet.conf\nserver: https://{discovery['apiServerEndpoint']}\n"
    )
    kubelet_conf.chmod(0o600)
    cluster.setdefault("joins", []).append({"node": name, "token_id": discovery["token"][:6]})
    cluster["nodes"][name] = {
        "address": node_ip(join["nodeRegistration"]) or "10.0.2.15",
        "role": "worker",
        "version": cluster["version"],
    }
    save("cluster.json", cluster)
    state = node_state()
    state["services"]["kubelet"] = {"active": True, "enabled": True}
    state["kube_rules"] = True
    save(f"node-{NODE}.json", state)
    print("This node has joined the cluster (stand-in)")


def kubeadm_reset() -> None:
    control_plane = (K8S / "admin.conf").exists() or (
        K8S / "manifests/kube-apiserver.yaml"
    ).exists()
    for path in ("manifests", "pki"):
        shutil.rmtree(K8S / path, ignore_errors=True)
    for conf in (
        "admin.conf",
        "super-admin.conf",
        "kubelet.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ):
        (K8S / conf).unlink(missing_ok=True)
    if control_plane:
        cluster = cluster_state()
        cluster.update(healthy=False, nodes={}, objects={}, tokens=[])
        save("cluster.json", cluster)
    state = node_state()
    state["services"].setdefault("kubelet", {"enabled": True})["active"] = False
    save(f"node-{NODE}.json", state)
    print("[reset] stand-in: /etc/kubernetes cleaned")


# ---------------------------------------------------------------- kubectl


def ready(cluster: dict[str, Any]) -> bool:
    return any(key.startswith("cni/") for key in cluster["objects"])


def cni_pod_spec(cluster: dict[str, Any]) -> tuple[str, str] | None:
    objects = cluster["objects"]
    if "cni/weave" in objects:
        return "kube-system", "weave-net"
    if "cni/flannel" in objects:
        return "kube-flannel", "kube-flannel-ds"
    if "cni/calico" in objects:
        return "calico-system", "calico-node"
    return None


def pods(cluster: dict[str, Any], namespace: str) -> list[tuple[str, str]]:
    """(name, status) of the pods a kubeadm cluster of this state runs in ``namespace``."""
    found: list[tuple[str, str]] = []
    nodes = cluster["nodes"]
    if namespace == "kube-system":
        for cp in [n for n, v in nodes.items() if v["role"] == "control-plane"]:
            for component in (
                "etcd",
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
            ):
                found.append((f"{component}-{cp}", "Running"))
        if nodes:
            status = "Running" if ready(cluster) else "Pending"
            found += [("coredns-674b8bbfcf-2x9lq", status), ("coredns-674b8bbfcf-8kq7d", status)]
        for index, name in enumerate(nodes):
            found.append((f"kube-proxy-{index}{name[-1]}x7q", "Running"))
    spec = cni_pod_spec(cluster)
    if spec and spec[0] == namespace:
        found += [(f"{spec[1]}-{index}k{name[-1]}", "Running") for index, name in enumerate(nodes)]
    return found


def node_json(name: str, info: dict[str, Any], cluster: dict[str, Any]) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if info["role"] == "control-plane":
        labels["node-role.kubernetes.io/control-plane"] = ""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": info["address"]},
                {"type": "Hostname", "address": name},
            ],
            "capacity": dict(CAPACITY),
            "allocatable": dict(CAPACITY),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready(cluster) else "False",
                    "reason": "KubeletReady" if ready(cluster) else "KubeletNotReady",
                }
            ],
            "nodeInfo": {
                "kubeletVersion": info["version"],
                "containerRuntimeVersion": "containerd://1.6.20",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
            },
        },
    }


NAMESPACED_KINDS = [
    "configmaps",
    "endpoints",
    "persistentvolumeclaims",
    "pods",
    "secrets",
    "serviceaccounts",
    "services",
    "daemonsets.apps",
    "deployments.apps",
    "replicasets.apps",
    "statefulsets.apps",
    "jobs.batch",
    "ingresses.networking.k8s.io",
    "networkpolicies.networking.k8s.io",
    "roles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
]
CLUSTER_KINDS = [
    "namespaces",
    "nodes",
    "persistentvolumes",
    "customresourcedefinitions.apiextensions.k8s.io",
    "clusterroles.rbac.authorization.k8s.io",
    "clusterrolebindings.rbac.authorization.k8s.io",
    "storageclasses.storage.k8s.io",
]


def kubectl(args: list[str]) -> None:
    opts, rest = options(
        args,
        {
            "--kubeconfig",
            "-n",
            "--namespace",
            "-o",
            "--output",
            "-f",
            "-c",
            "--timeout",
            "--request-timeout",
            "--raw",
            "--verbs",
            "--for",
        },
    )
    kubeconfig = Path(
        opts.get("--kubeconfig") or os.environ.get("KUBECONFIG") or "/root/.kube/config"
    )
    if not kubeconfig.exists():
        raise Exit(1, f"error: stat {kubeconfig}: no such file or directory")
    cluster = cluster_state()
    if not cluster["healthy"]:
        raise Exit(
            1,
            "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?",
        )
    namespace = opts.get("-n") or opts.get("--namespace") or "default"
    output = opts.get("-o") or opts.get("--output") or ""
    verb = rest[0] if rest else ""
    if verb == "get" and "--raw" in opts:
        print("ok")
        return
    if kubeconfig.name == "kubelet.conf" and not (verb == "get" and rest[1:2] == ["node"]):
        raise Exit(1, "Error from server (Forbidden): a node may only read its own Node object")
    if verb == "get":
        kubectl_get(rest[1:], opts, namespace, output, cluster)
    elif verb in {"apply", "create", "replace"}:
        kubectl_apply(verb, opts["-f"], cluster)
    elif verb == "set" and rest[1:3] == ["env", "daemonset/weave-net"]:
        env = dict(pair.split("=", 1) for pair in rest[3:])
        cluster["objects"]["cni/weave"]["env"] = env
        save("cluster.json", cluster)
        print("daemonset.apps/weave-net env updated")
    elif verb == "rollout":
        target = rest[2]
        if not any(
            target.endswith(str(obj.get("name") or "?")) for obj in cluster["objects"].values()
        ):
            raise Exit(1, f"Error from server (NotFound): {target} not found")
        print(f"{target} successfully rolled out")
    elif verb == "drain":
        print(f"node/{rest[1]} drained")
    elif verb == "delete" and rest[1] == "node":
        cluster["nodes"].pop(rest[2], None)
        save("cluster.json", cluster)
        print(f'node "{rest[2]}" deleted')
    elif verb == "api-resources":
        namespaced = opts.get("--namespaced", "true") == "true"
        print("\n".join(NAMESPACED_KINDS if namespaced else CLUSTER_KINDS))
    else:
        raise Exit(1, f"kubectl stand-in: unsupported {args}")


def kubectl_apply(verb: str, path: str, cluster: dict[str, Any]) -> None:
    text = Path(path).read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    images = re.findall(r"image: (\S+)", text)
    for doc in docs:
        kind, name = doc.get("kind"), (doc.get("metadata") or {}).get("name")
        key = {
            ("DaemonSet", "weave-net"): "cni/weave",
            ("DaemonSet", "kube-flannel-ds"): "cni/flannel",
            ("Installation", "default"): "cni/calico",
        }.get((kind, name), f"{kind}/{name}")
        if verb == "create" and key in cluster["objects"]:
            raise Exit(1, f'Error from server (AlreadyExists): {kind} "{name}" already exists')
        obj: dict[str, Any] = {"name": name, "kind": kind, "image": images[0] if images else ""}
        if kind == "Installation":
            obj["cidr"] = doc["spec"]["calicoNetwork"]["ipPools"][0]["cidr"]
        if kind == "ConfigMap" and "net-conf.json" in (doc.get("data") or {}):
            cluster["flannel_network"] = json.loads(doc["data"]["net-conf.json"])["Network"]
        cluster["objects"][key] = obj
        print(f"{kind.lower()}/{name} {verb}d")
    save("cluster.json", cluster)


def kubectl_get(
    rest: list[str], opts: dict[str, str], namespace: str, output: str, cluster: dict[str, Any]
) -> None:
    kind = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else None
    objects = cluster["objects"]
    if kind in {"nodes", "node", "no"}:
        nodes = cluster["nodes"]
        if name is not None and name not in nodes:
            raise Exit(1, f'Error from server (NotFound): nodes "{name}" not found')
        chosen = {name: nodes[name]} if name else nodes
        if output == "json":
            items = [node_json(n, i, cluster) for n, i in chosen.items()]
            print(
                json.dumps(
                    items[0] if name else {"apiVersion": "v1", "kind": "List", "items": items},
                    indent=2,
                )
            )
        elif output.startswith("jsonpath") and "InternalIP" in output:
            print(" ".join(i["address"] for i in chosen.values()), end="")
        elif output.startswith("jsonpath") and ".metadata.name" in output:
            print("\n".join(chosen))
        else:
            if "--no-headers" not in opts:
                print("NAME     STATUS   ROLES           AGE   VERSION")
            for n, i in chosen.items():
                status = "Ready" if ready(cluster) else "NotReady"
                role = "control-plane" if i["role"] == "control-plane" else "<none>"
                print(f"{n:<8} {status:<8} {role:<15} 1m    {i['version']}")
        return
    if kind in {"pods", "pod", "po"}:
        if "--no-headers" not in opts:
            print("NAME   READY   STATUS   RESTARTS   AGE")
        for pod, status in pods(cluster, namespace):
            print(f"{pod}   1/1   {status}   0   1m")
        return
    if kind in {"daemonset", "ds"}:
        key = {"weave-net": "cni/weave", "kube-flannel-ds": "cni/flannel"}.get(name or "")
        if key not in objects:
            raise Exit(1, f'Error from server (NotFound): daemonsets.apps "{name}" not found')
        obj = objects[key]
        if "IPALLOC_RANGE" in output:
            print(obj.get("env", {}).get("IPALLOC_RANGE", ""), end="")
        elif ".image" in output:
            print(obj["image"], end="")
        else:
            print(f"{name}   3   3   3")
        return
    if kind == "deployment" and name == "tigera-operator":
        if "Deployment/tigera-operator" not in objects:
            raise Exit(
                1, 'Error from server (NotFound): deployments.apps "tigera-operator" not found'
            )
        print("tigera-operator   1/1   1   1   1m")
        return
    if kind == "installation":
        if "cni/calico" not in objects:
            raise Exit(
                1,
                'Error from server (NotFound): installations.operator.tigera.io "default" not found',
            )
        print(objects["cni/calico"]["cidr"] if "cidr" in output else "default   1m", end="")
        return
    if kind == "tigerastatus":
        if "cni/calico" in objects:
            print("apiserver   True   False   False   1m\ncalico      True   False   False   1m")
        return
    if output == "yaml":
        items = []
        if kind == "configmaps":
            items = [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
                    "data": {"stand-in": "true"},
                }
            ]
        if kind == "nodes":
            items = [node_json(n, i, cluster) for n, i in cluster["nodes"].items()]
        print(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "List",
                    "items": items,
                    "metadata": {"resourceVersion": ""},
                }
            ),
            end="",
        )
        return
    raise Exit(1, f"kubectl stand-in: unsupported get {rest} {opts}")


TOOLS = {
    "apt-get": apt_get,
    "apt-mark": apt_mark,
    "apt-cache": apt_cache,
    "dpkg-query": dpkg_query,
    "systemctl": systemctl,
    "modprobe": modprobe,
    "lsmod": lsmod,
    "sysctl": sysctl,
    "swapoff": swapoff,
    "swapon": swapon,
    "containerd": containerd,
    "curl": curl,
    "gpg": gpg,
    "etcdctl": etcdctl,
    "iptables": iptables,
    "kubeadm": kubeadm,
    "kubectl": kubectl,
}


STDIN: list[bytes] = []


def main() -> int:
    args = sys.argv[1:]
    if TOOL == "gpg":
        # Read the pipe before taking the lock: the curl feeding it needs the lock to finish.
        STDIN.append(sys.stdin.buffer.read())
    STATE.mkdir(exist_ok=True)
    with open(STATE / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(STATE / "calls.log", "a") as log:
            log.write(f"{NODE}\t{TOOL}\t{json.dumps(args)}\n")
        try:
            TOOLS[TOOL](args)
        except Exit as stop:
            if stop.message:
                print(stop.message, file=sys.stderr)
            return stop.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
