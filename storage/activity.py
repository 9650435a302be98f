"""What happened, when, per source: the queries behind ``leadpipe stats`` and the
source-silence alert. Rows in, values out."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import DeadLetterRow, InboundEmail, LeadRow


def lead_times(session: Session, since: datetime) -> dict[str, list[datetime]]:
    """When each source's leads were stored since ``since``, oldest first."""
    rows = session.execute(
        select(LeadRow.source, LeadRow.created_at)
        .where(LeadRow.created_at >= since)
        .order_by(LeadRow.created_at)
    )
    out: dict[str, list[datetime]] = defaultdict(list)
    for source, at in rows:
        out[source].append(at)
    return dict(out)


def last_heard(session: Session, since: datetime) -> dict[str, datetime]:
    """When each source was last heard from since ``since``: its newest lead or dead letter."""
    heard: dict[str, datetime] = {}
    queries = (
        select(LeadRow.source, func.max(LeadRow.created_at))
        .where(LeadRow.created_at >= since).group_by(LeadRow.source),
        select(DeadLetterRow.source_hint, func.max(DeadLetterRow.created_at))
        .where(DeadLetterRow.created_at >= since, DeadLetterRow.source_hint.is_not(None))
        .group_by(DeadLetterRow.source_hint),
    )
    for q in queries:
        for source, at in session.execute(q):
            if source is not None and at is not None and (source not in heard or at > heard[source]):
                heard[source] = at
    return heard


@dataclass(frozen=True)
class LeadTiming:
    """One lead of the window: its source, tier, warnings and the times of its journey."""

    source: str
    arrived_at: datetime | None
    created_at: datetime
    routed_at: datetime | None
    offered_at: datetime | None
    claimed_at: datetime | None
    warnings: tuple[str, ...]


def leads_since(session: Session, since: datetime) -> list[LeadTiming]:
    """Every lead stored since ``since``, with its email's arrival time."""
    rows = session.execute(
        select(LeadRow.source, InboundEmail.received_at, LeadRow.created_at, LeadRow.assigned_at,
               LeadRow.offered_at, LeadRow.claimed_at, LeadRow.warnings, LeadRow.status)
        .outerjoin(InboundEmail, InboundEmail.id == LeadRow.inbound_email_id)
        .where(LeadRow.created_at >= since)
    )
    out = []
    for source, arrived, created, assigned, offered, claimed, warnings, status in rows:
        # routed: offered in Slack, else assigned; drip and unassigned leads are routed
        # when stored; a lead still ``new`` (no agents configured) is not routed
        routed = offered or assigned or (created if status in ("drip", "unassigned") else None)
        out.append(LeadTiming(source, arrived, created, routed, offered, claimed,
                              tuple(warnings or ())))
    return out


def dead_letters_since(session: Session, since: datetime) -> dict[str | None, int]:
    """Dead letters created since ``since``, by source (``None``: no rule matched)."""
    rows = session.execute(
        select(DeadLetterRow.source_hint, func.count())
        .where(DeadLetterRow.created_at >= since).group_by(DeadLetterRow.source_hint)
    )
    return {source: int(n) for source, n in rows}


def emails_since(session: Session, since: datetime) -> dict[str | None, int]:
    """Inbound rows stored since ``since`` by the source they became (their lead's, or
    their dead letter's); ``None`` for the rest (ignored, pending, unmatched)."""
    rows = session.execute(
        select(InboundEmail.id, LeadRow.source, DeadLetterRow.source_hint)
        .outerjoin(LeadRow, LeadRow.inbound_email_id == InboundEmail.id)
        .outerjoin(DeadLetterRow, DeadLetterRow.inbound_email_id == InboundEmail.id)
        .where(InboundEmail.created_at >= since)
    )
    source_of: dict[int, str | None] = {}
    for inbound_id, lead_source, hint in rows:
        source_of[inbound_id] = lead_source or hint or source_of.get(inbound_id)
    counts: dict[str | None, int] = defaultdict(int)
    for source in source_of.values():
        counts[source] += 1
    return dict(counts)
