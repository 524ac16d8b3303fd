#!/bin/sh
# Check the pods a kubeadm cluster runs once it is healthy, all Running:
#   coredns (at least one), etcd-CP, kube-apiserver-CP, kube-controller-manager-CP,
#   kube-scheduler-CP, kube-proxy on every node, and the CNI's pod on every node.
# Usage: verify-pods.sh CONTROL_PLANE_NODE NODE_COUNT CNI   (prints what is missing)
set -u
cp=$1 nodes=$2 cni=$3
kubectl="kubectl --kubeconfig /etc/kubernetes/admin.conf"
missing=0

running() {  # running NAMESPACE NAME-PREFIX: how many pods of that prefix are Running
    $kubectl -n "$1" get pods --no-headers 2>/dev/null \
        | awk -v p="$2" 'index($1, p) == 1 && $3 == "Running" { n++ } END { print n + 0 }'
}

expect() {  # expect NAMESPACE NAME-PREFIX COUNT
    got=$(running "$1" "$2")
    if [ "$got" -ge "$3" ]; then
        echo "ok       $1/$2* running: $got"
    else
        echo "missing  $1/$2* running: $got, want $3"
        # Name the pods that are there but not Running (CrashLoopBackOff on one node: a CNI
        # agent that cannot start there, e.g. calico-node with a duplicate node address).
        $kubectl -n "$1" get pods --no-headers 2>/dev/null \
            | awk -v p="$2" 'index($1, p) == 1 && $3 != "Running" { print "         " $1 " " $3 }'
        missing=1
    fi
}

expect kube-system coredns- 1
for c in etcd kube-apiserver kube-controller-manager kube-scheduler; do
    expect kube-system "$c-$cp" 1
done
expect kube-system kube-proxy- "$nodes"
case $cni in
    weave) expect kube-system weave-net- "$nodes" ;;
    calico) expect calico-system calico-node- "$nodes" ;;
    flannel) expect kube-flannel kube-flannel-ds- "$nodes" ;;
    *) echo "unknown cni '$cni' (weave, calico or flannel)"; exit 2 ;;
esac
exit "$missing"
