"""What a node's Kubernetes files say about access: pure parsers.

- kubeconfig files: the client certificate's subject (CN = user, O = groups, as the API
  server's x509 authenticator reads them: staging/src/k8s.io/apiserver/pkg/authentication/
  request/x509/x509.go CommonNameUserConversion) and its expiry; ``system:masters`` in O
  bypasses RBAC entirely (the cluster-admin ClusterRoleBinding's group, and RBAC cannot
  revoke it). Only the public ``client-certificate-data`` is ever read, never a key.
- certificates (pki/*.crt): expiry, as ``kubeadm certs check-expiration`` reports it.
- static pod manifests (kube-apiserver, etcd): the command-line flags that open access
  (kube-bench's CIS checks 1.2.x and 2.x).
- the kubelet's config file (/var/lib/kubelet/config.yaml, KubeletConfiguration):
  anonymous authentication, authorization mode, read-only port (CIS 4.2.1-4.2.4).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID


@dataclass(frozen=True, slots=True)
class ClientCert:
    """Who a kubeconfig's (or a PEM file's) certificate authenticates as."""

    file: str
    user: str
    groups: tuple[str, ...]
    not_after: dt.datetime
    issuer: str

    @property
    def system_masters(self) -> bool:
        return "system:masters" in self.groups


def parse_certificates(pem: bytes, file: str) -> list[ClientCert]:
    """Every certificate of a PEM bundle; what is not a certificate is skipped."""
    found: list[ClientCert] = []
    for block in pem.split(b"-----END CERTIFICATE-----"):
        start = block.find(b"-----BEGIN CERTIFICATE-----")
        if start < 0:
            continue
        try:
            cert = x509.load_pem_x509_certificate(block[start:] + b"-----END CERTIFICATE-----\n")
        except ValueError:
            continue
        subject = cert.subject
        common = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        orgs = subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        issuer = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
        found.append(
            ClientCert(
                file=file,
                user=str(common[0].value) if common else "",
                groups=tuple(str(o.value) for o in orgs),
                not_after=cert.not_valid_after_utc,
                issuer=str(issuer[0].value) if issuer else "",
            )
        )
    return found


_CERT_DATA = re.compile(r"^\s*client-certificate-data:\s*(\S+)\s*$", re.M)


def kubeconfig_certs(text: str, file: str) -> list[ClientCert]:
    """The client certificates embedded in a kubeconfig (``users[].user.client-certificate-data``),
    from the whole file or from just those lines (what the kube probe sends). A certificate
    named by path (``client-certificate:``) is read from its file by the probe instead."""
    found: list[ClientCert] = []
    for data in _CERT_DATA.findall(text):
        try:
            pem = base64.b64decode(data.strip("'\""), validate=False)
        except (binascii.Error, ValueError):
            continue
        found += parse_certificates(pem, file)
    return found


def days_left(not_after: dt.datetime, now: dt.datetime) -> float:
    return (not_after - now).total_seconds() / 86400


def command_flags(manifest: str) -> dict[str, str]:
    """``--flag=value`` (and bare ``--flag``) of a static pod's first container's command and
    args, as kubeadm writes /etc/kubernetes/manifests/*.yaml."""
    try:
        document = yaml.safe_load(manifest)
    except yaml.YAMLError:
        return {}
    if not isinstance(document, dict):
        return {}
    containers = ((document.get("spec") or {}).get("containers")) or []
    if not containers:
        return {}
    words = [
        str(w) for w in (containers[0].get("command") or []) + (containers[0].get("args") or [])
    ]
    flags: dict[str, str] = {}
    for word in words:
        if word.startswith("--"):
            name, _, value = word[2:].partition("=")
            flags[name] = value if "=" in word else "true"
    return flags


@dataclass(frozen=True, slots=True)
class FlagProblem:
    rule: str
    message: str


def apiserver_problems(flags: Mapping[str, str]) -> list[FlagProblem]:
    """Flags of kube-apiserver that open access (kube-bench cfg/cis-1.9 master 1.2.x)."""
    problems: list[FlagProblem] = []
    # The API server's default is --anonymous-auth=true (pkg/kubeapiserver/options/
    # authentication.go); kubeadm leaves it so (anonymous requests then reach whatever
    # system:unauthenticated is bound to). CIS 1.2.1.
    if flags.get("anonymous-auth", "true") != "false":
        problems.append(
            FlagProblem(
                "K8S-17", "kube-apiserver allows anonymous requests (--anonymous-auth is not false)"
            )
        )
    modes = flags.get("authorization-mode", "AlwaysAllow").split(",")
    if "AlwaysAllow" in modes:
        problems.append(
            FlagProblem(
                "K8S-18",
                f"kube-apiserver --authorization-mode={','.join(modes)} includes AlwaysAllow",
            )
        )
    elif "RBAC" not in modes or "Node" not in modes:
        problems.append(
            FlagProblem(
                "K8S-18",
                f"kube-apiserver --authorization-mode={','.join(modes)} lacks Node or RBAC",
            )
        )
    plugins = flags.get("enable-admission-plugins", "").split(",")
    if "NodeRestriction" not in plugins:
        problems.append(
            FlagProblem(
                "K8S-19",
                "kube-apiserver --enable-admission-plugins lacks NodeRestriction: "
                "a kubelet can modify other nodes",
            )
        )
    if "token-auth-file" in flags:
        problems.append(
            FlagProblem(
                "K8S-18",
                f"kube-apiserver --token-auth-file={flags['token-auth-file']}: "
                "static tokens that never expire",
            )
        )
    if flags.get("insecure-port", "0") not in ("0", ""):
        problems.append(
            FlagProblem(
                "K8S-18",
                f"kube-apiserver --insecure-port={flags['insecure-port']}: unauthenticated HTTP",
            )
        )
    return problems


def etcd_problems(flags: Mapping[str, str]) -> list[FlagProblem]:
    """etcd serving clients without certificate authentication (CIS 2.2, 2.4)."""
    problems: list[FlagProblem] = []
    if flags.get("client-cert-auth") != "true":
        problems.append(
            FlagProblem(
                "K8S-20",
                "etcd --client-cert-auth is not true: any client that reaches 2379 "
                "reads and writes the whole cluster",
            )
        )
    if any(
        url.startswith("http://") and "127.0.0.1" not in url
        for url in flags.get("listen-client-urls", "").split(",")
    ):
        problems.append(
            FlagProblem(
                "K8S-20", f"etcd listens for clients over plain HTTP: {flags['listen-client-urls']}"
            )
        )
    if flags.get("peer-client-cert-auth") != "true":
        problems.append(FlagProblem("K8S-20", "etcd --peer-client-cert-auth is not true"))
    return problems


def kubelet_problems(config: str) -> list[FlagProblem]:
    """KubeletConfiguration (kubelet.config.k8s.io/v1beta1): the kubelet's own defaults are
    anonymous enabled, AlwaysAllow and read-only port 10255; kubeadm writes the safe values,
    so a problem here is a hand edit or another installer."""
    try:
        document = yaml.safe_load(config)
    except yaml.YAMLError:
        return []
    if not isinstance(document, dict):
        return []
    problems: list[FlagProblem] = []
    auth = document.get("authentication") or {}
    anonymous = (auth.get("anonymous") or {}).get("enabled", True)
    if anonymous is not False:
        problems.append(
            FlagProblem(
                "K8S-21", "kubelet allows anonymous requests (authentication.anonymous.enabled)"
            )
        )
    mode = (document.get("authorization") or {}).get("mode", "AlwaysAllow")
    if mode != "Webhook":
        problems.append(
            FlagProblem(
                "K8S-21",
                f"kubelet authorization.mode {mode}: every authenticated request is allowed",
            )
        )
    port = document.get("readOnlyPort", 0)
    if port not in (0, None):
        problems.append(
            FlagProblem(
                "K8S-22",
                f"kubelet read-only port {port} open (no authentication: pods, specs, metrics)",
            )
        )
    return problems


@dataclass(frozen=True, slots=True)
class BootstrapToken:
    token_id: str
    expires: dt.datetime | None  # None: never expires


def bootstrap_tokens(table: str) -> list[BootstrapToken]:
    """``kubectl get secrets -n kube-system --field-selector type=bootstrap.kubernetes.io/token
    -o custom-columns=NAME:.metadata.name,EXPIRES:.data.expiration --no-headers`` lines:
    ``bootstrap-token-<id> <base64 RFC 3339 or <none>>``. The token's secret half is never read."""
    found: list[BootstrapToken] = []
    for line in table.splitlines():
        words = line.split()
        if len(words) != 2 or not words[0].startswith("bootstrap-token-"):
            continue
        token_id = words[0].removeprefix("bootstrap-token-")
        expires: dt.datetime | None = None
        if words[1] != "<none>":
            try:
                text = base64.b64decode(words[1]).decode()
                expires = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except (binascii.Error, ValueError, UnicodeDecodeError):
                continue
        found.append(BootstrapToken(token_id, expires))
    return found


def valid_tokens(tokens: list[BootstrapToken], now: dt.datetime) -> list[BootstrapToken]:
    return [t for t in tokens if t.expires is None or t.expires > now]
