"""One audit run as data: observations -> access rows -> findings (+ drift) -> exit code.

Every report format (terminal, JSON, Markdown, HTML, SARIF) renders this one object.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from bastion.audit.access import AccessRow, access_rows
from bastion.audit.checks import DEFAULT_UNUSED_DAYS, fleet_findings, host_findings, sort_findings
from bastion.audit.declared import AccessList
from bastion.audit.diff import FindingsDiff
from bastion.audit.findings import Finding, Severity
from bastion.audit.observation import Coverage, HostObservation
from bastion.audit.probe_output import unreadable
from bastion.inventory import Inventory

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_NOT_AUDITED = 3


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Everything a report shows."""

    started_at: str
    observations: tuple[HostObservation, ...]
    rows: tuple[AccessRow, ...]
    findings: tuple[Finding, ...]
    drift: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """(host, account, fingerprint) -> OK, UNDECLARED, MISMATCH, REVOKED, EXPIRED, WAIVED,
    UNMANAGED; and MISSING for declared keys not found. Empty without a declared access list."""
    declared_source: str | None = None
    identities: dict[str, str] = field(default_factory=dict)
    """fingerprint -> declared identity name (from the access list), for the matrix."""
    diff: FindingsDiff | None = None
    """Against a previous report (``--diff``)."""
    cluster: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """The access matrix's cluster column (bastion.audit.kube_report): ``user:NAME``,
    ``group:NAME``, ``serviceaccount:NS:NAME`` -> entries like ``prod:cluster-admin``, and
    ``host/account`` -> what root there reaches. Empty without the cluster audit."""

    @property
    def not_audited(self) -> list[HostObservation]:
        return [
            o for o in self.observations if o.coverage in (Coverage.UNREACHABLE, Coverage.FAILED)
        ]

    def counts(self) -> dict[str, int]:
        """Open (not waived) findings per severity label, most severe first."""
        counter = Counter(f.severity for f in self.findings if f.waived is None)
        return {s.label: counter.get(s, 0) for s in sorted(Severity, reverse=True)}

    def exit_code(self, fail_on: Severity) -> int:
        """3 some host not audited; else 1 an open finding at or above ``fail_on``; else 0."""
        if self.not_audited:
            return EXIT_NOT_AUDITED
        if any(f.severity >= fail_on and f.waived is None for f in self.findings):
            return EXIT_FINDINGS
        return EXIT_CLEAN


FindingAdjuster = Callable[[Finding], Finding]


def build_report(
    observations: Sequence[HostObservation],
    *,
    started_at: str,
    unused_days: int = DEFAULT_UNUSED_DAYS,
    extra: Callable[[Sequence[HostObservation], Sequence[AccessRow]], list[Finding]] | None = None,
    adjust: FindingAdjuster | None = None,
) -> AuditReport:
    """Compute rows and findings; ``extra`` adds drift findings, ``adjust`` applies a policy."""
    rows: list[AccessRow] = []
    findings: list[Finding] = []
    observations = list(observations)
    for index, seen in enumerate(observations):
        try:
            host_rows = access_rows(seen) if seen.coverage is not Coverage.UNREACHABLE else []
            found = host_findings(seen, host_rows, unused_days=unused_days)
        except Exception as exc:  # one host's odd data must not cost the others their report
            if os.environ.get("BASTION_DEBUG"):
                traceback.print_exc(file=sys.stderr)
            failed = unreadable(seen.host, seen.address, f"{type(exc).__name__}: {exc}")
            failed.groups = seen.groups
            observations[index] = failed
            host_rows, found = [], host_findings(failed, [], unused_days=unused_days)
        rows += host_rows
        findings += found
    findings += fleet_findings(observations, rows)
    if extra is not None:
        findings += extra(observations, rows)
    if adjust is not None:
        findings = [adjust(f) for f in findings]
    return AuditReport(
        started_at=started_at,
        observations=tuple(observations),
        rows=tuple(rows),
        findings=tuple(sort_findings(findings)),
    )


def with_drift(
    report: AuditReport,
    drift: dict[tuple[str, str, str], str],
    identities: dict[str, str],
    source: str,
) -> AuditReport:
    """The report with its rows' declared states."""
    return replace(report, drift=drift, identities=identities, declared_source=source)


def audit_against(
    observations: Sequence[HostObservation],
    *,
    started_at: str,
    unused_days: int = DEFAULT_UNUSED_DAYS,
    access: AccessList | None = None,
    inventory: Inventory | None = None,
    today: dt.date | None = None,
) -> AuditReport:
    """The report, with drift and policy when an access list (and its inventory) is given."""
    if access is None or inventory is None:
        return build_report(observations, started_at=started_at, unused_days=unused_days)
    from bastion.audit import drift

    day = today or dt.datetime.now(dt.UTC).date()
    expected = drift.expected_keys(access, inventory)
    expired_waivers, adjust = drift.apply_policy(access, day)
    states: dict[tuple[str, str, str], str] = {}

    def extra(seen: Sequence[HostObservation], rows: Sequence[AccessRow]) -> list[Finding]:
        found, drift_findings = drift.classify(seen, rows, access, expected, day)
        states.update(found)
        return drift_findings + expired_waivers

    report = build_report(
        observations, started_at=started_at, unused_days=unused_days, extra=extra, adjust=adjust
    )
    states = drift.mark_waived_rows(states, report.findings)
    return with_drift(report, states, access.identity_of(), str(access.path))
