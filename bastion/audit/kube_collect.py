"""Collection for the cluster access audit: kube_probe.sh on every selected node through the
executor (one round trip each, like the host probe), its sections -> `KubeObservation`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import resources

from bastion.audit.kube_audit import KubeObservation
from bastion.audit.probe import PROBE_COMMAND
from bastion.executor import RunOptions, Task, run
from bastion.models import Event, Host, HostResult, Status

DEFAULT_KUBE_PROBE_TIMEOUT_S = 120.0
CLUSTER_LABEL = "cluster"
MARK = "=== "


def kube_probe_script() -> bytes:
    return resources.files("bastion.audit").joinpath("kube_probe.sh").read_bytes()


def cluster_name(host: Host, default: str) -> str:
    """A host's cluster: its ``cluster`` label, else ``default`` (the inventory's control
    plane name, or the host's own)."""
    return host.labels.get(CLUSTER_LABEL) or default


def collect_kube(
    hosts: Sequence[Host],
    options: RunOptions,
    default_cluster: str,
    emit: Callable[[Event], None] = lambda event: None,
) -> list[KubeObservation]:
    """Run the kube probe on every host; an unreachable or failed host is an observation with
    an error, never raised."""
    options = RunOptions(
        forks=options.forks,
        timeout=options.timeout or DEFAULT_KUBE_PROBE_TIMEOUT_S,
        stdin=kube_probe_script(),
        connect=options.connect,
    )
    results = run([Task(host, PROBE_COMMAND) for host in hosts], options, emit)
    by_name = {host.name: host for host in hosts}
    return [
        observe_kube(result, cluster_name(by_name[result.host], default_cluster))
        for result in results
    ]


def observe_kube(result: HostResult, cluster: str) -> KubeObservation:
    seen = parse_kube_probe(result.host, cluster, result.stdout)
    if result.status is not Status.OK:
        seen.errors.append(result.error or f"kube probe {result.status.value}")
    return seen


def parse_kube_probe(host: str, cluster: str, output: str) -> KubeObservation:
    """The probe's sections (``=== NAME [PATH]`` then the body) into an observation."""
    seen = KubeObservation(host=host, cluster=cluster)
    name, arg, body = "", "", []
    for line in [*output.splitlines(), MARK + "end"]:
        if not line.startswith(MARK):
            body.append(line)
            continue
        text = "\n".join(body).strip("\n") + "\n"
        _store(seen, name, arg, text)
        name, _, arg = line[len(MARK) :].partition(" ")
        body = []
    return seen


def _store(seen: KubeObservation, name: str, arg: str, text: str) -> None:
    if name == "control-plane":
        seen.control_plane = True
    elif name == "rbac":
        seen.rbac = text
    elif name == "tokens":
        seen.tokens = text
    elif name == "manifest" and arg.endswith("/kube-apiserver.yaml"):
        seen.apiserver = text
    elif name == "manifest" and arg.endswith("/etcd.yaml"):
        seen.etcd = text
    elif name == "kubelet-config":
        seen.kubelet_config = text
    elif name == "kubeconfig" and arg:
        seen.kubeconfigs[arg] = text
    elif name == "cert" and arg:
        seen.certs[arg] = text.encode()
