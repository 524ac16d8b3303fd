"""Writing `access apply`'s plans on a host, proving bastion still gets in, reverting if not.

Per host, over one connection kept open: run the write script; then open a **new** connection
with the same login identity and run ``true``; if that fails, run the restore script over the
first connection (still open: sshd checks keys only at authentication) and report REVERTED.
``bastion access restore`` runs `restore_latest_script` the same way, without the check.

Scripts print ``@@written``/``@@restored``/``@@failed`` lines naming what they did; the
account and path are the plan's own (chosen on the bastion), so `outcome_of` matches them
against the plan rather than trusting what the node printed.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bastion.audit.apply import FilePlan, apply_command
from bastion.executor import HostWork
from bastion.models import Host, HostResult, Status
from bastion.transport.base import LinkFailure, LinkLost, OutputSink, Transport

VERIFY_COMMAND = "true"
REVERTED = "@@reverted"
"""The line the work adds to a host's stdout when it put the backups back."""


@dataclass(frozen=True, slots=True)
class HostScripts:
    """What to run on one host: the write script and the script that undoes it."""

    write: str
    restore: str


def restore_script(plans: Sequence[FilePlan], stamp: str) -> str:
    """Put back what the write script of ``stamp`` replaced, as each account (runuser).

    A file that existed is copied back from its backup (temporary file, chmod 600, rename);
    a file the write created is removed.
    """
    lines = ["set -u", "umask 077", "status=0"]
    for plan in plans:
        if not plan.changed or plan.new_lines == plan.old_lines:
            continue
        user, path = shlex.quote(plan.account), shlex.quote(plan.path)
        backup = shlex.quote(f"{plan.path}.bastion-backup-{stamp}")
        if plan.exists:
            put_back = f"""b={backup}
[ -f "$b" ] || exit 1
tmp=$(runuser -u "$u" -- mktemp "$d/.authorized_keys.XXXXXX")
runuser -u "$u" -- cp -- "$b" "$tmp"
runuser -u "$u" -- chmod 600 -- "$tmp"
runuser -u "$u" -- mv -f -- "$tmp" "$f\""""
        else:
            put_back = 'runuser -u "$u" -- rm -f -- "$f"'
        lines.append(
            f"""(
set -e
u={user} f={path}
d=$(dirname -- "$f")
{put_back}
echo "@@restored $u $f"
) || {{ echo "@@failed {plan.account} {plan.path}"; status=1; }}"""
        )
    lines.append("exit $status")
    return "\n".join(lines) + "\n"


def restore_latest_script(stamp: str | None = None) -> str:
    """Restore, for every account, its newest ``authorized_keys.bastion-backup-*`` (or ``stamp``).

    Every step as the account (runuser), as `access apply` writes: list the backups, copy the
    chosen one to a temporary file beside it, chmod 600, rename over the file. Only backups
    named like apply names them (``<UTC stamp>``: digits, T, Z) are taken.
    """
    if stamp is not None and (not stamp or stamp.strip("0123456789TZ")):
        raise ValueError(f"not a backup stamp: {stamp!r} (like 20261202T194600Z)")
    wanted = "*" if stamp is None else stamp
    return f"""set -u
umask 077
status=0
entries=$(getent passwd) || exit 1
while IFS=: read -r u _ _ _ _ h _; do
    [ -n "$h" ] && [ -d "$h/.ssh" ] || continue
    f="$h/.ssh/authorized_keys"
    b=$(runuser -u "$u" -- sh -c 'for b in "$1".bastion-backup-{wanted}; do
        [ -f "$b" ] && printf "%s\\n" "$b"; done | tail -n 1' sh "$f" 2>/dev/null) || continue
    stamp=${{b##*.bastion-backup-}}
    case "$stamp" in "" | *[!0-9TZ]*) continue ;; esac
    (
    set -e
    tmp=$(runuser -u "$u" -- mktemp "$h/.ssh/.authorized_keys.XXXXXX")
    runuser -u "$u" -- cp -- "$b" "$tmp"
    runuser -u "$u" -- chmod 600 -- "$tmp"
    runuser -u "$u" -- mv -f -- "$tmp" "$f"
    echo "@@restored $u $stamp"
    ) || {{ echo "@@failed $u"; status=1; }}
done <<EOF
$entries
EOF
exit $status
"""


def apply_work(scripts: Mapping[str, HostScripts], *, verify: bool = True) -> HostWork:
    """The per-host work of `access apply` (or of `access restore`, with ``verify`` False)."""

    async def work(transport: Transport, host: Host, sink: OutputSink) -> HostResult:
        del sink  # the outcome is printed per host at the end, not streamed
        started = time.monotonic()
        chosen = scripts[host.name]
        try:
            link = await transport.open_link(host, retry=True)
        except LinkFailure as exc:
            return HostResult(host.name, host.address, Status.UNREACHABLE, error=exc.message)
        out = bytearray()

        def keep(stream: str, data: bytes) -> None:
            if stream == "stdout":
                out.extend(data)

        try:
            status = await link.exec(apply_command(chosen.write), keep)
            error = None if status == 0 else "a write failed (nothing replaced there)"
            if verify and b"@@written " in out:
                refused = await _login_refused(transport, host)
                if refused is not None:
                    out.extend(f"{REVERTED} {refused}\n".encode())
                    restored = await link.exec(apply_command(chosen.restore), keep)
                    error = f"bastion could not log in again ({refused}): reverted"
                    if restored != 0:
                        error = f"bastion could not log in again ({refused}); REVERT FAILED"
        except LinkLost as exc:
            error = f"connection lost while writing: {exc.reason}"
            # Nothing left to revert over: at least say whether bastion still gets in.
            refused = await _login_refused(transport, host) if verify else None
            if refused is not None:
                error += (
                    f"; bastion cannot log in any more ({refused}): put back the "
                    "authorized_keys.bastion-backup-* file by hand"
                )
        finally:
            link.close()
        return HostResult(
            host.name, host.address, Status.OK if error is None else Status.FAILED,
            stdout=out.decode("utf-8", "replace"), error=error,
            duration_s=time.monotonic() - started,
        )  # fmt: skip

    return work


async def _login_refused(transport: Transport, host: Host) -> str | None:
    """Why a new connection with the login identity cannot run ``true`` (None: it can)."""
    try:
        fresh = await transport.open_link(host, retry=True)
    except LinkFailure as exc:
        return exc.message
    try:
        status = await fresh.exec(VERIFY_COMMAND, lambda stream, data: None)
    except LinkLost as exc:
        return f"connection lost: {exc.reason}"
    finally:
        fresh.close()
    return None if status == 0 else f"`{VERIFY_COMMAND}` exited {status}"


@dataclass(frozen=True, slots=True)
class HostOutcome:
    """What the scripts did on one host, matched against its plan."""

    written: tuple[tuple[str, str], ...] = ()
    restored: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    reverted: str | None = None
    """Why bastion's new login failed, when the backups were put back."""


def outcome_of(result: HostResult, plans: Sequence[FilePlan]) -> HostOutcome:
    """Read the marker lines of ``result`` (only those naming a planned account and path)."""
    planned = {f"{p.account} {p.path}": (p.account, p.path) for p in plans}
    written, failed, restored = [], [], []
    reverted = None
    for line in result.stdout.split("\n"):
        word, _, rest = line.partition(" ")
        if word == "@@written" and rest in planned:
            written.append(planned[rest])
        elif word == "@@failed" and rest in planned:
            failed.append(planned[rest])
        elif word == "@@restored":
            restored.append(rest)
        elif word == REVERTED:
            reverted = rest
    return HostOutcome(tuple(written), tuple(restored), tuple(failed), reverted)
