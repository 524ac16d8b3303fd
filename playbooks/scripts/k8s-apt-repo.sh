#!/bin/sh
# The pkgs.k8s.io apt repository of one Kubernetes minor version (there is one per minor;
# apt.kubernetes.io is gone since 2024-03-04). Usage: k8s-apt-repo.sh 1.33
set -eu
minor=$1
case $minor in
    1.[0-9]|1.[0-9][0-9]) ;;
    *) echo "k8s_version must be a minor version like 1.33, got '$minor'" >&2; exit 2 ;;
esac
export DEBIAN_FRONTEND=noninteractive
repo="https://pkgs.k8s.io/core:/stable:/v$minor/deb/"
keyring=/etc/apt/keyrings/kubernetes-apt-keyring.gpg
install -d -m 0755 /etc/apt/keyrings
curl -fsSL "${repo}Release.key" | gpg --dearmor --yes -o "$keyring"
chmod 0644 "$keyring"
echo "deb [signed-by=$keyring] $repo /" >/etc/apt/sources.list.d/kubernetes.list
apt-get update -q
apt-cache policy kubeadm | grep -q "pkgs.k8s.io/core:/stable:/v$minor" || {
    echo "apt-cache policy kubeadm does not list $repo" >&2
    exit 1
}
