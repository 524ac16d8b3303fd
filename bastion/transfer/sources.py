"""The local side of ``bastion copy``: which files go where, with their checksums, found once.

Layout rules (those of ``cp -r`` and rsync's trailing slash):

- ``FILE`` goes to ``DEST`` itself, or into it when ``DEST`` ends with ``/``, several sources
  are given, or ``DEST`` is an existing directory on that host;
- ``DIR`` (with ``-r``) goes to ``DEST/DIR``; ``DIR/`` puts DIR's contents straight in ``DEST``;
- symlinks to files are followed (their content is sent); symlinks to directories, broken
  links, sockets and devices are skipped and named.

Everything a bad source can get wrong is found here, before any host is contacted.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.errors import UsageError

HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One local file and where it goes, relative to the destination directory."""

    local: Path
    relpath: str
    """POSIX path under the destination directory (for a single file into a file: its name)."""
    size: int
    mode: int
    """Permission bits (``0o777``) of the local file: the remote mode unless ``--mode``."""
    sha256: str
    mtime: int = 0
    """Modification time (whole seconds): the remote one with ``--preserve``."""


@dataclass(frozen=True, slots=True)
class CopyPlan:
    """What ``copy`` sends to every host."""

    files: tuple[SourceFile, ...]
    dirs: tuple[str, ...]
    """Directories under the destination to exist, parents first (from the source trees)."""
    into_dir: bool
    """True: DEST is a directory. False: one file, which goes to DEST, or into it if DEST is
    an existing directory on the host."""
    skipped: tuple[str, ...] = ()
    """Local paths not sent, each with its reason."""
    dir_modes: tuple[int, ...] = ()
    """The permission bits of each of `dirs` (same order): a directory made gets its source's."""

    def dir_mode(self, relpath: str) -> int | None:
        """The source mode of directory ``relpath`` of `dirs`, None for one not from a source."""
        try:
            return self.dir_modes[self.dirs.index(relpath)]
        except (ValueError, IndexError):
            return None

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def plan_copy(sources: Sequence[str], dest: str, *, recursive: bool) -> CopyPlan:
    """Check the sources and list what goes where; a bad source is a `UsageError`."""
    if not sources:
        raise UsageError("give at least one local source and a destination", source="SRC")
    files: list[SourceFile] = []
    dirs: list[str] = []
    dir_modes: list[int] = []
    skipped: list[str] = []
    into_dir = len(sources) > 1 or dest.endswith("/")
    for source in sources:
        info = _stat(source)
        if stat.S_ISREG(info.st_mode):
            files.append(_source_file(Path(source), os.path.basename(source.rstrip("/")), info))
        elif stat.S_ISDIR(info.st_mode):
            if not recursive:
                raise UsageError(f"{source} is a directory: use -r to copy it", source="SRC")
            into_dir = True
            top = "" if source.endswith("/") else os.path.basename(os.path.normpath(source))
            _walk(Path(source), top, files, (dirs, dir_modes), skipped)
        else:
            raise UsageError(f"{source} is not a regular file or a directory", source="SRC")
    _check_unique(files, dirs)
    return CopyPlan(tuple(files), tuple(dirs), into_dir, tuple(skipped), tuple(dir_modes))


def _stat(source: str) -> os.stat_result:
    try:
        return os.stat(source)
    except FileNotFoundError:
        raise UsageError(f"local source {source} does not exist", source="SRC") from None
    except OSError as exc:
        raise UsageError(
            f"cannot read local source {source}: {exc.strerror}", source="SRC"
        ) from exc


def _walk(
    root: Path,
    top: str,
    files: list[SourceFile],
    found: tuple[list[str], list[int]],
    skipped: list[str],
) -> None:
    """Add the tree under ``root`` as ``top/...``: directories parents first, files sorted."""
    dirs, modes = found

    def add_dir(relpath: str, path: Path) -> None:
        dirs.append(relpath)
        try:
            modes.append(stat.S_IMODE(path.stat().st_mode) & 0o777)
        except OSError:
            modes.append(0o755)

    if top:
        add_dir(top, root)
    for current, subdirs, names in os.walk(root, onerror=_walk_error):
        subdirs.sort()
        base = Path(current)
        rel_base = os.path.relpath(current, root)
        prefix = _join(top, "" if rel_base == "." else Path(rel_base).as_posix())
        for name in list(subdirs):
            if (base / name).is_symlink():
                subdirs.remove(name)
                skipped.append(f"{base / name} (symlink to a directory, not followed)")
            else:
                add_dir(_join(prefix, name), base / name)
        for name in sorted(names):
            path = base / name
            try:
                info = path.stat()
            except OSError:
                skipped.append(f"{path} (broken symlink)")
                continue
            if not stat.S_ISREG(info.st_mode):
                skipped.append(f"{path} (not a regular file)")
                continue
            files.append(_source_file(path, _join(prefix, name), info))


def _walk_error(exc: OSError) -> None:
    raise UsageError(f"cannot read local directory {exc.filename}: {exc.strerror}", source="SRC")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix and name else prefix or name


def _source_file(path: Path, relpath: str, info: os.stat_result) -> SourceFile:
    if "\n" in relpath or "\r" in relpath:
        raise UsageError(f"{path}: file names with a newline cannot be copied", source="SRC")
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise UsageError(f"cannot read local file {path}: {exc.strerror}", source="SRC") from exc
    return SourceFile(
        path,
        relpath,
        info.st_size,
        stat.S_IMODE(info.st_mode) & 0o777,
        digest.hexdigest(),
        int(info.st_mtime),
    )


def _check_unique(files: list[SourceFile], dirs: list[str]) -> None:
    seen: dict[str, str] = {d: "a directory" for d in dirs}
    for file in files:
        if file.relpath in seen:
            raise UsageError(
                f"two sources go to the same place {file.relpath!r}: "
                f"{file.local} and {seen[file.relpath]}",
                source="SRC",
            )
        seen[file.relpath] = str(file.local)
