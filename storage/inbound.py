"""Inbound emails: store the raw bytes first, then hand them to the pipeline in order."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from daemon.lead import Origin, RawEmail
from storage.models import InboundEmail, insert_or_find, utcnow


@dataclass(frozen=True)
class Stored:
    """The result of storing an email: its row id, and whether it was new."""

    id: int
    created: bool
    status: str


@dataclass(frozen=True)
class InboundHeaders:
    """The few header values stored beside the raw bytes, for listing and dedup."""

    message_id: str | None
    subject: str | None
    sender: str | None


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dedup_key(data: bytes, message_id: str | None) -> str:
    """The same email fetched twice (another UID, another folder, a replayed file) has the
    same key. A Message-ID alone is not trusted: the body must match too, so a provider
    that reuses Message-IDs cannot make us drop a different lead."""
    if not message_id:
        return "sha:" + content_hash(data)
    sep = data.find(b"\r\n\r\n")
    sep = data.find(b"\n\n") if sep < 0 else sep
    body = data[sep:] if sep >= 0 else data
    return (
        "mid:"
        + hashlib.sha256(message_id.strip().encode("utf-8", "replace") + b"\0" + body).hexdigest()
    )


def store(session: Session, raw: RawEmail, headers: InboundHeaders, *,
          key: str | None = None) -> Stored:
    """Insert ``raw`` unless it is already stored (same UID, or same ``dedup_key``).

    ``key`` overrides the dedup key computed from the bytes (a webhook's provider event
    id). Runs in a savepoint, so a duplicate does not spoil the caller's transaction.
    """
    key = key or dedup_key(raw.data, headers.message_id)
    existing = _find(session, raw, key)
    if existing is not None:
        return Stored(existing.id, False, existing.status)
    row = InboundEmail(
        origin=raw.origin.value,
        mailbox=raw.mailbox,
        folder=raw.folder,
        uidvalidity=raw.uidvalidity,
        uid=raw.uid,
        path=raw.path,
        message_id=_clip(headers.message_id, 998),
        subject=headers.subject,
        sender=_clip(headers.sender, 500),
        content_hash=content_hash(raw.data),
        dedup_key=key,
        raw=raw.data,
        size=len(raw.data),
        received_at=raw.received_at,
        status="pending",
    )
    # another worker may store the same email between our look-up and our insert
    stored, created = insert_or_find(session, row, lambda: _find(session, raw, key))
    return Stored(stored.id, created, stored.status)


def _find(session: Session, raw: RawEmail, key: str) -> InboundEmail | None:
    row = session.scalars(select(InboundEmail).where(InboundEmail.dedup_key == key)).first()
    if row is None and raw.uid is not None:
        row = session.scalars(
            select(InboundEmail).where(
                InboundEmail.mailbox == raw.mailbox,
                InboundEmail.uidvalidity == raw.uidvalidity,
                InboundEmail.uid == raw.uid,
            )
        ).first()
    return row


def _clip(value: str | None, n: int) -> str | None:
    return value[:n] if value else value


def claim_pending(session: Session, limit: int = 50) -> list[int]:
    """Ids of emails waiting for the pipeline, oldest first.

    On PostgreSQL the rows stay locked (``FOR UPDATE SKIP LOCKED``) until the caller's
    transaction ends, so replicas never process the same email at once.
    """
    q = (
        select(InboundEmail.id)
        .where(InboundEmail.status == "pending")
        .order_by(InboundEmail.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return list(session.scalars(q))


def lock_one(session: Session, inbound_id: int) -> RawEmail | None:
    """Lock one pending email for processing and return it; ``None`` if it is taken or done."""
    q = select(InboundEmail).where(InboundEmail.id == inbound_id, InboundEmail.status == "pending")
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    row = session.scalars(q).first()
    return None if row is None else _raw(row)


def get_raw(session: Session, inbound_id: int) -> RawEmail | None:
    row = session.get(InboundEmail, inbound_id)
    return None if row is None else _raw(row)


def _raw(row: InboundEmail) -> RawEmail:
    return RawEmail(
        data=row.raw,
        origin=Origin(row.origin),
        received_at=row.received_at,
        mailbox=row.mailbox,
        folder=row.folder,
        uidvalidity=row.uidvalidity,
        uid=row.uid,
        path=row.path,
    )


def mark(
    session: Session,
    inbound_id: int,
    status: str,
    *,
    ignored_reason: str | None = None,
    at: datetime | None = None,
) -> None:
    """Record the pipeline's verdict: ``done`` (a lead), ``dead``, ``ignored`` or ``failed``."""
    session.execute(
        update(InboundEmail)
        .where(InboundEmail.id == inbound_id)
        .values(
            status=status,
            ignored_reason=ignored_reason,
            processed_at=at or utcnow(),
            attempts=InboundEmail.attempts + 1,
        )
    )


def count_by_status(session: Session) -> dict[str, int]:
    from sqlalchemy import func

    rows = session.execute(select(InboundEmail.status, func.count()).group_by(InboundEmail.status))
    return {status: n for status, n in rows}


def status_of(session: Session, inbound_id: int) -> str | None:
    """The pipeline status of one stored row (``pending``, ``done``, …), or ``None``."""
    return session.scalar(select(InboundEmail.status).where(InboundEmail.id == inbound_id))


def oldest_pending_since(session: Session) -> datetime | None:
    """When the longest-waiting pending email was stored, or ``None`` when none waits
    (``GET /readyz``: a worker that stopped taking emails leaves this growing old)."""
    return session.scalar(
        select(InboundEmail.created_at).where(InboundEmail.status == "pending")
        .order_by(InboundEmail.id).limit(1)
    )
