"""``group_vars/`` and ``host_vars/`` beside an Ansible inventory, found as Ansible finds them.

For a group or host NAME, the first of ``NAME``, ``NAME.yml``, ``NAME.yaml``, ``NAME.json``
that exists is read; a directory is read whole (its files sorted, recursively, skipping
hidden files and ``~`` backups, with one of those extensions or none), later files winning.
Each file is a mapping of variables, read through bastion's safe loader (so an Ansible Vault
``!vault`` value is refused with its line). Source: ansible-core's ``host_group_vars`` vars
plugin and ``DataLoader.find_vars_files``.
"""

from __future__ import annotations

from pathlib import Path

from bastion.errors import InputError
from bastion.located_yaml import Scalar, YamlMap, load_document, plain

EXTENSIONS = (".yml", ".yaml", ".json")
MAX_FILES = 1000
"""Vars files read for one inventory."""


def vars_files(directory: Path, name: str) -> list[Path]:
    """The files that hold NAME's variables in ``directory`` (``group_vars`` or ``host_vars``)."""
    for extension in ("", *EXTENSIONS):
        candidate = directory / f"{name}{extension}"
        if candidate.is_dir():
            return _directory_files(candidate)
        if candidate.exists():
            return [candidate]
    return []


def _directory_files(directory: Path) -> list[Path]:
    found: list[Path] = []
    for entry in sorted(directory.iterdir(), key=lambda path: path.name):
        if entry.name.startswith(".") or entry.name.endswith("~"):
            continue
        if entry.is_dir() and not entry.suffix:
            found += _directory_files(entry)
        elif entry.is_file() and (not entry.suffix or entry.suffix in EXTENSIONS):
            found.append(entry)
    return found


def read_vars_file(path: Path, error: type[InputError]) -> list[tuple[str, object, int]]:
    """(name, value, line) of every variable a vars file sets, in order."""
    root = load_document(path, error, what="vars file").root
    if root is None or (isinstance(root, Scalar) and root.value is None):
        return []
    if not isinstance(root, YamlMap):
        raise error(
            "a vars file must be a mapping of variable names to values", source=path, line=root.line
        )
    return [(name, plain(entry.value), entry.key_line) for name, entry in root.entries.items()]
