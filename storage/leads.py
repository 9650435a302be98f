"""Leads: insert the pipeline's result, list and read them back as values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.lead import Inquiry, Lead, Property, ScoreLine, StoredLead
from storage import enrichments
from storage.models import LeadRow


def insert(
    session: Session, lead: Lead, *, inbound_email_id: int | None, status: str = "new"
) -> int:
    """Store ``lead`` and return its id."""
    p = lead.property
    row = LeadRow(
        inbound_email_id=inbound_email_id,
        source=lead.source,
        rule_version=lead.rule_version,
        message_id=lead.message_id,
        received_at=lead.received_at,
        full_name=lead.full_name,
        first_name=lead.first_name,
        last_name=lead.last_name,
        # wholly lower-cased, as normalize_email gives it: previous_owner's indexed
        # lookup relies on it, whatever built the Lead
        email=lead.email.lower() if lead.email else lead.email,
        phone=lead.phone,
        property_address=p.address,
        property_city=p.city,
        property_state=p.state,
        property_postal_code=p.postal_code,
        property_price=p.price,
        property_mls_id=p.mls_id,
        property_url=p.url,
        property_address_verified=p.address_verified,
        property_address_check=p.address_check,
        property_address_usps=p.address_usps,
        property_latitude=p.latitude,
        property_longitude=p.longitude,
        property_county=p.county,
        property_geocode_quality=p.geocode_quality,
        property_geocoder=p.geocoder,
        budget_min=lead.budget_min,
        budget_max=lead.budget_max,
        intent=lead.intent,
        inquiry={**lead.inquiry.to_json(), "evidence": list(lead.inquiry.evidence)},
        enrichment=lead.enrichment.to_json() if lead.enrichment else None,
        message=lead.message,
        score=lead.score,
        tier=lead.tier,
        warnings=list(lead.warnings),
        score_breakdown=[[s.name, s.points] for s in lead.score_breakdown],
        status=status,
    )
    session.add(row)
    session.flush()
    return row.id


def get(session: Session, lead_id: int) -> StoredLead | None:
    row = session.get(LeadRow, lead_id)
    return None if row is None else to_value(row)


def by_inbound(session: Session, inbound_email_id: int) -> StoredLead | None:
    row = session.scalars(
        select(LeadRow).where(LeadRow.inbound_email_id == inbound_email_id)
    ).first()
    return None if row is None else to_value(row)


def newest(
    session: Session,
    *,
    limit: int = 50,
    source: str | None = None,
    tier: str | None = None,
    since: datetime | None = None,
) -> list[StoredLead]:
    """Stored leads, newest first."""
    q = select(LeadRow).order_by(LeadRow.id.desc()).limit(limit)
    if source:
        q = q.where(LeadRow.source == source)
    if tier:
        q = q.where(LeadRow.tier == tier)
    if since:
        q = q.where(LeadRow.created_at >= since)
    return [to_value(r) for r in session.scalars(q)]


def _inquiry(stored: dict[str, Any] | None) -> Inquiry:
    """The inquiry as stored (0010); a lead stored before it has none (every finding null)."""
    if not stored:
        return Inquiry()
    return Inquiry(intent=stored.get("intent"), urgency=stored.get("urgency"),
                   pre_approved=stored.get("pre_approved"), cash=stored.get("cash"),
                   investor=stored.get("investor"), timeline_days=stored.get("timeline_days"),
                   evidence=tuple(str(e) for e in stored.get("evidence") or ()))


def to_value(row: LeadRow) -> StoredLead:
    lead = Lead(
        source=row.source,
        rule_version=row.rule_version,
        message_id=row.message_id,
        received_at=row.received_at,
        full_name=row.full_name,
        first_name=row.first_name,
        last_name=row.last_name,
        email=row.email,
        phone=row.phone,
        property=Property(
            address=row.property_address,
            city=row.property_city,
            state=row.property_state,
            postal_code=row.property_postal_code,
            price=row.property_price,
            mls_id=row.property_mls_id,
            url=row.property_url,
            address_verified=row.property_address_verified,
            address_check=row.property_address_check,
            address_usps=row.property_address_usps,
            latitude=row.property_latitude,
            longitude=row.property_longitude,
            county=row.property_county,
            geocode_quality=row.property_geocode_quality,
            geocoder=row.property_geocoder,
        ),
        budget_min=row.budget_min,
        budget_max=row.budget_max,
        intent=row.intent,  # type: ignore[arg-type]
        inquiry=_inquiry(row.inquiry),
        enrichment=enrichments.from_json(row.enrichment),
        message=row.message,
        score=row.score,
        tier=row.tier,  # type: ignore[arg-type]
        warnings=tuple(row.warnings or ()),
        score_breakdown=tuple(ScoreLine(str(v[0]), int(str(v[1]))) for v in row.score_breakdown or () if len(v) == 2),
    )
    return StoredLead(
        id=row.id,
        lead=lead,
        status=row.status,
        agent=row.agent,
        claimed_by=row.claimed_by,
        inbound_email_id=row.inbound_email_id,
        created_at=row.created_at,
        assigned_at=row.assigned_at,
        offered_at=row.offered_at,
        claim_deadline=row.claim_deadline,
        claimed_at=row.claimed_at,
        repeat_of=row.repeat_of,
    )

