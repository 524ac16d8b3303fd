#!/bin/sh
# Write /etc/containerd/config.toml from `containerd config default` with the runc runtime's
# SystemdCgroup = true, for containerd 1.x (config version 2) and 2.x (version 3), whose
# default config of 2.0/2.1 lacks the key entirely (containerd#12101): a blind sed would
# silently do nothing there, so the key is added under the runc options table when missing.
# Then restart containerd and verify with `containerd config dump`.
set -eu
umask 022
install -d -m 0755 /etc/containerd
new=/etc/containerd/config.toml.bastion-new
containerd config default >"$new"
if grep -Eq '^[[:space:]]*SystemdCgroup[[:space:]]*=' "$new"; then
    sed -i -E 's/^([[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*)false/\1true/' "$new"
else
    sed -i -E '/runtimes[.]runc[.]options\]/a\
            SystemdCgroup = true' "$new"
fi
# Docker's containerd.io package disables CRI; kubeadm then fails with "unknown service
# runtime.v1.RuntimeService". The default config never disables it, but check anyway.
if grep -Eq '^[[:space:]]*disabled_plugins[[:space:]]*=.*"cri"' "$new"; then
    echo "containerd config default disables the cri plugin" >&2
    exit 1
fi
mv "$new" /etc/containerd/config.toml
systemctl restart containerd
systemctl enable containerd
systemctl is-active --quiet containerd
containerd config dump | grep -Eq '^[[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*true' || {
    echo "containerd config dump does not show SystemdCgroup = true" >&2
    exit 1
}
echo "containerd: SystemdCgroup = true"
