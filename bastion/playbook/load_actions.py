"""Reading a step's action from located YAML: each action's own module reads it."""

from __future__ import annotations

from pathlib import Path

from bastion.located_yaml import Entry
from bastion.playbook.actions.registry import Action, read_action
from bastion.playbook.fields import FieldReader


class ActionReader(FieldReader):
    """Reads the one action of a step."""

    def action(self, name: str, entry: Entry, path: Path) -> Action:
        return read_action(self, name, entry, path)
