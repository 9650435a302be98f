"""The outbox: every outbound effect is a row before it is attempted, and a log of attempts.

A row's ``idempotency_key`` is unique, so writing the same effect twice (a re-run, a
restart, a second replica) keeps one row. The dispatcher ``claim_due`` rows: each claimed
row is leased (``status='sending'``, ``next_attempt_at`` = the lease's end) in a short
transaction, so the outbound call runs with no database lock held, and a process that dies
mid-call leaves a row that becomes due again when its lease ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import false, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import DeliveryAttemptRow, LeadRow, OutboxRow, lease

#: rows in these states are waiting for the dispatcher (``sending`` once its lease ends)
WAITING = ("pending", "sending")


@dataclass(frozen=True)
class Delivery:
    """One outbox row as a value."""

    id: int
    lead_id: int | None
    notifier: str
    action: str
    idempotency_key: str
    payload: Mapping[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    last_error: str | None = None
    result: Mapping[str, Any] | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class Attempt:
    """One attempt at a delivery, as logged."""

    id: int
    outbox_id: int
    attempted_at: datetime
    outcome: str
    status_code: int | None
    latency_ms: float | None
    response: str | None
    error: str | None


@dataclass(frozen=True)
class Enqueued:
    """The row an ``enqueue`` wrote, or found already written under the same key."""

    id: int
    created: bool
    status: str = "pending"


def key(lead_id: int | None, notifier: str, action: str, *extra: object) -> str:
    """The idempotency key ``lead:<id>:<notifier>:<action>[:<extra>…]``."""
    head = f"lead:{lead_id}" if lead_id is not None else "none"
    return ":".join([head, notifier, action, *(str(e) for e in extra)])


def enqueue(
    session: Session,
    *,
    notifier: str,
    action: str,
    idempotency_key: str,
    payload: Mapping[str, Any] | None = None,
    lead_id: int | None = None,
    at: datetime,
) -> Enqueued:
    """Write one outbox row due at ``at``, unless a row with the same key exists.

    Runs in a savepoint, so a duplicate does not spoil the caller's transaction.
    """
    existing = _by_key(session, idempotency_key)
    if existing is not None:
        return Enqueued(existing.id, False, existing.status)
    row = OutboxRow(lead_id=lead_id, notifier=notifier, action=action,
                    idempotency_key=idempotency_key, payload=dict(payload or {}),
                    status="pending", attempts=0, next_attempt_at=at, created_at=at)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        existing = _by_key(session, idempotency_key)
        if existing is None:
            raise
        return Enqueued(existing.id, False, existing.status)
    return Enqueued(row.id, True)


def _by_key(session: Session, idempotency_key: str) -> OutboxRow | None:
    return session.scalars(
        select(OutboxRow).where(OutboxRow.idempotency_key == idempotency_key)
    ).first()


def claim_due(session: Session, *, now: datetime, lease_until: datetime, limit: int = 20,
              notifiers: Sequence[str] | None = None) -> list[Delivery]:
    """Lease up to ``limit`` due rows, oldest first, and return them with ``attempts``
    already counting this attempt. On PostgreSQL ``FOR UPDATE SKIP LOCKED`` keeps two
    dispatchers off the same row while they lease it."""
    q = (
        select(OutboxRow)
        .where(OutboxRow.status.in_(WAITING), OutboxRow.next_attempt_at <= now)
        .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
        .limit(limit)
    )
    if notifiers is not None:
        q = q.where(OutboxRow.notifier.in_(list(notifiers)))
    return [to_value(r) for r in lease(session, q, lease_until)]


def record_attempt(session: Session, outbox_id: int, *, at: datetime, outcome: str,
                   status_code: int | None, latency_ms: float | None, response: str | None,
                   error: str | None) -> None:
    session.add(DeliveryAttemptRow(
        outbox_id=outbox_id, attempted_at=at, outcome=outcome, status_code=status_code,
        latency_ms=latency_ms, response=response[:2048] if response else response,
        error=error[:2000] if error else error,
    ))


def finish(session: Session, outbox_id: int, attempts: int, *, status: str, at: datetime,
           next_attempt_at: datetime | None = None, error: str | None = None,
           result: Mapping[str, Any] | None = None) -> bool:
    """Set the row's fate after attempt number ``attempts``: ``delivered``, ``dead``, or
    ``pending`` again at ``next_attempt_at``. Returns False (and changes nothing) if the
    row moved on meanwhile (its lease ran out and another dispatcher took it)."""
    values: dict[str, Any] = {"status": status, "last_error": error}
    if status == "delivered":
        values.update(delivered_at=at, result=dict(result or {}))
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    done = session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == outbox_id, OutboxRow.attempts == attempts,
               OutboxRow.status == "sending")
        .values(**values)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def renew(session: Session, outbox_id: int, attempts: int, *, until: datetime) -> bool:
    """Extend the lease of a row this dispatcher holds (attempt ``attempts``) to ``until``;
    False when the lease was lost meanwhile (it ran out and another dispatcher took it)."""
    done = session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == outbox_id, OutboxRow.attempts == attempts,
               OutboxRow.status == "sending")
        .values(next_attempt_at=until)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def release(session: Session, outbox_id: int, attempts: int, *, at: datetime) -> bool:
    """Give a leased row back unattempted, due again at ``at``: its attempt is not
    counted (it waited for its rate limit, it was not tried)."""
    done = session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == outbox_id, OutboxRow.attempts == attempts,
               OutboxRow.status == "sending")
        .values(status="pending", attempts=OutboxRow.attempts - 1, next_attempt_at=at)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def was_attempted(session: Session, outbox_id: int) -> bool:
    """Whether any attempt at the row is logged (also before a ``retry`` reset its count)."""
    return session.scalar(
        select(DeliveryAttemptRow.id).where(DeliveryAttemptRow.outbox_id == outbox_id).limit(1)
    ) is not None


def earlier_results(session: Session, lead_id: int | None, notifier: str) -> dict[str, dict[str, Any]]:
    """What this notifier's delivered rows for this lead returned, by action name."""
    if lead_id is None:
        return {}
    rows = session.execute(
        select(OutboxRow.action, OutboxRow.result)
        .where(OutboxRow.lead_id == lead_id, OutboxRow.notifier == notifier,
               OutboxRow.status == "delivered")
        .order_by(OutboxRow.id)
    )
    return {action: dict(result or {}) for action, result in rows}


@dataclass(frozen=True)
class PersonDeliveries:
    """A notifier's rows of one action for the earlier leads of a lead's person (the same
    phone or email): the first still waiting to be sent, and what the delivered ones
    returned, newest lead first."""

    waiting: int | None
    results: tuple[Mapping[str, Any], ...]


def same_person(session: Session, lead_id: int, notifier: str, action: str) -> PersonDeliveries:
    """``notifier``'s ``action`` rows for the leads before ``lead_id`` with its phone or email."""
    lead = session.get(LeadRow, lead_id)
    if lead is None or not (lead.email or lead.phone):
        return PersonDeliveries(None, ())
    person = or_(LeadRow.email == lead.email if lead.email else false(),
                 LeadRow.phone == lead.phone if lead.phone else false())
    rows = session.execute(
        select(OutboxRow.id, OutboxRow.status, OutboxRow.result)
        .join(LeadRow, LeadRow.id == OutboxRow.lead_id)
        .where(person, LeadRow.id < lead_id, OutboxRow.notifier == notifier,
               OutboxRow.action == action)
        .order_by(LeadRow.id.desc(), OutboxRow.id.desc())
    ).all()
    waiting = min((r.id for r in rows if r.status in WAITING), default=None)
    results = tuple(dict(r.result or {}) for r in rows if r.status == "delivered")
    return PersonDeliveries(waiting, results)


def next_due(session: Session) -> datetime | None:
    """When the earliest waiting row is due, or ``None`` when nothing waits."""
    return session.scalar(
        select(func.min(OutboxRow.next_attempt_at)).where(OutboxRow.status.in_(WAITING))
    )


def get(session: Session, outbox_id: int) -> Delivery | None:
    row = session.get(OutboxRow, outbox_id)
    return None if row is None else to_value(row)


def listing(session: Session, *, status: str | Sequence[str] | None = None,
            lead_id: int | None = None, notifier: str | None = None,
            limit: int | None = 100) -> list[Delivery]:
    """Outbox rows, newest first."""
    q = select(OutboxRow).order_by(OutboxRow.id.desc())
    if isinstance(status, str):
        q = q.where(OutboxRow.status == status)
    elif status is not None:
        q = q.where(OutboxRow.status.in_(list(status)))
    if lead_id is not None:
        q = q.where(OutboxRow.lead_id == lead_id)
    if notifier is not None:
        q = q.where(OutboxRow.notifier == notifier)
    if limit is not None:
        q = q.limit(limit)
    return [to_value(r) for r in session.scalars(q)]


def attempts(session: Session, outbox_id: int) -> list[Attempt]:
    rows = session.scalars(
        select(DeliveryAttemptRow).where(DeliveryAttemptRow.outbox_id == outbox_id)
        .order_by(DeliveryAttemptRow.id)
    )
    return [Attempt(r.id, r.outbox_id, r.attempted_at, r.outcome, r.status_code, r.latency_ms,
                    r.response, r.error) for r in rows]


def retry(session: Session, ids: Sequence[int] | None, *, at: datetime, dead: bool = False) -> int:
    """Make dead (or, by id, any undelivered) rows due again at ``at`` with a fresh count
    of attempts; returns how many. ``dead=True`` takes every dead row."""
    q = update(OutboxRow).where(OutboxRow.status.in_(("dead", "pending", "sending")))
    if dead:
        q = q.where(OutboxRow.status == "dead")
    if ids is not None:
        q = q.where(OutboxRow.id.in_(list(ids)))
    elif not dead:
        return 0
    done = session.execute(q.values(status="pending", attempts=0, next_attempt_at=at))
    return int(done.rowcount)  # type: ignore[attr-defined]


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))
    return {status: int(n) for status, n in rows}


def to_value(row: OutboxRow) -> Delivery:
    return Delivery(
        id=row.id, lead_id=row.lead_id, notifier=row.notifier, action=row.action,
        idempotency_key=row.idempotency_key, payload=dict(row.payload or {}), status=row.status,
        attempts=row.attempts, next_attempt_at=row.next_attempt_at, created_at=row.created_at,
        last_error=row.last_error, result=row.result, delivered_at=row.delivered_at,
    )


def first_sent(session: Session, lead_id: int, notifier: str) -> Mapping[str, Any] | None:
    """The payload of ``notifier``'s first row for this lead that was sent or is being
    sent (not merely waiting): what an update of that lead sends again. ``None`` when the
    notifier has not been sent this lead yet — its waiting row will read the lead fresh."""
    row = session.scalars(
        select(OutboxRow).where(OutboxRow.lead_id == lead_id, OutboxRow.notifier == notifier,
                                OutboxRow.status != "pending")
        .order_by(OutboxRow.id).limit(1)
    ).first()
    return None if row is None else dict(row.payload or {})
