"""What a verification run found: one :class:`Finding` per broken rule, and
the :class:`Report` that sums a run up."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

FINDINGS_KEPT = 1_000


@dataclass(frozen=True)
class Finding:
    """One broken rule, located at an event.

    ``position`` is the store's notification id, or the 1-based line number
    of an export file. ``check`` is a stable short code (see
    :mod:`ledger.verify`). ``message`` is one line.
    """

    position: int | None
    aggregate_id: str | None
    version: int | None
    event_type: str | None
    check: str
    message: str
    expected: str | None = None
    actual: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = "end of log" if self.position is None else f"position {self.position}"
        event = ""
        if self.aggregate_id is not None:
            event = f" {self.event_type or '?'} v{self.version} of {self.aggregate_id}"
        return f"{where}{event}: [{self.check}] {self.message}"


@dataclass
class Report:
    """The result of verifying one store or export file."""

    source: str
    events: int
    aggregates: int
    findings: list[Finding] = field(default_factory=list)
    findings_total: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    log: dict[str, Any] | None = None  # the global log's audit summary, if it has one

    @property
    def ok(self) -> bool:
        return self.findings_total == 0 and not self.findings

    @property
    def first(self) -> Finding | None:
        """The finding earliest in the log (findings are kept in the order
        they were detected, which for cross-event rules can be later)."""
        located = [f for f in self.findings if f.position is not None]
        if located:
            return min(located, key=lambda f: f.position or 0)
        return self.findings[0] if self.findings else None

    @property
    def truncated(self) -> bool:
        return self.findings_total > len(self.findings)

    def by_check(self) -> dict[str, int]:
        """How many of the kept findings each check code has."""
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.check] = counts.get(finding.check, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "ok": self.ok,
            "events": self.events,
            "aggregates": self.aggregates,
            "by_type": dict(sorted(self.by_type.items())),
            "log": self.log,
            "elapsed_s": round(self.elapsed_s, 6),
            "findings_total": self.findings_total,
            "findings_truncated": self.truncated,
            "findings": [f.to_json() for f in self.findings],
        }
