"""``python -m bastion``."""

from bastion.cli.main import entry

entry()
