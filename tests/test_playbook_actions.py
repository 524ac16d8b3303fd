"""The action registry (issue 13 item 6): one module per action, no silent default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.located_yaml import Entry, Scalar
from bastion.playbook import PlaybookError, load_playbook
from bastion.playbook.actions import ACTION_NAMES, read_action
from bastion.playbook.actions.registry import MODULES
from bastion.playbook.fields import FieldReader
from tests.conftest import REPO

SCHEMA = json.loads((REPO / "docs" / "playbook.schema.json").read_text())
DOCS = (REPO / "docs" / "playbooks.md").read_text()


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_action_module_declares_what_the_engine_needs(module: object) -> None:
    for name in ("NAMES", "READONLY", "SUDO", "DURABLE", "read", "prepare", "plan_line"):
        assert hasattr(module, name), name
    for name in module.NAMES:  # type: ignore[attr-defined]
        assert name in SCHEMA["$defs"]["step"]["properties"], name
        assert f"| `{name}: " in DOCS, name


def test_an_unknown_action_name_is_an_error_not_a_default() -> None:
    entry = Entry(4, Scalar(4, "5", "5"))
    with pytest.raises(PlaybookError) as caught:
        read_action(FieldReader(), "sleep_for", entry, Path("b.yaml"))
    assert str(caught.value) == (
        f"b.yaml:4: unknown action 'sleep_for' (expected one of {', '.join(ACTION_NAMES)})"
    )
    assert ACTION_NAMES == ("run", "script", "copy", "template", "fetch", "wait_for")


def test_the_loader_asks_each_action_what_applies(tmp_path: Path) -> None:
    book = tmp_path / "b.yaml"
    book.write_text(
        "name: b\nhosts: --all\nsteps:\n"
        "  - name: w\n    wait_for: {file: /x}\n"
        "  - name: f\n    fetch: {src: /x, dest: out/}\n    sudo: true\n"
    )
    with pytest.raises(PlaybookError) as caught:
        load_playbook(book)
    assert "fetch reads files as the login user; sudo does not apply" in str(caught.value)
    book.write_text(
        "name: b\nhosts: --all\nsteps:\n  - name: s\n    wait_for: {file: /x}\n"
        "  - name: d\n    wait_for: {file: /x}\n    durable: true\n"
    )
    with pytest.raises(PlaybookError, match="durable applies to run steps only"):
        load_playbook(book)
    book.write_text("name: b\nhosts: --all\nsteps:\n  - name: w\n    wait_for: {file: /x}\n")
    assert load_playbook(book).plays[0].steps[0].readonly  # wait_for is read-only by itself


def test_a_zero_delay_is_no_delay_not_the_default(tmp_path: Path) -> None:
    book = tmp_path / "b.yaml"
    steps = "  - {name: a, run: a, retries: 1, delay: 0s}\n  - {name: b, run: b, retries: 1}\n"
    book.write_text(f"name: b\nhosts: --all\nsteps:\n{steps}")
    a, b = load_playbook(book).plays[0].steps
    assert (a.delay, b.delay) == (0.0, 2.0)
