"""Enrichment's own rows: the answer cache, and the answer written onto the stored lead.

- ``cached`` / ``remember``: one answer per ``(provider, email_key)`` — a person is never
  asked twice of one provider (a "no match" is an answer too). The key is a hash of the
  email (``daemon.providers.base.email_key``): the cache holds no contact value;
- ``apply``: the answer written onto the stored lead (``leads.enrichment``) — and nothing
  else: an enrichment never changes the lead's name, email or phone;
- ``from_json``: a lead's stored enrichment read back as the value.

The daily quota and the deferred look-ups are every provider's: ``storage.provider_jobs``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from daemon.lead import Enrichment, Profile
from storage.models import EnrichmentRow, LeadRow, insert_or_find


def cached(session: Session, provider: str, email_key: str) -> Enrichment | None:
    """What ``provider`` answered about the person of ``email_key`` before, if asked."""
    row = _row(session, provider, email_key)
    if row is None:
        return None
    return Enrichment(row.provider, row.found, company=row.company, title=row.title,
                      profiles=tuple(Profile(str(n), str(u)) for n, u in row.profiles or ()),
                      likelihood=row.likelihood)


def remember(session: Session, email_key: str, answer: Enrichment, *, at: datetime) -> None:
    """Keep ``answer`` as its provider's about ``email_key``; a second answer for the same
    person (another replica asked at the same time) leaves the first."""
    row = EnrichmentRow(provider=answer.provider, email_key=email_key, found=answer.found,
                        company=answer.company, title=answer.title,
                        profiles=[[p.network, p.url] for p in answer.profiles],
                        likelihood=answer.likelihood, created_at=at)
    insert_or_find(session, row, lambda: _row(session, answer.provider, email_key))


def _row(session: Session, provider: str, email_key: str) -> EnrichmentRow | None:
    return session.scalars(select(EnrichmentRow).where(
        EnrichmentRow.provider == provider, EnrichmentRow.email_key == email_key)).first()


def apply(session: Session, lead_id: int, answer: Enrichment) -> bool:
    """Write ``answer`` onto the lead; False when there is no such lead or the provider
    found no match (the lead is left as it is)."""
    if not answer.found:
        return False
    done = session.execute(update(LeadRow).where(LeadRow.id == lead_id)
                           .values(enrichment=answer.to_json()))
    return bool(done.rowcount)  # type: ignore[attr-defined]


def from_json(stored: dict[str, Any] | None) -> Enrichment | None:
    """A lead's ``enrichment`` column as the value; ``None`` (NULL, or before 0011) stays."""
    if not stored:
        return None
    profiles = tuple(Profile(str(p.get("network") or ""), str(p.get("url") or ""))
                     for p in stored.get("profiles") or () if isinstance(p, dict) and p.get("url"))
    likelihood = stored.get("likelihood")
    return Enrichment(str(stored.get("provider") or ""), True, company=stored.get("company"),
                      title=stored.get("title"), profiles=profiles,
                      likelihood=int(likelihood) if isinstance(likelihood, int) else None)
