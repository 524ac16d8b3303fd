"""Declarative playbooks: ordered steps with guards, run on many hosts by the executor.

The API `bastion cluster` uses: `load_playbook`, then `run_playbook` (async) or
`run_playbook_sync`, with `PlayOptions`; the result is a `PlayRecap`.
"""

from bastion.playbook.engine import PlaybookRun, run_playbook, run_playbook_sync
from bastion.playbook.errors import PlaybookError
from bastion.playbook.load import load_playbook, parse_extra_vars
from bastion.playbook.model import Play, Playbook, Step
from bastion.playbook.plan import PlayOptions
from bastion.playbook.results import HostStepResult, PlayEvent, PlayRecap, StepStatus
from bastion.playbook.where import parse_where

__all__ = [
    "HostStepResult",
    "Play",
    "PlayEvent",
    "PlayOptions",
    "PlayRecap",
    "Playbook",
    "PlaybookError",
    "PlaybookRun",
    "Step",
    "StepStatus",
    "load_playbook",
    "parse_extra_vars",
    "parse_where",
    "run_playbook",
    "run_playbook_sync",
]
