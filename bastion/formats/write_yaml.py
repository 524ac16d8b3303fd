"""Writing a bastion inventory as YAML that reads back to the same values.

PyYAML's dumper quotes what YAML 1.1 would misread, but bastion reads YAML 1.2: the string
``0o17`` or ``1e3`` would be written bare and read back as a number. Every string that the
1.2 core schema would not read back as itself is quoted here.
"""

from __future__ import annotations

import yaml

from bastion.yaml_core import ScalarProblem, resolve_plain


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    try:
        plain_ok = resolve_plain(text) == text and isinstance(resolve_plain(text), str)
    except ScalarProblem:
        plain_ok = False
    style = None if plain_ok else "'"
    node = dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)
    return node


_Dumper.add_representer(str, _represent_str)


def inventory_yaml(document: object, header: str) -> str:
    """``document`` (plain data in bastion's inventory format) as YAML text, after a comment."""
    body = yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + body
