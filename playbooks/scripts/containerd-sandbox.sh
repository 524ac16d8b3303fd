#!/bin/sh
# Set containerd's sandbox (pause) image to the one this kubeadm uses, then restart containerd.
# containerd 1.x: `sandbox_image` of the cri plugin; 2.x: `sandbox` under pinned_images.
# kubeadm names the image for its own version (`--kubernetes-version` keeps it off the internet).
set -eu
want=$(kubeadm config images list --kubernetes-version "$(kubeadm version -o short)" | grep '/pause:')
[ -n "$want" ] || { echo "kubeadm config images list names no pause image" >&2; exit 1; }
config=/etc/containerd/config.toml
if grep -Eq '^[[:space:]]*sandbox_image[[:space:]]*=' "$config"; then
    sed -i -E "s#^([[:space:]]*sandbox_image[[:space:]]*=[[:space:]]*).*#\\1\"$want\"#" "$config"
elif grep -Eq '^[[:space:]]*sandbox[[:space:]]*=' "$config"; then
    sed -i -E "s#^([[:space:]]*sandbox[[:space:]]*=[[:space:]]*).*#\\1\"$want\"#" "$config"
else
    echo "$config has no sandbox_image (1.x) or sandbox (2.x) key" >&2
    exit 1
fi
systemctl restart containerd
containerd config dump | grep -Eq "^[[:space:]]*(sandbox_image|sandbox)[[:space:]]*=[[:space:]]*\"$want\"" || {
    echo "containerd config dump does not show the sandbox image $want" >&2
    exit 1
}
echo "containerd: sandbox image $want"
