"""``audit --diff PREVIOUS.json``: new, resolved and regressed findings, matched by stable key."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.audit.findings import Finding, Severity
from bastion.errors import UsageError


@dataclass(frozen=True, slots=True)
class FindingsDiff:
    previous: str
    """Where the previous report came from."""
    new: tuple[Finding, ...]
    regressed: tuple[Finding, ...]
    """Present before, now more severe (or no longer waived)."""
    resolved: tuple[dict[str, Any], ...]
    """The previous report's finding records that are gone."""


def load_previous(path: Path) -> list[dict[str, Any]]:
    """The findings of a previous JSON report; `UsageError` if it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError("previous report not found", source=path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"not a bastion audit JSON report: {exc}", source=path) from None
    if not isinstance(data, dict) or data.get("schema") != 1 or "findings" not in data:
        raise UsageError("not a bastion audit JSON report (schema 1)", source=path)
    findings = data["findings"]
    if not isinstance(findings, list) or not all(
        isinstance(f, dict) and isinstance(f.get("key"), str) for f in findings
    ):
        raise UsageError("its findings have no stable keys", source=path)
    return findings


def diff_findings(
    previous: Sequence[dict[str, Any]], current: Sequence[Finding], source: str
) -> FindingsDiff:
    """Compare by `Finding.key`."""
    before = {f["key"]: f for f in previous}
    now_keys = {f.key for f in current}
    new = tuple(f for f in current if f.key not in before)
    regressed = []
    for item in current:
        old = before.get(item.key)
        if old is None:
            continue
        try:
            old_severity = Severity.parse(str(old.get("severity", "info")))
        except ValueError:
            old_severity = Severity.INFO
        if item.severity > old_severity or (old.get("waived") and not item.waived):
            regressed.append(item)
    resolved = tuple(f for key, f in before.items() if key not in now_keys)
    return FindingsDiff(source, new, tuple(regressed), resolved)
