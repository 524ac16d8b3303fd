"""``copy`` (a local file, or inline ``content``) and ``template`` (a local Jinja file)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bastion.located_yaml import Entry, YamlMap
from bastion.playbook.actions.prepared import Upload
from bastion.playbook.errors import PlaybookError
from bastion.playbook.fields import FieldReader
from bastion.playbook.model import Text
from bastion.playbook.template import check_template, render

NAMES = ("copy", "template")
READONLY = False
SUDO = True
DURABLE = False


@dataclass(frozen=True, slots=True)
class CopyAction:
    """``copy`` (a local file or inline ``content``) and ``template`` (a rendered file)."""

    dest: Text
    src: Path | None = None
    content: Text | None = None
    template: Path | None = None
    template_body: str | None = None
    mode: int | None = None
    owner: str | None = None

    @property
    def kind(self) -> str:
        return "template" if self.template is not None else "copy"


def read(reader: FieldReader, name: str, entry: Entry, path: Path) -> CopyAction:
    """dest, mode and owner, and exactly one source (src or content; a template's src)."""
    node = entry.value
    if not isinstance(node, YamlMap):
        raise PlaybookError(f"{name}: expected a mapping", source=path, line=entry.key_line)
    allowed = (
        ("src", "content", "dest", "mode", "owner")
        if name == "copy"
        else ("src", "dest", "mode", "owner")
    )
    reader.check_keys(node, allowed, path, name)
    dest = reader.required_text(reader.required(node, "dest", path), path, "dest")
    mode = reader.mode(node, path)
    owner = reader.owner(node, path)
    if name == "template":
        src = reader.local_file(node, "src", path)
        line = node.entries["src"].key_line
        body = reader.read_local(src, path, line).decode("utf-8", "replace")
        check_template(Text(body, 1), src)
        return CopyAction(dest, template=src, template_body=body, mode=mode, owner=owner)
    has_src, has_content = "src" in node.entries, "content" in node.entries
    if has_src == has_content:
        raise PlaybookError("copy: give exactly one of src or content", source=path, line=node.line)
    if has_src:
        src = reader.local_file(node, "src", path)
        if not src.is_file():
            raise PlaybookError(
                f"copy: {src} is not a local file", source=path, line=node.entries["src"].key_line
            )
        return CopyAction(dest, src=src, mode=mode, owner=owner)
    content = reader.required_text(node.entries["content"], path, "content")
    return CopyAction(dest, content=content, mode=mode, owner=owner)


def prepare(action: CopyAction, context: Mapping[str, object], path: Path) -> Upload:
    """What to write where, for one host (templates rendered without shell quoting)."""
    dest = render(action.dest, context, path, quoted=False)
    if action.template is not None and action.template_body is not None:
        body = render(Text(action.template_body, 1), context, action.template, quoted=False)
        return Upload(dest, None, body, action.mode, action.owner)
    if action.content is not None:
        content = render(action.content, context, path, quoted=False)
        return Upload(dest, None, content, action.mode, action.owner)
    return Upload(dest, action.src, None, action.mode, action.owner)


def plan_line(upload: Upload) -> str:
    """``write DEST`` or ``copy NAME to DEST``."""
    what = "write" if upload.src is None else f"copy {upload.src.name} to"
    return f"{what} {upload.dest}"
