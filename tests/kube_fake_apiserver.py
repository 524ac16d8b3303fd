"""A minimal Kubernetes API server on loopback, so that REAL kubectl prints its own output
shapes (``get ... -o json``, ``auth can-i --list``) for tests: the oracle for what the
stand-ins and the cluster audit's parsers must read.

It answers legacy discovery (/api, /apis, /api/v1, /apis/GROUP/VERSION), lists of the
objects it was given, and SelfSubjectRulesReview. Nothing else; no authentication.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# (group, version, plural, kind, namespaced)
RESOURCES = (
    ("", "v1", "nodes", "Node", False),
    ("", "v1", "namespaces", "Namespace", False),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", False),
)


def _resource_list(group: str, version: str) -> dict[str, Any]:
    resources = []
    for g, v, plural, kind, namespaced in RESOURCES:
        if (g, v) != (group, version):
            continue
        verbs = ["create"] if kind == "SelfSubjectRulesReview" else ["get", "list", "watch"]
        resources.append(
            {"name": plural, "singularName": kind.lower(), "namespaced": namespaced,
             "kind": kind, "verbs": verbs}
        )  # fmt: skip
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": resources}  # fmt: skip


@dataclass
class FakeApiServer:
    url: str
    objects: list[dict[str, Any]]
    rules: dict[str, Any]


def _handler(server: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _send(self, body: Mapping[str, Any], code: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/api":
                return self._send({"kind": "APIVersions", "versions": ["v1"]})
            if path == "/apis":
                groups = sorted({g for g, *_ in RESOURCES if g})
                entries = []
                for g in groups:
                    version = {"groupVersion": f"{g}/v1", "version": "v1"}
                    entries.append({"name": g, "versions": [version], "preferredVersion": version})
                return self._send({"kind": "APIGroupList", "apiVersion": "v1", "groups": entries})
            if path == "/api/v1":
                return self._send(_resource_list("", "v1"))
            parts = path.strip("/").split("/")
            if parts[0] == "apis" and len(parts) == 3:
                return self._send(_resource_list(parts[1], parts[2]))
            for group, version, plural, kind, _ in RESOURCES:
                prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
                if path == f"{prefix}/{plural}":
                    items = [o for o in server.objects if o.get("kind") == kind]
                    return self._send({
                        "kind": f"{kind}List", "apiVersion": f"{group}/{version}".lstrip("/"),
                        "metadata": {"resourceVersion": "4242"},
                        "items": [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
                                  for o in items],
                    })  # fmt: skip
            return self._send({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                               "reason": "NotFound", "code": 404}, 404)  # fmt: skip

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)  # kubectl may send protobuf: the answer does not need it
            if self.path.split("?")[0].endswith("/selfsubjectrulesreviews"):
                review = {
                    "kind": "SelfSubjectRulesReview",
                    "apiVersion": "authorization.k8s.io/v1",
                    "metadata": {},
                    "spec": {"namespace": "default"},
                    "status": server.rules,
                }
                return self._send(review, 201)
            return self._send({"kind": "Status", "code": 404}, 404)

    return Handler


@contextmanager
def fake_apiserver(
    objects: Sequence[dict[str, Any]], rules: dict[str, Any] | None = None
) -> Iterator[FakeApiServer]:
    state = FakeApiServer("", list(objects), rules or {"resourceRules": [], "nonResourceRules": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def real_kubectl() -> str | None:
    """The path of a real kubectl (not a stand-in), or None."""
    found = shutil.which("kubectl")
    if found is None:
        return None
    done = subprocess.run([found, "version", "--client", "-o", "json"], capture_output=True,
                          text=True, check=False, timeout=60)  # fmt: skip
    return found if done.returncode == 0 and "clientVersion" in done.stdout else None


def run_kubectl(kubectl: str, server: FakeApiServer, tmp: Path, *args: str) -> str:
    config = tmp / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n"
        f"    server: {server.url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n"
        "    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user: {}\n"
    )
    done = subprocess.run(
        [kubectl, "--kubeconfig", str(config), "--cache-dir", str(tmp / "cache"), *args],
        capture_output=True, text=True, check=False, timeout=120,
        env={"HOME": str(tmp), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout
