#!/bin/sh
# Dump every listable resource kind as YAML and take an etcd snapshot, into ~/k8s-backup of
# the user who ran sudo (0700, files 0600, owned by that user, so it can fetch them):
#   resources.tar.gz   namespaced/<kind>.yaml (all namespaces) and cluster/<kind>.yaml
#   etcd-snapshot.db   etcdctl snapshot save (stacked etcd of kubeadm)
# Run as root (sudo). Usage: backup.sh
set -eu
user=${SUDO_USER:-root}
dir="$(getent passwd "$user" | cut -d: -f6)/k8s-backup"
kubeconfig=/etc/kubernetes/admin.conf
umask 077
rm -rf "$dir"
mkdir -p "$dir/resources/namespaced" "$dir/resources/cluster"
kinds=0
for kind in $(kubectl --kubeconfig "$kubeconfig" api-resources --verbs=list --namespaced=true -o name); do
    kubectl --kubeconfig "$kubeconfig" get "$kind" --all-namespaces -o yaml >"$dir/resources/namespaced/$kind.yaml"
    kinds=$((kinds + 1))
done
for kind in $(kubectl --kubeconfig "$kubeconfig" api-resources --verbs=list --namespaced=false -o name); do
    kubectl --kubeconfig "$kubeconfig" get "$kind" -o yaml >"$dir/resources/cluster/$kind.yaml"
    kinds=$((kinds + 1))
done
tar -C "$dir" -czf "$dir/resources.tar.gz" resources
rm -rf "$dir/resources"

pki=/etc/kubernetes/pki/etcd
if command -v etcdctl >/dev/null 2>&1; then
    ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert="$pki/ca.crt" \
        --cert="$pki/server.crt" --key="$pki/server.key" snapshot save "$dir/etcd-snapshot.db" >/dev/null
else
    # kubeadm's etcd runs as a static pod whose image has etcdctl; /var/lib/etcd is its hostPath.
    pod="etcd-$(hostname)"
    kubectl --kubeconfig "$kubeconfig" -n kube-system exec "$pod" -- etcdctl \
        --endpoints=https://127.0.0.1:2379 --cacert="$pki/ca.crt" --cert="$pki/server.crt" \
        --key="$pki/server.key" snapshot save /var/lib/etcd/bastion-snapshot.db >/dev/null
    mv /var/lib/etcd/bastion-snapshot.db "$dir/etcd-snapshot.db"
fi
test -s "$dir/etcd-snapshot.db"
chown -R "$user:$(id -gn "$user")" "$dir"
echo "backup: $kinds resource kinds, etcd snapshot $(wc -c <"$dir/etcd-snapshot.db") bytes"
