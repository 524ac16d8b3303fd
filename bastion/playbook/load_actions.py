"""Reading a step's action (run, script, copy, template, fetch, wait_for) from located YAML."""

from __future__ import annotations

from pathlib import Path

from bastion.located_yaml import Entry, Scalar, Seq, YamlMap
from bastion.playbook.errors import PlaybookError
from bastion.playbook.fields import FieldReader
from bastion.playbook.model import (
    Action,
    CopyAction,
    FetchAction,
    RunAction,
    ScriptAction,
    Text,
    WaitForAction,
)
from bastion.playbook.template import check_template


class ActionReader(FieldReader):
    """Reads the one action of a step."""

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
            self.check_keys(node, ("src", "dest", "mode"), path, "fetch")
            mode = self.mode(node, path)
            return FetchAction(
                self.required_text(self.required(node, "src", path), path, "src"),
                self.required_text(self.required(node, "dest", path), path, "dest"),
                0o600 if mode is None else mode,
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
