#!/bin/sh
# An etcd snapshot first, then every listable resource kind as YAML, into ~/k8s-backup of the
# user who ran sudo (0700, files 0600, owned by that user, so it can fetch them):
#   etcd-snapshot.db   etcdctl snapshot save (kubeadm's stacked etcd; the etcd pod's etcdctl,
#                      else the host's)
#   resources.tar.gz   namespaced/<kind>.yaml (all namespaces) and cluster/<kind>.yaml
# The snapshot comes first: it is the backup that restores a cluster. A kind that cannot be
# listed (an aggregated API whose service is down answers 503, e.g. metrics.k8s.io or
# Calico's projectcalico.org) is skipped and named, the other kinds are kept, and the script
# exits 1 at the end so the run says the backup is incomplete.
# Run as root (sudo). Usage: backup.sh NODE   (the control plane's node name: its
# nodeRegistration.name, which names kubeadm's static etcd pod etcd-NODE)
set -u
node=$1
user=${SUDO_USER:-root}
dir="$(getent passwd "$user" | cut -d: -f6)/k8s-backup"
kubectl="kubectl --kubeconfig /etc/kubernetes/admin.conf"
umask 077
rm -rf "$dir"
mkdir -p "$dir/resources/namespaced" "$dir/resources/cluster" || exit 1

pki=/etc/kubernetes/pki/etcd
certs="--endpoints=https://127.0.0.1:2379 --cacert=$pki/ca.crt --cert=$pki/server.crt --key=$pki/server.key"
# First the etcdctl of kubeadm's etcd static pod (label component=etcd, on this node): it
# always matches the server's version and needs nothing installed; its /var/lib/etcd is a
# hostPath, so a snapshot written there appears on this host. Else (API server down, no such
# pod) the host's etcdctl, bounded by `timeout`: etcdctl 3.4 waits forever for an endpoint
# that does not answer. etcdctl logs JSON lines on stderr: kept in a file, shown on failure.
saved=1
pod=$($kubectl -n kube-system get pods -l component=etcd --field-selector "spec.nodeName=$node" -o name 2>/dev/null | head -n 1)
pod=${pod#pod/}
if [ -n "$pod" ]; then
    # shellcheck disable=SC2086 # $certs is four options
    $kubectl -n kube-system exec "$pod" -- etcdctl $certs \
        snapshot save /var/lib/etcd/bastion-snapshot.db >/dev/null 2>"$dir/etcdctl.log" \
        && mv /var/lib/etcd/bastion-snapshot.db "$dir/etcd-snapshot.db"
    saved=$?
fi
if [ "$saved" -ne 0 ] && command -v etcdctl >/dev/null 2>&1; then
    echo "backup: ${pod:-no etcd pod (component=etcd) on node $node}${pod:+ failed}; using the host's etcdctl" >&2
    # shellcheck disable=SC2086 # $certs is four options
    ETCDCTL_API=3 timeout 300 etcdctl $certs snapshot save "$dir/etcd-snapshot.db" >/dev/null 2>>"$dir/etcdctl.log"
    saved=$?
fi
if [ "$saved" -ne 0 ] || [ ! -s "$dir/etcd-snapshot.db" ]; then
    [ ! -f "$dir/etcdctl.log" ] || tail -n 5 "$dir/etcdctl.log" >&2
    [ -n "$pod" ] || command -v etcdctl >/dev/null 2>&1 \
        || echo "backup: no etcd pod (component=etcd) on node $node, and no etcdctl here" >&2
    echo "backup: etcd snapshot failed; no resources exported" >&2
    exit 1
fi
rm -f "$dir/etcdctl.log"

kinds=0 skipped=""
export_kinds() {  # export_kinds SCOPE NAMESPACED_FLAG [--all-namespaces]
    scope=$1 flag=$2
    shift 2
    # api-resources prints what it could discover and exits 1 when some group failed.
    list=$($kubectl api-resources --verbs=list --namespaced="$flag" -o name 2>"$dir/err") \
        || { echo "backup: api-resources: $(head -n 1 "$dir/err")" >&2; skipped="$skipped (discovery)"; }
    for kind in $list; do
        if $kubectl get "$kind" "$@" -o yaml >"$dir/resources/$scope/$kind.yaml" 2>"$dir/err"; then
            kinds=$((kinds + 1))
        else
            echo "backup: skipped $kind: $(head -n 1 "$dir/err")" >&2
            rm -f "$dir/resources/$scope/$kind.yaml"
            skipped="$skipped $kind"
        fi
    done
}
export_kinds namespaced true --all-namespaces
export_kinds cluster false
rm -f "$dir/err"
tar -C "$dir" -czf "$dir/resources.tar.gz" resources || exit 1
rm -rf "$dir/resources"
chown -R "$user:$(id -gn "$user")" "$dir" || exit 1
echo "backup: etcd snapshot $(wc -c <"$dir/etcd-snapshot.db") bytes, $kinds resource kinds"
if [ -n "$skipped" ]; then
    echo "backup: incomplete, not exported:$skipped" >&2
    exit 1
fi
