"""Which inventory format a file is, by its content (never by its name), and its tree.

In order: an Ansible INI section header anywhere (``[web]``, ``[all:vars]``) makes an Ansible
INI inventory; a file of only ``[user@]host[:port]`` lines is a host list; otherwise the file
is YAML: unless a top-level key is (close to) one of bastion's own (`host:` is a typo of
`hosts:`), an Ansible YAML inventory (groups of ``hosts``/``children``/``vars``), a ClusterShell
groups.d file (sources of group -> node set), or else bastion's own format, validated as such.
An INI file without sections (hosts with ``key=value`` variables) is recognised when it is not
a YAML mapping.
"""

from __future__ import annotations

import re
from difflib import get_close_matches
from pathlib import Path

from bastion.errors import InputError
from bastion.formats.ansible_ini import looks_like_ini, read_ansible_ini
from bastion.formats.ansible_yaml import looks_like_ansible_yaml, read_ansible_yaml
from bastion.formats.clustershell import looks_like_clustershell, read_clustershell
from bastion.formats.host_list import looks_like_host_list, read_host_list
from bastion.located_yaml import Node, YamlMap, compose

_BASTION_KEYS = ("defaults", "hosts", "groups", "vars")
FORMATS = ("bastion", "ansible-ini", "ansible-yaml", "host-list", "clustershell")
_INI_HOST_VARS = re.compile(r"^\S+(\s+[A-Za-z_][A-Za-z0-9_]*=\S*)+\s*$", re.MULTILINE)


def inventory_tree(  # noqa: PLR0911 (one return per format)
    path: Path, data: bytes, error: type[InputError]
) -> tuple[str, Node | None]:
    """The format of ``data`` and its bastion inventory tree (None for an empty document)."""
    source = str(path)
    text = _text(path, data, error)
    if looks_like_ini(text):
        return "ansible-ini", read_ansible_ini(text, error, path)
    if looks_like_host_list(text):
        return "host-list", read_host_list(text, error, source)
    try:
        root = compose(path, data, error)
    except InputError:
        if _INI_HOST_VARS.search(text):
            return "ansible-ini", read_ansible_ini(text, error, path)
        raise
    if not isinstance(root, YamlMap) and _INI_HOST_VARS.search(text):
        # Several `host key=value` lines are one multi-line plain scalar to YAML.
        return "ansible-ini", read_ansible_ini(text, error, path)
    if _near_bastion_key(root):
        return "bastion", root  # `host:` is a typo of bastion's `hosts:`, not a group name
    if looks_like_ansible_yaml(root):
        assert isinstance(root, YamlMap)
        return "ansible-yaml", read_ansible_yaml(root, error, path)
    if looks_like_clustershell(root):
        assert isinstance(root, YamlMap)
        return "clustershell", read_clustershell(root, error, source)
    return "bastion", root


def _near_bastion_key(root: Node | None) -> bool:
    if not isinstance(root, YamlMap):
        return False
    return any(
        key in _BASTION_KEYS or get_close_matches(key, _BASTION_KEYS, n=1, cutoff=0.75)
        for key in root.entries
    )


def _text(path: Path, data: bytes, error: type[InputError]) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (bad byte at offset {exc.start})", source=path) from None
