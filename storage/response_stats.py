"""The routing history behind the response-time figures (``leadpipe stats``, the admin
Response page): every routing step of the leads stored in a period, with the lead's
source, team and times. Rows in, values out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import LeadRow, RoutingEventRow

#: the steps that give, take, or answer a lead
KINDS = ("assigned", "repeat", "reassigned", "claimed", "accepted", "missed")


@dataclass(frozen=True)
class Step:
    """One routing step of a lead stored in the period."""

    lead_id: int
    kind: str
    agent: str | None
    at: datetime
    flow: str | None
    source: str
    team: str | None
    lead_created_at: datetime
    offered_at: datetime | None


def steps(session: Session, since: datetime, until: datetime) -> list[Step]:
    """The steps of the leads stored in ``[since, until)``, by lead then time."""
    rows = session.execute(
        select(RoutingEventRow.lead_id, RoutingEventRow.kind, RoutingEventRow.agent,
               RoutingEventRow.created_at, RoutingEventRow.flow, LeadRow.source, LeadRow.team,
               LeadRow.created_at, LeadRow.offered_at)
        .join(LeadRow, LeadRow.id == RoutingEventRow.lead_id)
        .where(LeadRow.created_at >= since, LeadRow.created_at < until, RoutingEventRow.kind.in_(KINDS))
        .order_by(RoutingEventRow.lead_id, RoutingEventRow.id)
    )
    return [Step(*r) for r in rows]
