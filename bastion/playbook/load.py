"""Playbook files -> `Playbook`: every problem is ``file:line: message`` (exit 2), found at load.

Files are read with `located_yaml`, as the inventory is, so every value keeps its line. Jinja
syntax is checked here too; undefined variables are found by the engine's dry render, before
anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from bastion.document_file import read_document
from bastion.errors import cut
from bastion.located_yaml import Entry, Node, Scalar, Seq, YamlMap, load_document, plain
from bastion.playbook.actions.registry import (
    ACTION_NAMES,
    is_readonly,
    takes_durable,
    takes_sudo,
)
from bastion.playbook.errors import PlaybookError
from bastion.playbook.fields import text_line
from bastion.playbook.load_actions import ActionReader
from bastion.playbook.model import Play, Playbook, Step, Text
from bastion.playbook.template import check_shell_placement, check_template

PLAY_KEYS = ("name", "hosts", "vars", "defaults", "facts", "steps")
COMPOSITION_KEYS = ("name", "vars", "import")
MODIFIER_KEYS = (
    "on",
    "once",
    "creates",
    "removes",
    "unless",
    "only_if",
    "when",
    "register",
    "retries",
    "delay",
    "until",
    "timeout",
    "sudo",
    "durable",
    "batch",
    "max_fail",
    "tags",
    "readonly",
    "changed_when",
    "ignore_errors",
    "secret",
)
DEFAULT_KEYS = (
    "sudo",
    "timeout",
    "durable",
    "retries",
    "delay",
    "ignore_errors",
    "batch",
    "max_fail",
    "tags",
)
_MAX_IMPORT_DEPTH = 16


def load_playbook(path: str | Path, extra_vars: Mapping[str, object] | None = None) -> Playbook:
    """Load a play or a composition (with its imports); raises `PlaybookError` on bad input."""
    path = Path(path)
    loader = _Loader()
    root = loader.read(path)
    name = loader.string(root, "name", path, required=True)
    if "import" in root.entries:
        loader.check_keys(root, COMPOSITION_KEYS, path, "composition")
        comp_vars = loader.vars(root.entries.get("vars"), path)
        plays = loader.imports(path, root.entries["import"], comp_vars, depth=0)
    else:
        plays = [loader.play(path, root)]
    return Playbook(
        name=name,
        path=path,
        plays=tuple(plays),
        extra_vars=dict(extra_vars or {}),
        secrets=frozenset(loader.secrets),
        secret_vars=frozenset(loader.secret_names),
    )


RESERVED_VARS = frozenset({"host", "hosts", "inventory_hosts", "playbook_dir", "result"})
"""Names bastion itself gives templates: refused in ``vars:`` and in ``-e`` alike."""


def parse_extra_vars(items: Sequence[str]) -> dict[str, object]:
    """``-e k=v`` (a string) and ``-e @file.yaml`` (a mapping), later ones winning."""
    found: dict[str, object] = {}
    for item in items:
        if item.startswith("@"):
            found.update(_extra_vars_file(Path(item[1:])))
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not key.strip().isidentifier():
            raise PlaybookError(f"expected NAME=VALUE or @FILE, got {cut(item, 80)!r}", source="-e")
        found[key.strip()] = value
    for key in found:
        if key in RESERVED_VARS:
            raise PlaybookError(f"variable name {key!r} is reserved", source="-e")
    return found


def _extra_vars_file(path: Path) -> dict[str, object]:
    root = load_document(path, PlaybookError, what="vars file", missing="no such vars file").root
    if root is None:
        return {}
    if not isinstance(root, YamlMap):
        raise PlaybookError(
            "expected a mapping of variable names to values", source=path, line=root.line
        )
    return {name: plain(entry.value) for name, entry in root.entries.items()}


class _Loader(ActionReader):
    """Reads files and walks located YAML into the model, remembering secrets."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.secret_names: set[str] = set()

    def read(self, path: Path) -> YamlMap:
        document = load_document(
            path, PlaybookError, what="playbook file", missing="no such playbook file"
        )
        root = document.root
        if root is None:
            raise PlaybookError("the playbook is empty", source=path)
        if not isinstance(root, YamlMap):
            raise PlaybookError(
                "a playbook is a mapping with name, hosts and steps (or name and import)",
                source=path,
                line=root.line,
            )
        return root

    # -- compositions ------------------------------------------------------------------------

    def imports(
        self, path: Path, entry: Entry, comp_vars: Mapping[str, object], depth: int
    ) -> list[Play]:
        if depth > _MAX_IMPORT_DEPTH:
            raise PlaybookError(
                "imports nest too deeply (a cycle?)", source=path, line=entry.key_line
            )
        node = entry.value
        if not isinstance(node, Seq) or not node.items:
            raise PlaybookError(
                "import: expected a non-empty list of files", source=path, line=entry.key_line
            )
        plays: list[Play] = []
        for item in node.items:
            when: Text | None = None
            if isinstance(item, YamlMap):
                self.check_keys(item, ("file", "when"), path, "import entry")
                file_node = self.required(item, "file", path).value
                when_entry = item.entries.get("when")
                if when_entry is not None:
                    when = self.expression(when_entry, path, "when")
            else:
                file_node = item
            if not isinstance(file_node, Scalar) or not isinstance(file_node.value, str):
                raise PlaybookError("import: expected a file name", source=path, line=item.line)
            target = path.parent / file_node.value
            try:
                root = self.read(target)
            except PlaybookError as exc:
                if exc.line is None and exc.source == str(target):
                    raise PlaybookError(
                        f"import {file_node.value!r}: {exc.message}", source=path, line=item.line
                    ) from None
                raise
            if "import" in root.entries:
                self.check_keys(root, COMPOSITION_KEYS, target, "composition")
                inner = {**self.vars(root.entries.get("vars"), target), **comp_vars}
                nested = self.imports(target, root.entries["import"], inner, depth + 1)
                plays += [p if when is None else replace(p, when=when) for p in nested]
                continue
            play = self.play(target, root)
            plays.append(replace(play, when=when, composition_vars=dict(comp_vars)))
        return plays

    # -- plays -------------------------------------------------------------------------------

    def play(self, path: Path, root: YamlMap) -> Play:
        self.check_keys(root, PLAY_KEYS, path, "play")
        name = self.string(root, "name", path, required=True)
        hosts_entry = self.required(root, "hosts", path)
        hosts = self.where(hosts_entry, path, "hosts")
        play_vars = self.vars(root.entries.get("vars"), path)
        defaults = self.defaults(root.entries.get("defaults"), path)
        steps_entry = self.required(root, "steps", path)
        if not isinstance(steps_entry.value, Seq) or not steps_entry.value.items:
            raise PlaybookError(
                "steps: expected a non-empty list of steps", source=path, line=steps_entry.key_line
            )
        steps: list[Step] = []
        seen: dict[str, int] = {}
        for node in steps_entry.value.items:
            step = self.step(path, node, defaults)
            if step.name in seen:
                raise PlaybookError(
                    f"duplicate step name {step.name!r} (first at line {seen[step.name]})",
                    source=path,
                    line=step.line,
                )
            seen[step.name] = step.line
            steps.append(step)
        facts = self.flag(root.entries, "facts", path)
        return Play(name, path, hosts, play_vars, tuple(steps), facts=facts)

    def defaults(self, entry: Entry | None, path: Path) -> dict[str, Entry]:
        if entry is None:
            return {}
        if not isinstance(entry.value, YamlMap):
            raise PlaybookError("defaults: expected a mapping", source=path, line=entry.key_line)
        self.check_keys(entry.value, DEFAULT_KEYS, path, "defaults")
        return dict(entry.value.entries)

    def vars(self, entry: Entry | None, path: Path) -> dict[str, object]:
        if entry is None:
            return {}
        node = entry.value
        if not isinstance(node, YamlMap):
            raise PlaybookError("vars: expected a mapping", source=path, line=entry.key_line)
        found: dict[str, object] = {}
        for key, item in node.entries.items():
            if not key.isidentifier():
                raise PlaybookError(
                    f"variable name {key!r} is not an identifier", source=path, line=item.key_line
                )
            if key in RESERVED_VARS:
                raise PlaybookError(
                    f"variable name {key!r} is reserved", source=path, line=item.key_line
                )
            if isinstance(item.value, YamlMap) and "secret" in item.value.entries:
                found[key] = self.secret(key, item.value, path)
            else:
                found[key] = self.value(item.value, path)
        return found

    def secret(self, key: str, node: YamlMap, path: Path) -> str:
        self.check_keys(node, ("secret", "env", "file", "value"), path, f"secret {key}")
        flag = node.entries["secret"].value
        if not (isinstance(flag, Scalar) and flag.value is True):
            raise PlaybookError(f"{key}: secret must be true", source=path, line=node.line)
        sources = [name for name in ("env", "file", "value") if name in node.entries]
        if len(sources) != 1:
            raise PlaybookError(
                f"{key}: a secret needs exactly one of env, file or value",
                source=path,
                line=node.line,
            )
        where = node.entries[sources[0]]
        given = self.scalar_text(where, path, sources[0])
        if sources[0] == "env":
            value = os.environ.get(given)
            if value is None:
                raise PlaybookError(
                    f"secret {key}: environment variable {given} is not set",
                    source=path,
                    line=where.key_line,
                )
        elif sources[0] == "file":
            file = Path(os.path.expanduser(given))
            if not file.is_absolute():
                file = path.parent / file
            try:
                # Bounded and regular files only, as every document (a FIFO must not hang us).
                value = read_document(file, PlaybookError, what="file").decode("utf-8").strip()
            except (PlaybookError, UnicodeDecodeError) as exc:
                problem = exc.message if isinstance(exc, PlaybookError) else "not UTF-8 text"
                raise PlaybookError(
                    f"secret {key}: {file}: {problem}", source=path, line=where.key_line
                ) from None
        else:
            value = given
        self.secret_names.add(key)
        if value:
            self.secrets.add(value)
        return value

    def value(self, node: Node, path: Path) -> object:
        """A variable's value: strings become `Text` (templated later), the rest stays."""
        if isinstance(node, YamlMap):
            return {k: self.value(e.value, path) for k, e in node.entries.items()}
        if isinstance(node, Seq):
            return [self.value(item, path) for item in node.items]
        if isinstance(node.value, str):
            text = Text(node.value, text_line(node))
            check_template(text, path)
            return text
        if node.value is None or isinstance(node.value, bool | int | float):
            return node.value
        return node.text

    # -- steps -------------------------------------------------------------------------------

    def step(self, path: Path, node: Node, defaults: Mapping[str, Entry]) -> Step:
        if not isinstance(node, YamlMap):
            raise PlaybookError(
                "a step is a mapping with a name and one action", source=path, line=node.line
            )
        self.check_keys(node, ("name", *ACTION_NAMES, *MODIFIER_KEYS), path, "step")
        name = self.string(node, "name", path, required=True)
        actions = [key for key in ACTION_NAMES if key in node.entries]
        if len(actions) != 1:
            found = ", ".join(actions) if actions else "none"
            raise PlaybookError(
                f"step {name!r}: needs exactly one action of "
                f"{', '.join(ACTION_NAMES)} (found {found})",
                source=path,
                line=node.line,
            )
        action_name = actions[0]
        entries = {**defaults, **node.entries}
        if not takes_sudo(action_name):
            if self.flag(node.entries, "sudo", path):
                raise PlaybookError(
                    f"step {name!r}: fetch reads files as the login user; sudo does not apply",
                    source=path,
                    line=node.entries["sudo"].key_line,
                )
            entries.pop("sudo", None)  # a play's default sudo does not apply to fetch
        step = Step(
            name=name,
            line=node.line,
            action=self.action(action_name, node.entries[action_name], path),
            action_name=action_name,
            on=self.where(entries["on"], path, "on") if "on" in entries else None,
            once=self.flag(entries, "once", path),
            creates=self.text(entries, "creates", path),
            removes=self.text(entries, "removes", path),
            unless=self.text(entries, "unless", path),
            only_if=self.text(entries, "only_if", path),
            when=self.expression(entries["when"], path, "when") if "when" in entries else None,
            register=self.register(entries, path),
            retries=self.retries(entries, path),
            delay=self.delay(entries, path),
            until=self.expression(entries["until"], path, "until") if "until" in entries else None,
            timeout=self.duration(entries, "timeout", path),
            sudo=self.flag(entries, "sudo", path),
            durable=self.flag(entries, "durable", path),
            batch=self.batch(entries, path),
            max_fail=self.max_fail(entries, path),
            tags=self.tags(entries, path),
            readonly=self.flag(entries, "readonly", path) or is_readonly(action_name),
            changed_when=(
                self.expression(entries["changed_when"], path, "changed_when")
                if "changed_when" in entries
                else None
            ),
            ignore_errors=self.flag(entries, "ignore_errors", path),
            secret=self.flag(entries, "secret", path),
        )
        for guard in (step.unless, step.only_if):
            if guard is not None:
                check_shell_placement(guard, path)
        self.check_step(step, entries, path)
        return step

    def check_step(self, step: Step, entries: Mapping[str, Entry], path: Path) -> None:
        def refuse(message: str, key: str | None = None) -> PlaybookError:
            line = entries[key].key_line if key and key in entries else step.line
            return PlaybookError(f"step {step.name!r}: {message}", source=path, line=line)

        if step.max_fail is not None and step.batch is None:
            raise refuse("max_fail needs batch", "max_fail")
        if step.until is not None and step.retries == 0:
            raise refuse("until needs retries (how many times to try again)", "until")
        if step.durable and not takes_durable(step.action_name):
            raise refuse("durable applies to run steps only", "durable")
        if step.batch is not None and step.once:
            raise refuse("once and batch do not go together", "batch")
