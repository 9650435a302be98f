"""Per-source figures for the admin Sources page: leads per day, dead letters, drift
warnings, and when each source last sent a lead."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from storage.models import DeadLetterRow, LeadRow


@dataclass
class SourceFigures:
    """One source over a window: leads per UTC day, dead letters, and warnings."""

    source: str
    per_day: dict[date, int] = field(default_factory=dict)
    leads: int = 0
    dead_letters: int = 0
    open_dead_letters: int = 0
    #: dead letters a replay turned into a lead (that lead is among ``leads`` too)
    resolved_dead_letters: int = 0
    #: ``(lead id, warning)`` of the window's leads, newest first
    warnings: list[tuple[int, str]] = field(default_factory=list)
    last_lead_at: datetime | None = None

    @property
    def emails(self) -> int:
        """Emails of this source that became a lead or a dead letter, each counted once."""
        return self.leads + self.dead_letters - self.resolved_dead_letters

    @property
    def dead_letter_share(self) -> float:
        """The share of those emails that failed to parse at first (replayed or not)."""
        return self.dead_letters / self.emails if self.emails > 0 else 0.0


def figures(session: Session, *, since: datetime) -> dict[str, SourceFigures]:
    """Every source seen in leads or dead letters: leads and dead letters created since
    ``since``, and each source's newest lead ever. Dead letters without a rule count under
    the key ``""``."""
    out: dict[str, SourceFigures] = {}

    def of(source: str) -> SourceFigures:
        if source not in out:
            out[source] = SourceFigures(source)
        return out[source]

    days: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    rows = session.execute(
        select(LeadRow.id, LeadRow.source, LeadRow.created_at, LeadRow.warnings)
        .where(LeadRow.created_at >= since).order_by(LeadRow.id.desc())
    )
    for lead_id, source, created_at, warnings in rows:
        fig = of(source)
        fig.leads += 1
        days[source][created_at.date()] += 1
        fig.warnings.extend((lead_id, str(w)) for w in warnings or ())
    for source, per_day in days.items():
        out[source].per_day = dict(per_day)
    for source, n, n_open, n_resolved in session.execute(
        select(DeadLetterRow.source_hint, func.count(),
               func.sum(case((DeadLetterRow.status == "open", 1), else_=0)),
               func.sum(case((DeadLetterRow.status == "resolved", 1), else_=0)))
        .where(DeadLetterRow.created_at >= since)
        .group_by(DeadLetterRow.source_hint)
    ):
        fig = of(source or "")
        fig.dead_letters = int(n)
        fig.open_dead_letters = int(n_open or 0)
        fig.resolved_dead_letters = int(n_resolved or 0)
    for source, last in session.execute(
        select(LeadRow.source, func.max(LeadRow.created_at)).group_by(LeadRow.source)
    ):
        of(source).last_lead_at = _aware(last)
    return out


def _aware(value: datetime | str | None) -> datetime | None:
    # defensive: an aggregate may come back as the driver's raw value
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
