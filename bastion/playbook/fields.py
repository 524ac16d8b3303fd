"""Reading one located YAML value of a playbook: each reader names the key's line on error."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from bastion.batches import parse_amount, parse_batch
from bastion.errors import InputError
from bastion.located_yaml import Entry, Node, Scalar, Seq, YamlMap
from bastion.playbook.durations import parse_duration
from bastion.playbook.errors import PlaybookError
from bastion.playbook.model import Text, Where
from bastion.playbook.template import check_expression, check_template
from bastion.playbook.where import parse_where
from bastion.transfer.copy import Owner, parse_mode

LOCAL_FILE_LIMIT = 64 * 1024 * 1024
"""Scripts and templates are read whole at load: this much at most."""


class FieldReader:
    """Typed readers of a playbook's values (strings, flags, durations, selections...)."""

    def check_keys(self, node: YamlMap, allowed: Sequence[str], path: Path, what: str) -> None:
        for key, entry in node.entries.items():
            if key not in allowed:
                raise PlaybookError(
                    f"unknown key {key!r} in {what} (expected one of {', '.join(allowed)})",
                    source=path,
                    line=entry.key_line,
                )

    def required(self, node: YamlMap, key: str, path: Path) -> Entry:
        entry = node.entries.get(key)
        if entry is None:
            raise PlaybookError(f"missing required key {key!r}", source=path, line=node.line)
        return entry

    def string(self, node: YamlMap, key: str, path: Path, *, required: bool) -> str:
        entry = node.entries.get(key)
        if entry is None:
            if required:
                raise PlaybookError(f"missing required key {key!r}", source=path, line=node.line)
            return ""
        return self.scalar_text(entry, path, key)

    def scalar_text(self, entry: Entry, path: Path, key: str) -> str:
        node = entry.value
        if not isinstance(node, Scalar) or node.value is None or isinstance(node.value, bool):
            raise PlaybookError(f"{key}: expected a string", source=path, line=entry.key_line)
        text = node.value if isinstance(node.value, str) else node.text
        if not text.strip():
            raise PlaybookError(f"{key}: must not be empty", source=path, line=entry.key_line)
        return text

    def required_text(self, entry: Entry, path: Path, key: str) -> Text:
        text = Text(self.scalar_text(entry, path, key), text_line(entry.value))
        check_template(text, path)
        return text

    def item_text(self, node: Node, path: Path, key: str) -> Text:
        if not isinstance(node, Scalar) or node.value is None or isinstance(node.value, bool):
            raise PlaybookError(f"{key}: expected strings", source=path, line=node.line)
        text = Text(node.value if isinstance(node.value, str) else node.text, node.line)
        check_template(text, path)
        return text

    def text(self, entries: Mapping[str, Entry], key: str, path: Path) -> Text | None:
        entry = entries.get(key)
        return None if entry is None else self.required_text(entry, path, key)

    def expression(self, entry: Entry, path: Path, key: str) -> Text:
        node = entry.value
        if isinstance(node, Scalar) and isinstance(node.value, bool):
            text = Text("true" if node.value else "false", node.line)
        else:
            text = Text(self.scalar_text(entry, path, key), node.line)
        check_expression(text, path, key)
        return text

    def flag(self, entries: Mapping[str, Entry], key: str, path: Path) -> bool:
        entry = entries.get(key)
        if entry is None:
            return False
        node = entry.value
        if not isinstance(node, Scalar) or not isinstance(node.value, bool):
            raise PlaybookError(f"{key}: expected true or false", source=path, line=entry.key_line)
        return node.value

    def count(self, entries: Mapping[str, Entry], key: str, path: Path) -> int:
        entry = entries.get(key)
        if entry is None:
            return 0
        value = entry.value.value if isinstance(entry.value, Scalar) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise PlaybookError(
                f"{key}: expected a whole number >= 0", source=path, line=entry.key_line
            )
        return value

    def retries(self, entries: Mapping[str, Entry], path: Path) -> int | Text:
        """``retries``: a whole number, or a template checked per host after rendering."""
        return self.templated(entries, "retries", path) or self.count(entries, "retries", path)

    def delay(self, entries: Mapping[str, Entry], path: Path) -> float | Text:
        """``delay`` (default 2s): a duration, or a template checked per host after rendering."""
        templated = self.templated(entries, "delay", path)
        if templated is not None:
            return templated
        seconds = self.duration(entries, "delay", path)
        return 2.0 if seconds is None else seconds  # `delay: 0` is no delay, not the default

    def templated(self, entries: Mapping[str, Entry], key: str, path: Path) -> Text | None:
        """The entry as a `Text` if it is a string holding Jinja (checked later, per host)."""
        entry = entries.get(key)
        if entry is None or not isinstance(entry.value, Scalar):
            return None
        value = entry.value.value
        if not isinstance(value, str) or "{{" not in value:
            return None
        text = Text(value, entry.value.line)
        check_template(text, path)
        return text

    def duration(self, entries: Mapping[str, Entry], key: str, path: Path) -> float | None:
        entry = entries.get(key)
        if entry is None:
            return None
        value = entry.value.value if isinstance(entry.value, Scalar) else None
        seconds = parse_duration(value)
        if seconds is None or (key == "timeout" and seconds <= 0):
            raise PlaybookError(
                f"{key}: expected a duration such as 30, 5s, 10m or 1h",
                source=path,
                line=entry.key_line,
            )
        return seconds

    def register(self, entries: Mapping[str, Entry], path: Path) -> str | None:
        entry = entries.get("register")
        if entry is None:
            return None
        name = self.scalar_text(entry, path, "register")
        if not name.isidentifier() or name in (
            "host",
            "hosts",
            "result",
            "inventory_hosts",
            "facts",
        ):
            raise PlaybookError(
                f"register: {name!r} is not a usable variable name",
                source=path,
                line=entry.key_line,
            )
        return name

    def where(self, entry: Entry, path: Path, key: str) -> Where:
        text = self.scalar_text(entry, path, key)
        return Where(text, parse_where(text, source=path, line=entry.key_line), entry.key_line)

    def batch(self, entries: Mapping[str, Entry], path: Path) -> str | None:
        entry = entries.get("batch")
        if entry is None:
            return None
        text = self.scalar_text(entry, path, "batch")
        try:
            parse_batch(text)
        except InputError as exc:
            raise PlaybookError(f"batch: {exc.message}", source=path, line=entry.key_line) from None
        return text

    def max_fail(self, entries: Mapping[str, Entry], path: Path) -> str | None:
        entry = entries.get("max_fail")
        if entry is None:
            return None
        text = self.scalar_text(entry, path, "max_fail")
        try:
            parse_amount(text, source="max_fail", allow_zero=True)
        except InputError as exc:
            raise PlaybookError(
                f"max_fail: {exc.message}", source=path, line=entry.key_line
            ) from None
        return text

    def tags(self, entries: Mapping[str, Entry], path: Path) -> tuple[str, ...]:
        entry = entries.get("tags")
        if entry is None:
            return ()
        node = entry.value
        items = node.items if isinstance(node, Seq) else (node,)
        tags: list[str] = []
        for item in items:
            if not isinstance(item, Scalar) or not isinstance(item.value, str) or not item.value:
                raise PlaybookError("tags: expected names", source=path, line=entry.key_line)
            tags.append(item.value)
        return tuple(tags)

    def mode(self, node: YamlMap, path: Path) -> int | None:
        entry = node.entries.get("mode")
        if entry is None:
            return None
        scalar = entry.value
        # An unquoted 0644 is the integer 420 to YAML 1.1: take it as written.
        text = scalar.text if isinstance(scalar, Scalar) else ""
        try:
            return parse_mode(text)
        except InputError:
            raise PlaybookError(
                f'mode: expected octal such as "0644", got {text!r}',
                source=path,
                line=entry.key_line,
            ) from None

    def owner(self, node: YamlMap, path: Path) -> str | None:
        entry = node.entries.get("owner")
        if entry is None:
            return None
        text = self.scalar_text(entry, path, "owner")
        try:
            Owner.parse(text)
        except InputError as exc:
            raise PlaybookError(f"owner: {exc.message}", source=path, line=entry.key_line) from None
        return text

    def local_file(self, node: YamlMap, key: str, path: Path) -> Path:
        entry = self.required(node, key, path)
        name = self.scalar_text(entry, path, key)
        local = Path(os.path.expanduser(name))
        return local if local.is_absolute() else path.parent / local

    def read_local(self, file: Path, path: Path, line: int) -> bytes:
        try:
            with file.open("rb") as handle:
                body = handle.read(LOCAL_FILE_LIMIT + 1)
        except OSError as exc:
            raise PlaybookError(
                f"cannot read {file}: {exc.strerror}", source=path, line=line
            ) from None
        if len(body) > LOCAL_FILE_LIMIT:
            raise PlaybookError(f"{file} is larger than 64 MiB", source=path, line=line)
        return body


def text_line(node: Node) -> int:
    """The line a string's text starts on: a block scalar's (``|``, ``>``) starts below its key."""
    if isinstance(node, Scalar) and node.style in ("|", ">"):
        return node.line + 1
    return node.line
