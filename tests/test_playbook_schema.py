"""docs/playbook.schema.json: every playbook validates, and the schema and the loader agree.

The YAML is read with `located_yaml` (as the loader reads it), so ``on:`` stays the key "on"
rather than YAML 1.1's boolean true.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from bastion.errors import InputError
from bastion.located_yaml import Node, Seq, YamlMap, compose
from bastion.playbook import PlaybookError, load_playbook
from tests.conftest import REPO

SCHEMA = json.loads((REPO / "docs" / "playbook.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def plain(node: Node | None) -> object:
    if isinstance(node, YamlMap):
        return {key: plain(entry.value) for key, entry in node.entries.items()}
    if isinstance(node, Seq):
        return [plain(item) for item in node.items]
    return None if node is None else node.value


def document(path: Path) -> object:
    return plain(compose(path, path.read_bytes(), InputError))


def schema_errors(path: Path) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(document(path))]


def every_playbook() -> list[Path]:
    """Everything under playbooks/ (the shipped ones, examples) and tests/playbooks/."""
    found = []
    for root in (REPO / "playbooks", REPO / "tests" / "playbooks"):
        found += sorted(root.rglob("*.yaml")) if root.exists() else []
    return found


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert len(every_playbook()) >= 10


@pytest.mark.parametrize("path", every_playbook(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_playbook_validates_and_loads(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAY_TEST_TOKEN", "x" * 8)
    assert schema_errors(path) == []
    load_playbook(path)


HEAD = "name: t\nhosts: --all\nsteps:\n"
BAD = {
    "no steps": "name: t\nhosts: --all\n",
    "empty steps": "name: t\nhosts: --all\nsteps: []\n",
    "no hosts": "name: t\nsteps:\n  - {name: a, run: echo}\n",
    "hosts not a selection": "name: t\nhosts: node1\nsteps:\n  - {name: a, run: echo}\n",
    "unknown top key": HEAD + "  - {name: a, run: echo}\nbecome: true\n",
    "no action": HEAD + "  - {name: a, sudo: true}\n",
    "two actions": HEAD + "  - {name: a, run: echo, fetch: {src: a, dest: b}}\n",
    "unknown step key": HEAD + "  - {name: a, run: echo, sudu: true}\n",
    "step without name": HEAD + "  - {run: echo}\n",
    "flag not boolean": HEAD + "  - {name: a, run: echo, sudo: yes please}\n",
    "negative retries": HEAD + "  - {name: a, run: echo, retries: -1}\n",
    "bad duration": HEAD + "  - {name: a, run: echo, timeout: soon}\n",
    "until without retries": HEAD + "  - {name: a, run: echo, until: 'true'}\n",
    "max_fail without batch": HEAD + "  - {name: a, run: echo, max_fail: 1}\n",
    "bad batch": HEAD + "  - {name: a, run: echo, batch: some}\n",
    "durable copy": HEAD + "  - {name: a, copy: {content: x, dest: /x}, durable: true}\n",
    "copy src and content": HEAD + "  - {name: a, copy: {src: f, content: x, dest: /x}}\n",
    "copy without dest": HEAD + "  - {name: a, copy: {content: x}}\n",
    "bad mode": HEAD + "  - {name: a, copy: {content: x, dest: /x, mode: rw}}\n",
    "bad owner": HEAD + "  - {name: a, copy: {content: x, dest: /x, owner: 'a b'}}\n",
    "fetch with sudo": HEAD + "  - {name: a, fetch: {src: /a, dest: b}, sudo: true}\n",
    "wait_for two kinds": HEAD + "  - {name: a, wait_for: {port: 22, file: /x}}\n",
    "wait_for bad port": HEAD + "  - {name: a, wait_for: {port: 70000}}\n",
    "wait_for host without port": HEAD + "  - {name: a, wait_for: {file: /x, host: h}}\n",
    "register not a name": HEAD + "  - {name: a, run: echo, register: 'my var'}\n",
    "reserved var": "name: t\nhosts: --all\nvars: {hosts: 1}\nsteps:\n  - {name: a, run: echo}\n",
    "var not a name": "name: t\nhosts: --all\nvars: {a-b: 1}\nsteps:\n  - {name: a, run: echo}\n",
    "secret two sources": (
        "name: t\nhosts: --all\nvars:\n  s: {secret: true, env: A, value: b}\n"
        "steps:\n  - {name: a, run: echo}\n"
    ),
    "secret not true": (
        "name: t\nhosts: --all\nvars:\n  s: {secret: false, value: b}\n"
        "steps:\n  - {name: a, run: echo}\n"
    ),
    "import empty": "name: t\nimport: []\n",
    "import entry key": "name: t\nimport:\n  - {file: a.yaml, unless: x}\n",
    "composition with steps": "name: t\nimport: [a.yaml]\nsteps: []\n",
    "bad defaults key": (
        "name: t\nhosts: --all\ndefaults: {once: true}\nsteps:\n  - {name: a, run: x}\n"
    ),
}
LOADER_ONLY = {
    # What a schema cannot see: Jinja, uniqueness, files, the environment.
    "jinja syntax": HEAD + "  - {name: a, run: 'echo {{ x'}\n",
    "duplicate step": HEAD + "  - {name: a, run: echo}\n  - {name: a, run: echo}\n",
    "missing script": HEAD + "  - {name: a, script: {src: no-such.sh}}\n",
    "missing env secret": (
        "name: t\nhosts: --all\nvars:\n  s: {secret: true, env: BASTION_NO_SUCH_VARIABLE}\n"
        "steps:\n  - {name: a, run: echo}\n"
    ),
    "bad when": HEAD + "  - {name: a, run: echo, when: 'a ==='}\n",
}
GOOD = {
    "minimal": HEAD + "  - {name: a, run: echo}\n",
    "every modifier": HEAD
    + "  - name: a\n    run: echo\n    on: -g masters\n    once: true\n    creates: /a\n"
    "    removes: /b\n    unless: 'true'\n    only_if: 'true'\n    when: x == 1\n"
    "    register: r\n    retries: 2\n    delay: 1s\n    until: result.rc == 0\n"
    "    timeout: 10m\n    sudo: true\n    durable: true\n    tags: [a, b]\n"
    "    readonly: false\n    changed_when: 'false'\n    ignore_errors: true\n    secret: true\n"
    "  - {name: b, run: echo, batch: '1,50%', max_fail: 0}\n",
    "defaults and vars": (
        "name: t\nhosts: -g workers -x node3\ndefaults: {sudo: true, timeout: 5m}\n"
        "vars:\n  a: 1\n  b: '{{ a }}'\n  s: {secret: true, value: abc}\n"
        "steps:\n  - {name: a, copy: {content: x, dest: /x, mode: '0644', owner: 'root:root'}}\n"
        "  - {name: b, wait_for: {port: 22, host: 127.0.0.1, timeout: 1m}}\n"
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_schema_and_loader_both_refuse(case: str, tmp_path: Path) -> None:
    path = tmp_path / "book.yaml"
    path.write_text(BAD[case])
    assert schema_errors(path), f"the schema accepts {case}"
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    assert caught.value.source == str(path)
    assert caught.value.line is not None or case in ("import empty",)


@pytest.mark.parametrize("case", sorted(LOADER_ONLY))
def test_the_loader_refuses_what_the_schema_cannot_see(case: str, tmp_path: Path) -> None:
    path = tmp_path / "book.yaml"
    path.write_text(LOADER_ONLY[case])
    assert schema_errors(path) == []
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    assert caught.value.line is not None


@pytest.mark.parametrize("case", sorted(GOOD))
def test_schema_and_loader_both_accept(case: str, tmp_path: Path) -> None:
    path = tmp_path / "book.yaml"
    path.write_text(GOOD[case])
    assert schema_errors(path) == []
    assert load_playbook(path).plays[0].steps
