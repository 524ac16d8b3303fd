"""Local users the lab tests create (named ``bst-lab-*``), made and removed idempotently."""

from __future__ import annotations

import pwd
import subprocess


def ensure_user(name: str) -> pwd.struct_passwd:
    """The account ``name``, created with a home in /home and bash when it does not exist."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    subprocess.run(
        ["useradd", "--create-home", "--shell", "/bin/bash", name],
        check=True,
        capture_output=True,
        text=True,
    )
    return pwd.getpwnam(name)


def fresh_user(name: str) -> pwd.struct_passwd:
    """A newly created account ``name``: what an earlier, interrupted run left is removed first."""
    remove_user(name)
    return ensure_user(name)


def remove_user(name: str) -> None:
    """Remove the account ``name``, its processes and its home; nothing if there is none."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return
    # userdel refuses a user who still runs something (a lab's sshd, say).
    subprocess.run(["pkill", "-KILL", "-u", name], check=False, capture_output=True)
    subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)
