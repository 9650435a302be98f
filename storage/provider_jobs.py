"""Every provider's shared rows: its daily usage (the quota) and its deferred look-ups.

- ``reserve``: one call of a provider's daily quota, taken by a conditional ``UPDATE`` on its
  ``provider_usage`` row, so every replica and every restart counts against the same number;
  it also says, once a day, that the quota is nearly used up;
- ``defer`` / ``claim_jobs`` / ``finish_job`` / ``release_job``: look-ups the pipeline did not
  wait for, as rows like the outbox's (leased while in flight, ``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL, retried at ``next_attempt_at``), one per lead and ``kind`` (``geocode``,
  ``enrichment``).

What each kind caches and writes onto the lead is its own module's (``storage.geocodes``,
``storage.enrichments``). Imports only the shared values, like the rest of ``storage/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.models import ProviderJobRow, ProviderUsageRow, insert_or_find, lease

#: jobs in these states are waiting (``sending`` once its lease ends)
WAITING = ("pending", "sending")


# -- the daily quota -------------------------------------------------------------------

@dataclass(frozen=True)
class Reservation:
    """One ``reserve``: whether the call may be made, the day's count after it, and whether
    this call is the one that should tell people the quota is nearly used up."""

    granted: bool
    calls: int
    alert: bool = False


def reserve(session: Session, provider: str, day: str, *, quota: int | None,
            alert_from: int | None, at: datetime) -> Reservation:
    """Count one call of ``provider`` on ``day`` unless ``quota`` calls were made already.
    ``alert`` is true for exactly one granted call per day once the count reaches
    ``alert_from`` (a conditional update on ``alerted_at``: once across replicas too)."""
    key = (ProviderUsageRow.provider == provider, ProviderUsageRow.day == day)
    if session.get(ProviderUsageRow, (provider, day)) is None:
        insert_or_find(session, ProviderUsageRow(provider=provider, day=day, calls=0),
                       lambda: session.get(ProviderUsageRow, (provider, day)))
    q = update(ProviderUsageRow).where(*key)
    if quota is not None:
        q = q.where(ProviderUsageRow.calls < quota)
    granted = bool(session.execute(q.values(calls=ProviderUsageRow.calls + 1)).rowcount)  # type: ignore[attr-defined]
    calls = int(session.scalar(select(ProviderUsageRow.calls).where(*key)) or 0)
    alert = False
    if granted and alert_from is not None and calls >= alert_from:
        alert = bool(session.execute(
            update(ProviderUsageRow).where(*key, ProviderUsageRow.alerted_at.is_(None))
            .values(alerted_at=at)).rowcount)  # type: ignore[attr-defined]
    return Reservation(granted, calls, alert)


def usage(session: Session, provider: str, day: str) -> int:
    """Calls counted for ``provider`` on ``day``."""
    row = session.get(ProviderUsageRow, (provider, day))
    return 0 if row is None else row.calls


# -- deferred lookups ------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """One deferred lookup, as a value; ``attempts`` counts the one it was claimed for."""

    id: int
    lead_id: int
    kind: str
    provider: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    status: str = "pending"
    last_error: str | None = None


def defer(session: Session, lead_id: int, kind: str, provider: str, *, at: datetime,
          new_lead: bool = False) -> bool:
    """A job asking ``provider`` the ``kind`` question about ``lead_id``, due at ``at``;
    False when the lead has one already. ``new_lead``: the lead was inserted in this very
    transaction, so it can have none — the row is simply added (no savepoint, no look-up)."""
    row = ProviderJobRow(lead_id=lead_id, kind=kind, provider=provider, status="pending",
                         attempts=0, next_attempt_at=at, created_at=at)
    if new_lead:
        session.add(row)
        return True
    _, created = insert_or_find(session, row, lambda: session.scalars(
        select(ProviderJobRow).where(ProviderJobRow.lead_id == lead_id,
                                     ProviderJobRow.kind == kind)).first())
    return created


def claim_jobs(session: Session, kind: str, *, now: datetime, lease_until: datetime,
               limit: int = 20) -> list[Job]:
    """Lease up to ``limit`` due jobs of ``kind``, oldest first."""
    q = (select(ProviderJobRow)
         .where(ProviderJobRow.kind == kind, ProviderJobRow.status.in_(WAITING),
                ProviderJobRow.next_attempt_at <= now)
         .order_by(ProviderJobRow.next_attempt_at, ProviderJobRow.id).limit(limit))
    return [_job(r) for r in lease(session, q, lease_until)]


def finish_job(session: Session, job_id: int, attempts: int, *, status: str, at: datetime,
               next_attempt_at: datetime | None = None, error: str | None = None) -> bool:
    """Set a leased job's fate: ``done``, ``dead``, or ``pending`` again at ``next_attempt_at``.
    False (nothing changed) when its lease was lost meanwhile."""
    values: dict[str, object] = {"status": status, "last_error": error}
    if status == "done":
        values["done_at"] = at
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    done = session.execute(update(ProviderJobRow).where(
        ProviderJobRow.id == job_id, ProviderJobRow.attempts == attempts,
        ProviderJobRow.status == "sending").values(**values))
    return bool(done.rowcount)  # type: ignore[attr-defined]


def release_job(session: Session, job_id: int, attempts: int, *, at: datetime) -> bool:
    """Give a leased job back unattempted (its provider is held, or over its quota), due at ``at``."""
    done = session.execute(update(ProviderJobRow).where(
        ProviderJobRow.id == job_id, ProviderJobRow.attempts == attempts,
        ProviderJobRow.status == "sending").values(
            status="pending", attempts=ProviderJobRow.attempts - 1, next_attempt_at=at))
    return bool(done.rowcount)  # type: ignore[attr-defined]


def next_job_due(session: Session, kind: str) -> datetime | None:
    return session.scalar(select(func.min(ProviderJobRow.next_attempt_at)).where(
        ProviderJobRow.kind == kind, ProviderJobRow.status.in_(WAITING)))


def jobs(session: Session, *, kind: str | None = None, lead_id: int | None = None,
         status: str | Sequence[str] | None = None) -> list[Job]:
    q = select(ProviderJobRow).order_by(ProviderJobRow.id)
    if kind is not None:
        q = q.where(ProviderJobRow.kind == kind)
    if lead_id is not None:
        q = q.where(ProviderJobRow.lead_id == lead_id)
    if isinstance(status, str):
        q = q.where(ProviderJobRow.status == status)
    elif status is not None:
        q = q.where(ProviderJobRow.status.in_(list(status)))
    return [_job(r) for r in session.scalars(q)]


def count_jobs(session: Session, kind: str) -> dict[str, int]:
    rows = session.execute(select(ProviderJobRow.status, func.count())
                           .where(ProviderJobRow.kind == kind).group_by(ProviderJobRow.status))
    return {status: int(n) for status, n in rows}


def _job(row: ProviderJobRow) -> Job:
    return Job(id=row.id, lead_id=row.lead_id, kind=row.kind, provider=row.provider,
               attempts=row.attempts, next_attempt_at=row.next_attempt_at,
               created_at=row.created_at, status=row.status, last_error=row.last_error)
