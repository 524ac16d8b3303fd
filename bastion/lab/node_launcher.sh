#!/bin/sh
# The lab's namespace launcher: turns the fresh UTS and mount namespaces `unshare` gave it into
# a root-mode lab node, then becomes the node's sshd (bastion/lab/sshd.py, docs/lab.md).
#
#   node_launcher.sh NODE_DIR NAME CONFIG SSHD MOUNT PATH_PREFIX [DIR UPPER WORK]...
#
# PATH_PREFIX is "" without BASTION_LAB_PATH_PREFIX. Each overlaid DIR (/etc, /root, /home)
# comes with the names of its UPPER and WORK layers inside NODE_DIR (etc.upper, etc.work).
# `unshare` does not fork and this script ends in exec, so the pid `bastion lab up` records
# is the sshd itself. Paths arrive as arguments, never spliced into the script; the lab checks
# they are plain (no ",", ":" or space, which overlay options and /proc/PID/cmdline would
# split on).
set -eu
node_dir=$1 name=$2 config=$3 sshd=$4 mount=$5 prefix=$6
shift 6

# Every layer is reached through descriptors opened now, before any mount: the lab directory
# may lie under a directory overlaid below (state under /root while /home is overlaid too,
# a lab under /home or /etc) or under /tmp, and a path resolved after a mount would land on
# the node's overlay or tmpfs instead of the host's directory (the kernel then refuses an
# overlay as upperdir, or the node loses its own files).
exec 3<"$node_dir"
layers=/proc/self/fd/3
if [ -n "$prefix" ]; then
    exec 4<"$prefix"
fi

echo "$name" >/proc/sys/kernel/hostname

# A private copy-on-write copy of each overlaid directory: the host's directory is the lower
# layer, the node's changes go to its upper layer in NODE_DIR.
while [ $# -gt 0 ]; do  # (overlaid dir, upper layer, work dir): layers named in NODE_DIR
    "$mount" -t overlay overlay -o "lowerdir=$1,upperdir=$layers/$2,workdir=$layers/$3" "$1"
    shift 3
done

# A fresh /tmp, as after a reboot.
"$mount" -t tmpfs -o mode=1777,nosuid,nodev,size=512m tmpfs /tmp

# The node directory back over its own path (the mounts above may hide it), for sshd's config,
# host key and pid file; the lab also recognises the node's namespace by this mount point.
mkdir -p "$node_dir"
"$mount" --no-canonicalize --bind "$layers" "$node_dir"
exec 3<&-

# The stand-ins' directory too, wherever it is (under /tmp the node would not see it).
if [ -n "$prefix" ]; then
    mkdir -p "$prefix"
    "$mount" --no-canonicalize --bind /proc/self/fd/4 "$prefix"
    exec 4<&-
fi

echo "$name" >/etc/hostname
exec "$sshd" -D -e -f "$config"
