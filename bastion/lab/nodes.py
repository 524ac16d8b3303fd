"""A node's directory: its sshd files and, in root mode, the upper layers of its private overlays.

```
<lab dir>/nodes/node1/
    sshd_config  ssh_host_ed25519_key  sshd.log  sshd.pid
    authorized_keys                     (user mode: named by AuthorizedKeysFile)
    etc.upper/  etc.work/               (root mode: the node's copy-on-write /etc,
    root.upper/ root.work/               /root and /home; the node's
    home.upper/ home.work/               /root/.ssh/authorized_keys is in root.upper)
```
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from bastion.lab import paths
from bastion.lab.state import LabMode
from bastion.private_files import private_dir, write_private

NODES_DIR_NAME = "nodes"

# Copy-on-write per node: where real hosts differ (accounts, sudoers, sshd settings, homes).
# /tmp gets a fresh tmpfs instead, as after a reboot.
OVERLAID_DIRS: tuple[str, ...] = ("/etc", "/root", "/home")

# The node's root logs in with its own key file, inside its private /root.
ROOT_AUTHORIZED_KEYS = ".ssh/authorized_keys"


@dataclass(frozen=True, slots=True)
class NodeLayout:
    """Where one node's files are."""

    name: str
    directory: Path

    @property
    def config(self) -> Path:
        return self.directory / "sshd_config"

    @property
    def host_key(self) -> Path:
        return self.directory / "ssh_host_ed25519_key"

    @property
    def log(self) -> Path:
        return self.directory / "sshd.log"

    @property
    def pid_file(self) -> Path:
        return self.directory / "sshd.pid"

    @property
    def user_authorized_keys(self) -> Path:
        """The AuthorizedKeysFile of a user-mode node (an absolute path, no private home)."""
        return self.directory / "authorized_keys"

    def upper(self, overlaid: str) -> Path:
        """The upper (writable) layer of the node's overlay on ``overlaid``, e.g. ``etc.upper``."""
        return self.directory / f"{overlaid.strip('/')}.upper"

    def work(self, overlaid: str) -> Path:
        """The overlay's work directory (same filesystem as the upper layer, as overlayfs needs)."""
        return self.directory / f"{overlaid.strip('/')}.work"


def node_layout(lab_dir: Path, name: str) -> NodeLayout:
    """The layout of node ``name`` in the lab at ``lab_dir``."""
    return NodeLayout(name=name, directory=lab_dir / NODES_DIR_NAME / name)


def overlaid_dirs() -> tuple[str, ...]:
    """The host directories a root-mode node gets a private copy of (those that exist)."""
    return tuple(d for d in OVERLAID_DIRS if Path(d).is_dir())


# overlayfs refuses these as the filesystem of an upper layer (an overlay on an overlay is
# what a container's root usually is; network filesystems lack the xattrs and whiteouts).
_NO_UPPER_FILESYSTEMS = frozenset({"overlay", "nfs", "nfs4", "cifs", "smb3", "9p"})


def filesystem_of(directory: Path, mountinfo: str) -> str | None:
    """The filesystem type of the mount holding ``directory``, per ``/proc/self/mountinfo``.

    The deepest mount point above it wins; None when none is listed.
    """
    best: tuple[int, str] | None = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        mount_point = Path(fields[4].replace("\\040", " "))
        fstype = line.split(" - ", 1)[1].split()[0]
        if directory == mount_point or mount_point in directory.parents:
            depth = len(mount_point.parts)
            if best is None or depth >= best[0]:
                best = (depth, fstype)
    return best[1] if best else None


def upper_layer_problem(lab_dir: Path, mountinfo: str | None = None) -> str | None:
    """Why the nodes' overlay layers cannot live in ``lab_dir``'s filesystem, or None."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text(encoding="utf-8")
        except OSError:
            return None
    fstype = filesystem_of(lab_dir, mountinfo)
    if fstype not in _NO_UPPER_FILESYSTEMS:
        return None
    return (
        f"the lab directory {lab_dir} is on {fstype}, which overlayfs cannot use for the nodes' "
        "copy-on-write layers; set BASTION_LAB_DIR to a directory on a local disk or a tmpfs"
    )


def prepare_node_dir(
    layout: NodeLayout, mode: LabMode, *, address: str, host_key: Path, client_public_key: str
) -> None:
    """Create or refresh a stopped node's directory: host key, authorized key, overlay layers.

    Files already in the overlay layers are kept, so a restarted node keeps its /etc and
    /root changes like a rebooted host. Call only while the node is stopped: overlayfs does not
    support changing an upper layer under a mounted overlay.
    """
    private_dir(layout.directory)
    # sshd gets its own copy: in root mode the node's /tmp and overlays could hide the lab
    # directory's other paths, but the node directory itself is re-exposed inside the node.
    write_private(layout.host_key, host_key.read_text(encoding="utf-8"))
    authorized = f"{client_public_key} bastion-lab\n"
    if mode is LabMode.USER:
        write_private(layout.user_authorized_keys, authorized)
        return
    for overlaid in overlaid_dirs():
        _make_upper_layer(layout.upper(overlaid), Path(overlaid))
        layout.work(overlaid).mkdir(mode=0o700, exist_ok=True)
    ssh_dir = private_dir(layout.upper("/root") / ".ssh")
    _make_opaque(ssh_dir)
    write_private(ssh_dir / "authorized_keys", authorized)
    _give_stock_shell_files(layout.upper("/root"))
    _name_in_hosts_file(layout.upper("/etc"), layout.name, address)
    _write_sudo_path(layout.upper("/etc"), paths.node_path(paths.lab_path_prefix()))


def _name_in_hosts_file(etc_upper: Path, name: str, address: str) -> None:
    """Let the node resolve its own name, as an installed host does (``127.0.1.1 node1``).

    Without it ``sudo`` on the node warns "unable to resolve host node1" on every command.
    The node's copy is the host's /etc/hosts plus one line for the node.
    """
    target = etc_upper / "hosts"
    if target.is_file() and name in target.read_text(encoding="utf-8").split():
        return  # the node's own copy already names it (kept like any /etc change)
    host_file = Path("/etc/hosts")
    base = host_file.read_text(encoding="utf-8") if host_file.is_file() else ""
    own = f"{address} {name}\n"
    text = base if base.endswith("\n") or not base else base + "\n"
    target.write_text(text + own, encoding="utf-8")
    os.chmod(target, 0o644)


SUDO_PATH_FILE = "sudoers.d/bastion-lab-path"


def _write_sudo_path(etc_upper: Path, session_path: str | None) -> None:
    """Give ``sudo`` on the node the same PATH as its SSH sessions (its secure_path resets it).

    Without a path prefix the file is removed, so the node's sudo is the host's again.
    """
    target = etc_upper / SUDO_PATH_FILE
    if session_path is None:
        target.unlink(missing_ok=True)
        return
    sudoers_d = etc_upper / "sudoers.d"
    sudoers_d.mkdir(mode=0o750, exist_ok=True)
    write_private(target, f'Defaults secure_path="{session_path}"\n')
    os.chmod(target, 0o440)


STOCK_SHELL_FILES = (".bashrc", ".profile")


def _give_stock_shell_files(root_upper: Path) -> None:
    """Give the node's root the distribution's stock ``.bashrc`` and ``.profile``.

    Otherwise the host's own show through the overlay, and bash sources ``.bashrc`` for every
    command run over SSH: a developer's (pyenv init, say) can cost 100 ms of CPU per command
    and makes the nodes unlike fresh hosts. Files the node already changed are kept.
    """
    for name in STOCK_SHELL_FILES:
        target = root_upper / name
        if target.exists():
            continue
        stock = Path("/etc/skel") / name
        target.write_bytes(stock.read_bytes() if stock.is_file() else b"")
        os.chmod(target, 0o644)


def remove_node_dir(layout: NodeLayout) -> None:
    """Delete the node's directory with its overlay layers and logs (after it is stopped)."""
    shutil.rmtree(layout.directory, ignore_errors=True)


def _make_upper_layer(upper: Path, overlaid: Path) -> None:
    """Create ``upper`` with the owner and mode of ``overlaid``.

    The merged directory shows the upper layer's own attributes: a 0700 upper for /etc would
    make the node's /etc unreadable to its non-root users, and sshd's StrictModes checks /root.
    """
    upper.mkdir(exist_ok=True)
    info = overlaid.stat()
    os.chown(upper, info.st_uid, info.st_gid)
    os.chmod(upper, stat.S_IMODE(info.st_mode))


def _make_opaque(directory: Path) -> None:
    """Hide the host's own /root/.ssh from the node: the host's keys are not the node's."""
    # Without the xattr the host's files show through beside the node's authorized_keys, which
    # still works; a filesystem without trusted xattrs has bigger overlay problems anyway.
    with contextlib.suppress(OSError):
        os.setxattr(directory, "trusted.overlay.opaque", b"y")
