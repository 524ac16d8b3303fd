"""Playbook files -> `Playbook`: every problem is ``file:line: message`` (exit 2), found at load.

Files are read with `located_yaml`, as the inventory is, so every value keeps its line. Jinja
syntax is checked here too; undefined variables are found by the engine's dry render, before
anything runs.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import yaml

from bastion.batches import parse_amount, parse_batch
from bastion.errors import InputError
from bastion.located_yaml import Entry, Node, Scalar, Seq, YamlMap, compose
from bastion.playbook.durations import parse_duration
from bastion.playbook.errors import PlaybookError
from bastion.playbook.model import (
    ACTION_NAMES,
    Action,
    CopyAction,
    FetchAction,
    Play,
    Playbook,
    RunAction,
    ScriptAction,
    Step,
    Text,
    WaitForAction,
    Where,
)
from bastion.playbook.template import check_expression, check_template
from bastion.select import Selection
from bastion.transfer.copy import Owner, parse_mode

PLAY_KEYS = ("name", "hosts", "vars", "defaults", "steps")
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
SCRIPT_LIMIT = 64 * 1024 * 1024
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


def parse_extra_vars(items: Sequence[str]) -> dict[str, object]:
    """``-e k=v`` (a string) and ``-e @file.yaml`` (a mapping), later ones winning."""
    found: dict[str, object] = {}
    for item in items:
        if item.startswith("@"):
            found.update(_extra_vars_file(Path(item[1:])))
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not key.strip().isidentifier():
            raise PlaybookError(f"expected NAME=VALUE or @FILE, got {item!r}", source="-e")
        found[key.strip()] = value
    return found


def _extra_vars_file(path: Path) -> dict[str, object]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlaybookError(f"cannot read: {exc.strerror}", source=path) from None
    except yaml.YAMLError as exc:
        raise PlaybookError(f"invalid YAML: {str(exc).splitlines()[0]}", source=path) from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise PlaybookError("expected a mapping of variable names to values", source=path)
    return dict(data)


_WHERE_OPTIONS = {
    "-g": "groups",
    "--group": "groups",
    "-H": "hosts",
    "--hosts": "hosts",
    "-l": "selector",
    "--selector": "selector",
    "-x": "exclude",
    "--exclude": "exclude",
}


def parse_where(text: str, *, source: str | Path, line: int | None) -> Selection:
    """A selection as typed on the command line: ``--all``, ``-g workers -l role=x -x node3``.

    ``-x`` alone means every host but those.
    """

    def bad(why: str) -> PlaybookError:
        return PlaybookError(f"bad host selection {text!r}: {why}", source=source, line=line)

    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise bad(str(exc)) from None
    found: dict[str, list[str]] = {"groups": [], "hosts": [], "selector": [], "exclude": []}
    all_hosts = False
    index = 0
    while index < len(words):
        word = words[index]
        option, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        index += 1
        if option in ("--all", "-a") and not eq:
            all_hosts = True
            continue
        if option not in _WHERE_OPTIONS:
            raise bad(
                f"unknown option {word!r} (use --all, -g GROUP, -H HOSTS, -l SELECTOR, -x HOSTS)"
            )
        if not eq:
            if index >= len(words):
                raise bad(f"{word} needs a value")
            inline = words[index]
            index += 1
        found[_WHERE_OPTIONS[option]].append(inline)
    if len(found["selector"]) > 1:
        raise bad("give -l once (commas combine requirements)")
    chosen = all_hosts or found["groups"] or found["hosts"] or found["selector"]
    if found["exclude"] and not chosen:
        all_hosts = True
    selection = Selection(
        all_hosts,
        tuple(found["groups"]),
        tuple(found["hosts"]),
        found["selector"][0] if found["selector"] else None,
        tuple(found["exclude"]),
    )
    if selection.is_empty():
        raise bad("choose hosts with --all, -g, -H or -l")
    return selection


class _Loader:
    """Reads files and walks located YAML into the model, remembering secrets."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.secret_names: set[str] = set()

    def read(self, path: Path) -> YamlMap:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise PlaybookError("no such playbook file", source=path) from None
        except IsADirectoryError:
            raise PlaybookError("is a directory, not a playbook file", source=path) from None
        except OSError as exc:
            raise PlaybookError(f"cannot read: {exc.strerror}", source=path) from None
        root = compose(path, data, PlaybookError)
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
        return Play(name, path, hosts, play_vars, tuple(steps))

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
            if key in ("host", "hosts", "inventory_hosts", "playbook_dir", "result"):
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
                value = file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise PlaybookError(
                    f"secret {key}: cannot read {file}: {exc.strerror}",
                    source=path,
                    line=where.key_line,
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
            text = Text(node.value, _text_line(node))
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
        if action_name == "fetch":
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
            retries=self.count(entries, "retries", path),
            delay=self.duration(entries, "delay", path) or 2.0,
            until=self.expression(entries["until"], path, "until") if "until" in entries else None,
            timeout=self.duration(entries, "timeout", path),
            sudo=self.flag(entries, "sudo", path),
            durable=self.flag(entries, "durable", path),
            batch=self.batch(entries, path),
            max_fail=self.max_fail(entries, path),
            tags=self.tags(entries, path),
            readonly=self.flag(entries, "readonly", path) or action_name == "wait_for",
            changed_when=(
                self.expression(entries["changed_when"], path, "changed_when")
                if "changed_when" in entries
                else None
            ),
            ignore_errors=self.flag(entries, "ignore_errors", path),
            secret=self.flag(entries, "secret", path),
        )
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
        if step.durable and step.action_name != "run":
            raise refuse("durable applies to run steps only", "durable")
        if step.batch is not None and step.once:
            raise refuse("once and batch do not go together", "batch")

    def action(self, name: str, entry: Entry, path: Path) -> Action:
        node = entry.value
        if name == "run":
            return RunAction(self.required_text(entry, path, "run"))
        if not isinstance(node, YamlMap):
            raise PlaybookError(f"{name}: expected a mapping", source=path, line=entry.key_line)
        if name == "script":
            self.check_keys(node, ("src", "args"), path, "script")
            src = self.local_file(node, "src", path)
            body = self.read_local(src, path, node.entries["src"].key_line)
            args_entry = node.entries.get("args")
            args: tuple[Text, ...] = ()
            if args_entry is not None:
                if not isinstance(args_entry.value, Seq):
                    raise PlaybookError(
                        "args: expected a list", source=path, line=args_entry.key_line
                    )
                args = tuple(self.item_text(item, path, "args") for item in args_entry.value.items)
            return ScriptAction(src, body, args)
        if name in ("copy", "template"):
            return self.copy(name, node, path)
        if name == "fetch":
            self.check_keys(node, ("src", "dest"), path, "fetch")
            return FetchAction(
                self.required_text(self.required(node, "src", path), path, "src"),
                self.required_text(self.required(node, "dest", path), path, "dest"),
            )
        return self.wait_for(node, path)

    def copy(self, name: str, node: YamlMap, path: Path) -> CopyAction:
        allowed = (
            ("src", "content", "dest", "mode", "owner")
            if name == "copy"
            else ("src", "dest", "mode", "owner")
        )
        self.check_keys(node, allowed, path, name)
        dest = self.required_text(self.required(node, "dest", path), path, "dest")
        mode = self.mode(node, path)
        owner = self.owner(node, path)
        if name == "template":
            src = self.local_file(node, "src", path)
            line = node.entries["src"].key_line
            body = self.read_local(src, path, line).decode("utf-8", "replace")
            check_template(Text(body, 1), src)
            return CopyAction(dest, template=src, template_body=body, mode=mode, owner=owner)
        has_src, has_content = "src" in node.entries, "content" in node.entries
        if has_src == has_content:
            raise PlaybookError(
                "copy: give exactly one of src or content", source=path, line=node.line
            )
        if has_src:
            src = self.local_file(node, "src", path)
            if not src.is_file():
                raise PlaybookError(
                    f"copy: {src} is not a local file",
                    source=path,
                    line=node.entries["src"].key_line,
                )
            return CopyAction(dest, src=src, mode=mode, owner=owner)
        content = self.required_text(node.entries["content"], path, "content")
        return CopyAction(dest, content=content, mode=mode, owner=owner)

    def wait_for(self, node: YamlMap, path: Path) -> WaitForAction:
        self.check_keys(
            node, ("port", "host", "file", "command", "timeout", "interval"), path, "wait_for"
        )
        kinds = [k for k in ("port", "file", "command") if k in node.entries]
        if len(kinds) != 1:
            raise PlaybookError(
                "wait_for: give exactly one of port, file or command", source=path, line=node.line
            )
        timeout = self.duration(node.entries, "timeout", path) or 300.0
        interval = self.duration(node.entries, "interval", path) or 2.0
        if "port" in node.entries:
            port_entry = node.entries["port"]
            port = port_entry.value.value if isinstance(port_entry.value, Scalar) else None
            if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
                raise PlaybookError("port: expected 1-65535", source=path, line=port_entry.key_line)
            host = self.text(node.entries, "host", path) or Text("127.0.0.1", port_entry.key_line)
            return WaitForAction(timeout, interval, port=port, host=host)
        if "host" in node.entries:
            raise PlaybookError(
                "wait_for: host goes with port", source=path, line=node.entries["host"].key_line
            )
        return WaitForAction(
            timeout,
            interval,
            file=self.text(node.entries, "file", path),
            command=self.text(node.entries, "command", path),
        )

    # -- scalar helpers ----------------------------------------------------------------------

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
        text = Text(self.scalar_text(entry, path, key), _text_line(entry.value))
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
        if not name.isidentifier() or name in ("host", "hosts", "result", "inventory_hosts"):
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
                body = handle.read(SCRIPT_LIMIT + 1)
        except OSError as exc:
            raise PlaybookError(
                f"cannot read {file}: {exc.strerror}", source=path, line=line
            ) from None
        if len(body) > SCRIPT_LIMIT:
            raise PlaybookError(f"{file} is larger than 64 MiB", source=path, line=line)
        return body


def _text_line(node: Node) -> int:
    """The line a string's text starts on: a block scalar's (``|``, ``>``) starts below its key."""
    if isinstance(node, Scalar) and node.style in ("|", ">"):
        return node.line + 1
    return node.line
