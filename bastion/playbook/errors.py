"""The playbook's input error: ``file:line: message``, exit code 2."""

from __future__ import annotations

from bastion.errors import InputError


class PlaybookError(InputError):
    """A playbook file is missing, invalid, or refers to something undefined."""
