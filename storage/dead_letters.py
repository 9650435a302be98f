"""Dead letters: emails no rule could turn into a lead, kept until a replay resolves them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from daemon.lead import DeadLetter, DeadLetterReason, StoredDeadLetter
from storage.models import DeadLetterRow, InboundEmail, utcnow


def insert(
    session: Session, dead: DeadLetter, *, inbound_email_id: int, source_hint: str | None
) -> int:
    row = DeadLetterRow(
        inbound_email_id=inbound_email_id, **_reason(dead, source_hint), status="open"
    )
    session.add(row)
    session.flush()
    return row.id


def open_for_inbound(session: Session, inbound_email_id: int) -> int | None:
    """The id of the open dead letter of this email, if it has one."""
    return session.scalars(
        select(DeadLetterRow.id).where(
            DeadLetterRow.inbound_email_id == inbound_email_id, DeadLetterRow.status == "open"
        )
    ).first()


def get(session: Session, dead_letter_id: int) -> StoredDeadLetter | None:
    row = session.execute(
        select(DeadLetterRow, InboundEmail.message_id, InboundEmail.subject)
        .join(InboundEmail, InboundEmail.id == DeadLetterRow.inbound_email_id)
        .where(DeadLetterRow.id == dead_letter_id)
    ).first()
    return None if row is None else _value(*row)


def listing(
    session: Session,
    *,
    status: str | None = "open",
    source: str | None = None,
    ids: Sequence[int] | None = None,
    limit: int | None = 200,
) -> list[StoredDeadLetter]:
    """Dead letters, newest first; by default only the open ones."""
    q = (
        select(DeadLetterRow, InboundEmail.message_id, InboundEmail.subject)
        .join(InboundEmail, InboundEmail.id == DeadLetterRow.inbound_email_id)
        .order_by(DeadLetterRow.id.desc())
    )
    if status:
        q = q.where(DeadLetterRow.status == status)
    if source:
        q = q.where(DeadLetterRow.source_hint == source)
    if ids is not None:
        q = q.where(DeadLetterRow.id.in_(list(ids)))
    if limit:
        q = q.limit(limit)
    return [_value(*r) for r in session.execute(q)]


def record_replay(
    session: Session,
    dead_letter_id: int,
    *,
    resolved_lead_id: int | None,
    status: str | None = None,
) -> None:
    """Count a replay; ``resolved_lead_id`` (or ``status='ignored'``) closes the dead letter."""
    values: dict[str, object] = {
        "replay_count": DeadLetterRow.replay_count + 1,
        "last_replayed_at": utcnow(),
    }
    if resolved_lead_id is not None:
        values.update(status="resolved", resolved_lead_id=resolved_lead_id, resolved_at=utcnow())
    elif status is not None:
        values.update(status=status, resolved_at=utcnow())
    session.execute(
        update(DeadLetterRow).where(DeadLetterRow.id == dead_letter_id).values(**values)
    )


def update_reason(
    session: Session, dead_letter_id: int, dead: DeadLetter, source_hint: str | None
) -> None:
    """A replay that still fails records the newest reason (the rule may have changed)."""
    session.execute(
        update(DeadLetterRow)
        .where(DeadLetterRow.id == dead_letter_id)
        .values(**_reason(dead, source_hint))
    )


def _reason(dead: DeadLetter, source_hint: str | None) -> dict[str, object]:
    """The columns that say why an email is a dead letter (written again by each replay)."""
    return {
        "reason": dead.reason.value,
        "detail": dead.detail,
        "rule": dead.rule,
        "source_hint": source_hint,
        "fields_found": dict(dead.fields_found),
        "fields_missing": list(dead.fields_missing),
    }


def count_open(session: Session) -> int:
    return session.scalar(select(func.count()).where(DeadLetterRow.status == "open")) or 0


def _value(row: DeadLetterRow, message_id: str | None, subject: str | None) -> StoredDeadLetter:
    return StoredDeadLetter(
        id=row.id,
        inbound_email_id=row.inbound_email_id,
        dead_letter=DeadLetter(
            reason=DeadLetterReason(row.reason),
            detail=row.detail,
            rule=row.rule,
            fields_found=dict(row.fields_found or {}),
            fields_missing=tuple(row.fields_missing or ()),
        ),
        status=row.status,
        created_at=row.created_at,
        source_hint=row.source_hint,
        message_id=message_id,
        subject=subject,
        resolved_lead_id=row.resolved_lead_id,
        replay_count=row.replay_count,
    )
