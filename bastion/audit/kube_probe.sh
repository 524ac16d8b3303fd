#!/bin/sh
# bastion's cluster access probe: read-only, one `sudo -n sh -s` per node, sectioned output.
# Reads RBAC objects, bootstrap token ids and expiries (never their secret half), the API
# server's and etcd's static pod manifests, the kubelet's config, the client-certificate-data
# lines of kubeconfig files (never client-key-data) and the certificate blocks of pki files
# (never a key). Sections: "=== NAME [PATH]".
set -u
section() { printf '\n=== %s\n' "$*"; }
admin=/etc/kubernetes/admin.conf
if [ -r "$admin" ] && command -v kubectl >/dev/null 2>&1; then
    k="kubectl --kubeconfig $admin --request-timeout=20s"
    section control-plane
    section rbac
    $k get clusterroles,roles,clusterrolebindings,rolebindings -A -o json 2>/dev/null \
        || echo '{"error": "kubectl get rbac failed"}'
    section tokens
    $k -n kube-system get secrets --field-selector type=bootstrap.kubernetes.io/token \
        -o custom-columns=NAME:.metadata.name,EXPIRES:.data.expiration --no-headers 2>/dev/null
fi
for f in /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/manifests/etcd.yaml; do
    [ -f "$f" ] || continue
    section manifest "$f"
    cat "$f"
done
if [ -f /var/lib/kubelet/config.yaml ]; then
    section kubelet-config /var/lib/kubelet/config.yaml
    cat /var/lib/kubelet/config.yaml
fi
for f in /etc/kubernetes/*.conf /root/.kube/config /home/*/.kube/config; do
    [ -f "$f" ] || continue
    section kubeconfig "$f"
    grep -E '^[[:space:]]*client-certificate-data:' "$f"
done
for f in /etc/kubernetes/pki/*.crt /etc/kubernetes/pki/etcd/*.crt /var/lib/kubelet/pki/kubelet-client-current.pem; do
    [ -f "$f" ] || continue
    section cert "$f"
    sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' "$f"
done
exit 0
