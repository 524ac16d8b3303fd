"""Playbook actions: one module each (see `registry`), and how a prepared one is performed."""

from bastion.playbook.actions.perform import compare_upload, perform
from bastion.playbook.actions.prepared import Command, Download, Prepared, Upload
from bastion.playbook.actions.registry import (
    ACTION_NAMES,
    Action,
    is_readonly,
    plan_line,
    prepare,
    read_action,
    takes_durable,
    takes_sudo,
)

__all__ = [
    "ACTION_NAMES",
    "Action",
    "Command",
    "Download",
    "Prepared",
    "Upload",
    "compare_upload",
    "is_readonly",
    "perform",
    "plan_line",
    "prepare",
    "read_action",
    "takes_durable",
    "takes_sudo",
]
