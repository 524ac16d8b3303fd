"""The probe: a read-only POSIX sh script (probe.sh) and the command that runs it on a host."""

from __future__ import annotations

from importlib import resources

from bastion.audit.probe_frames import new_nonce

# Root without a prompt if the login user can get it; else the login user, and the probe says
# what it could not see. `sudo -n true` reads nothing, so the script is still on stdin.
PROBE_COMMAND = (
    'if [ "$(id -u)" = 0 ]; then exec sh -s; '
    "elif sudo -n true 2>/dev/null; then exec sudo -n sh -s; "
    "else exec sh -s; fi"
)

__all__ = ["PROBE_COMMAND", "new_nonce", "probe_script"]


def probe_script(nonce: str) -> bytes:
    """The probe script's bytes, sent on stdin, with this run's ``nonce`` in its first line.

    The nonce goes on stdin only: never in the command line or the environment, where another
    user of the node could read it.
    """
    if not nonce.isascii() or not nonce.isalnum():
        raise ValueError("the probe nonce must be ASCII letters and digits")
    script = resources.files("bastion.audit").joinpath("probe.sh").read_bytes()
    return f"nonce={nonce}\n".encode() + script
