"""Geocoding's own rows: the answer cache, and the answer written onto the stored lead.

- ``cached`` / ``remember``: one answer per ``(provider, address_key)`` — the same normalized
  address is never asked twice of one provider (a "no match" is an answer too);
- ``apply``: the answer written onto the stored lead's property.

The daily quota and the deferred look-ups are every provider's: ``storage.provider_jobs``.

Imports only the shared values (``daemon.lead``), like the rest of ``storage/``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from daemon.lead import Geocode
from storage.models import GeocodeRow, LeadRow, insert_or_find

# -- the cache -------------------------------------------------------------------------

def cached(session: Session, provider: str, address_key: str) -> Geocode | None:
    """What ``provider`` answered about ``address_key`` before, if it was asked."""
    row = session.scalars(select(GeocodeRow).where(GeocodeRow.provider == provider,
                                                   GeocodeRow.address_key == address_key)).first()
    return None if row is None else _geocode(row)


def remember(session: Session, address_key: str, geo: Geocode, *, at: datetime) -> None:
    """Keep ``geo`` as ``geo.provider``'s answer about ``address_key``; a second answer for
    the same address (another replica asked at the same time) leaves the first."""
    row = GeocodeRow(provider=geo.provider, address_key=address_key, found=geo.found,
                     latitude=geo.latitude, longitude=geo.longitude, county=geo.county,
                     quality=geo.quality, matched_address=geo.matched_address, created_at=at)
    insert_or_find(session, row, lambda: session.scalars(
        select(GeocodeRow).where(GeocodeRow.provider == geo.provider,
                                 GeocodeRow.address_key == address_key)).first())


def _geocode(row: GeocodeRow) -> Geocode:
    return Geocode(provider=row.provider, found=row.found, latitude=row.latitude,
                   longitude=row.longitude, county=row.county, quality=row.quality,
                   matched_address=row.matched_address)


# -- the stored lead -------------------------------------------------------------------

def apply(session: Session, lead_id: int, geo: Geocode) -> bool:
    """Write ``geo`` onto the lead's property; False when there is no such lead or the
    provider found no match (the property is left as it is)."""
    if not geo.found:
        return False
    done = session.execute(update(LeadRow).where(LeadRow.id == lead_id).values(
        property_latitude=geo.latitude, property_longitude=geo.longitude,
        property_county=geo.county, property_geocode_quality=geo.quality,
        property_geocoder=geo.provider))
    return bool(done.rowcount)  # type: ignore[attr-defined]
