"""``fetch: {src, dest, mode}``: a host's file to here, as the login user (never sudo)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bastion.located_yaml import Entry, YamlMap
from bastion.playbook.actions.prepared import Download
from bastion.playbook.errors import PlaybookError
from bastion.playbook.fields import FieldReader
from bastion.playbook.model import Text
from bastion.playbook.template import render

NAMES = ("fetch",)
READONLY = False
SUDO = False
"""fetch reads over SFTP as the login user: ``sudo: true`` is refused, a default ignored."""
DURABLE = False


@dataclass(frozen=True, slots=True)
class FetchAction:
    src: Text
    dest: Text
    mode: int = 0o600
    """The local files' mode: 0600 unless the playbook asks for another."""


def read(reader: FieldReader, name: str, entry: Entry, path: Path) -> FetchAction:
    """src, dest and the local files' mode."""
    node = entry.value
    if not isinstance(node, YamlMap):
        raise PlaybookError(f"{name}: expected a mapping", source=path, line=entry.key_line)
    reader.check_keys(node, ("src", "dest", "mode"), path, "fetch")
    mode = reader.mode(node, path)
    return FetchAction(
        reader.required_text(reader.required(node, "src", path), path, "src"),
        reader.required_text(reader.required(node, "dest", path), path, "dest"),
        0o600 if mode is None else mode,
    )


def prepare(action: FetchAction, context: Mapping[str, object], path: Path) -> Download:
    """Both paths rendered for one host."""
    return Download(
        render(action.src, context, path, quoted=False),
        render(action.dest, context, path, quoted=False),
        action.mode,
    )


def plan_line(download: Download) -> str:
    """``fetch SRC to DEST``."""
    return f"fetch {download.src} to {download.dest}"
