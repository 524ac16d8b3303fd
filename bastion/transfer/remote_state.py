"""What the destination paths hold on a host, in one round trip: type, size, mode, owner, sha256.

One helper command per host reads the paths on stdin (one a line, ``S path`` to stat, ``H path``
to also hash) and answers with ``stat`` lines, a separator, then ``sha256sum`` lines. Two
processes do all the work however many files there are (through ``xargs``); nothing is ever
interpolated into the command itself. It needs a POSIX shell, ``stat -c`` and ``sha256sum``
(GNU coreutils or BusyBox: any Linux node).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from bastion.transport.files import is_number

SEPARATOR = "--bastion-hashes--"
_STAT_FORMAT = "%F|%s|%a|%u|%g|%U|%G|%Y|%n"

STATE_SCRIPT = f"""export LC_ALL=C
input=$(cat)
printf '%s\\n' "$input" | sed -n 's/^S //p' | tr '\\n' '\\000' \\
  | xargs -0 -r stat -L -c '{_STAT_FORMAT}' -- 2>/dev/null
echo {SEPARATOR}
printf '%s\\n' "$input" | sed -n 's/^H //p' | tr '\\n' '\\000' \\
  | xargs -0 -r sha256sum -- 2>/dev/null
exit 0
"""

PathKind = Literal["file", "dir", "other"]


@dataclass(frozen=True, slots=True)
class PathState:
    """One existing remote path as the helper saw it (symlinks followed)."""

    kind: PathKind
    type_name: str
    """As ``stat`` says it: ``regular file``, ``directory``, ``fifo``..."""
    size: int
    mode: int
    uid: str
    gid: str
    user: str
    group: str
    sha256: str | None = None
    mtime: int = 0


def state_request(stat_paths: Iterable[str], hash_paths: Iterable[str]) -> bytes:
    """The helper's stdin; hashed paths are stat-ed too."""
    hashed = list(dict.fromkeys(hash_paths))
    lines = [f"S {p}" for p in dict.fromkeys([*stat_paths, *hashed])] + [f"H {p}" for p in hashed]
    return ("\n".join(lines) + "\n").encode("utf-8")


def parse_state(output: bytes) -> dict[str, PathState]:
    """The helper's answer: every path that exists, by the path as asked."""
    lines = output.decode("utf-8", errors="surrogateescape").splitlines()
    cut = lines.index(SEPARATOR) if SEPARATOR in lines else len(lines)
    found: dict[str, PathState] = {}
    for line in lines[:cut]:
        fields = line.split("|", 8)
        if len(fields) != 9 or not is_number(fields[1]) or not is_number(fields[7].lstrip("-")):
            continue
        type_name, size, mode, uid, gid, user, group, mtime, path = fields
        found[path] = PathState(
            kind=_kind(type_name),
            type_name=type_name,
            size=int(size),
            mode=int(mode, 8) if is_number(mode, 5) and "8" not in mode and "9" not in mode else 0,
            uid=uid,
            gid=gid,
            user=user,
            group=group,
            mtime=int(mtime),
        )
    for line in lines[cut + 1 :]:
        parsed = _hash_line(line)
        if parsed is None:
            continue
        path, digest = parsed
        state = found.get(path)
        if state is not None:
            found[path] = replace(state, sha256=digest)
    return found


def _kind(type_name: str) -> PathKind:
    if type_name.startswith("regular"):
        return "file"
    if type_name == "directory":
        return "dir"
    return "other"


def _hash_line(line: str) -> tuple[str, str] | None:
    """``sha256sum``'s line: ``HEX  NAME``, or ``\\HEX  ESCAPED`` for names with ``\\``."""
    escaped = line.startswith("\\")
    if escaped:
        line = line[1:]
    digest, sep, name = line.partition("  ")
    if not sep or len(digest) != 64:
        return None
    if escaped:
        name = _unescape(name)
    return name, digest


def _unescape(name: str) -> str:
    out: list[str] = []
    chars = iter(name)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        following = next(chars, "")
        out.append({"n": "\n", "r": "\r", "\\": "\\"}.get(following, "\\" + following))
    return "".join(out)
