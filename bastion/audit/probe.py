"""The probe: a read-only POSIX sh script (probe.sh) and the command that runs it on a host."""

from __future__ import annotations

from importlib import resources

# Root without a prompt if the login user can get it; else the login user, and the probe says
# what it could not see. `sudo -n true` reads nothing, so the script is still on stdin.
PROBE_COMMAND = (
    'if [ "$(id -u)" = 0 ]; then exec sh -s; '
    "elif sudo -n true 2>/dev/null; then exec sudo -n sh -s; "
    "else exec sh -s; fi"
)


def probe_script() -> bytes:
    """The probe script's bytes, sent on stdin."""
    return resources.files("bastion.audit").joinpath("probe.sh").read_bytes()
