#!/bin/sh
# Prove the pod network: one pod pinned to each node (spec.nodeName), then from each pod a
# ping to the pod of every other node and a cluster DNS lookup; prints every broken pair and
# node. The pods are deleted at the end, whatever happened.
# Usage: verify-network.sh IMAGE "NODE NODE..."     (exit 1 when some traffic does not cross)
set -u
image=$1 nodes=$2
kubectl="kubectl --kubeconfig /etc/kubernetes/admin.conf -n default"
label=app.kubernetes.io/name=bastion-netcheck
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    $kubectl delete pod -l "$label" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT
$kubectl delete pod -l "$label" --ignore-not-found --timeout=60s >/dev/null 2>&1 || true
for node in $nodes; do
    $kubectl run "bastion-netcheck-$node" --image="$image" --restart=Never --labels="$label" \
        --overrides="{\"apiVersion\":\"v1\",\"spec\":{\"nodeName\":\"$node\"}}" \
        --command -- sleep 600 >/dev/null || exit 1
done
if ! $kubectl wait --for=condition=Ready pod -l "$label" --timeout=180s >/dev/null; then
    echo "network: the check pods are not Ready:"
    $kubectl get pods -l "$label" -o wide
    exit 1
fi
ips=$($kubectl get pods -l "$label" -o jsonpath='{range .items[*]}{.spec.nodeName}{" "}{.status.podIP}{"\n"}{end}')
failed=0
for from in $nodes; do
    for to in $nodes; do
        [ "$from" = "$to" ] && continue
        ip=$(printf '%s\n' "$ips" | awk -v n="$to" '$1 == n { print $2 }')
        if [ -n "$ip" ] && $kubectl exec "bastion-netcheck-$from" -- ping -c 1 -W 2 "$ip" >/dev/null 2>&1; then
            echo "ok      pod traffic $from -> $to ($ip)"
        else
            echo "broken  pod traffic $from -> $to (pod ${ip:-without an IP}): pods on $from cannot reach pods on $to"
            failed=1
        fi
    done
    if $kubectl exec "bastion-netcheck-$from" -- nslookup kubernetes.default.svc.cluster.local >/dev/null 2>&1; then
        echo "ok      cluster DNS from $from"
    else
        echo "broken  cluster DNS from $from: kubernetes.default.svc.cluster.local does not resolve"
        failed=1
    fi
done
exit "$failed"
