"""SQLAlchemy models. Rows never leave ``storage/``; the rest of the code sees values.

The schema itself is owned by the Alembic migrations in ``storage/migrations``; these
models must agree with them (``tests/test_storage.py`` checks that they do).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every backend (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


_Row = TypeVar("_Row", bound=Base)


def insert_or_find(session: Session, row: _Row, find: Callable[[], _Row | None]) -> tuple[_Row, bool]:
    """Insert ``row`` in a savepoint: ``(row, True)``. When a unique constraint refuses it
    (another process stored the same row between the caller's look-up and this insert),
    the row ``find`` reads instead: ``(found, False)``; the ``IntegrityError`` again if
    ``find`` finds none. The caller's transaction goes on either way."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        found = find()
        if found is None:
            raise
        return found, False
    return row, True


def lease(session: Session, query: Select[_Row], lease_until: datetime) -> list[_Row]:
    """The due rows ``query`` selects, leased: ``sending`` until ``lease_until``, with
    ``attempts`` already counting this attempt. On PostgreSQL ``FOR UPDATE SKIP LOCKED``
    keeps two workers (replicas, threads) off the same row while they lease it."""
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.scalars(query))
    for row in rows:
        row.status = "sending"  # type: ignore[attr-defined]
        row.attempts += 1  # type: ignore[attr-defined]
        row.next_attempt_at = lease_until  # type: ignore[attr-defined]
    session.flush()
    return rows


class InboundEmail(Base):
    """One email (or webhook body) exactly as received; committed before anything else."""

    __tablename__ = "inbound_emails"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid"),
        UniqueConstraint("dedup_key"),
        Index("ix_inbound_emails_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    origin: Mapped[str] = mapped_column(String(16))
    mailbox: Mapped[str | None] = mapped_column(String(200))
    folder: Mapped[str | None] = mapped_column(String(500))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    path: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    subject: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64))
    dedup_key: Mapped[str] = mapped_column(String(80))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # pending → done | ignored | dead | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    ignored_reason: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LeadRow(Base):
    __tablename__ = "leads"
    __table_args__ = (Index("ix_leads_status_claim_deadline", "status", "claim_deadline"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inbound_email_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_emails.id"), unique=True
    )
    source: Mapped[str] = mapped_column(String(100), index=True)
    rule_version: Mapped[str] = mapped_column(String(50))
    message_id: Mapped[str | None] = mapped_column(String(998))
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    full_name: Mapped[str | None] = mapped_column(String(300))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    property_address: Mapped[str | None] = mapped_column(Text)
    property_city: Mapped[str | None] = mapped_column(String(200))
    property_state: Mapped[str | None] = mapped_column(String(50))
    property_postal_code: Mapped[str | None] = mapped_column(String(20))
    property_price: Mapped[float | None] = mapped_column(Float)
    property_mls_id: Mapped[str | None] = mapped_column(String(100))
    property_url: Mapped[str | None] = mapped_column(Text)
    # the offline address check (0008): verified true/false/NULL, why, the USPS street
    property_address_verified: Mapped[bool | None] = mapped_column(Boolean)
    property_address_check: Mapped[str | None] = mapped_column(Text)
    property_address_usps: Mapped[str | None] = mapped_column(Text)
    budget_min: Mapped[float | None] = mapped_column(Float)
    budget_max: Mapped[float | None] = mapped_column(Float)
    intent: Mapped[str | None] = mapped_column(String(10))
    # what the inquiry reader found (0010): Inquiry.to_json() plus its evidence; NULL before it
    inquiry: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(Text)
    score: Mapped[int] = mapped_column(Integer, default=0)
    tier: Mapped[str] = mapped_column(String(10))
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    score_breakdown: Mapped[list[list[Any]]] = mapped_column(JSON, default=list)
    # new (not routed) → assigned | offered (hot, waiting for a claim) → claimed | assigned
    # (claim timed out), or drip (low tier), or unassigned (no active agent)
    status: Mapped[str] = mapped_column(String(16), default="new")
    agent: Mapped[str | None] = mapped_column(String(200))
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # routing (0002)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: the earlier lead of the same person whose agent this repeat inquiry kept
    repeat_of: Mapped[int | None] = mapped_column(Integer)
    # the geocoder's answer (0007), inline or later; NULL until then
    property_latitude: Mapped[float | None] = mapped_column(Float)
    property_longitude: Mapped[float | None] = mapped_column(Float)
    property_county: Mapped[str | None] = mapped_column(String(200), index=True)
    property_geocode_quality: Mapped[str | None] = mapped_column(String(50))
    property_geocoder: Mapped[str | None] = mapped_column(String(50))
    # lead flows (0009): the flow and team that routed it, when its agent accepted it, and
    # when it moves on unaccepted (NULL: no deadline)
    flow: Mapped[str | None] = mapped_column(String(100))
    team: Mapped[str | None] = mapped_column(String(100))
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accept_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # the enrichment provider's answer about the person (0011): Enrichment.to_json(); NULL
    # until it answered with a match, or with no provider
    enrichment: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DeadLetterRow(Base):
    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_status_source", "status", "source_hint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inbound_email_id: Mapped[int] = mapped_column(ForeignKey("inbound_emails.id"), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    rule: Mapped[str | None] = mapped_column(String(200))
    source_hint: Mapped[str | None] = mapped_column(String(100))
    fields_found: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    fields_missing: Mapped[list[str]] = mapped_column(JSON, default=list)
    # open → resolved (replayed into a lead) | ignored (replay found it is not a lead)
    status: Mapped[str] = mapped_column(String(16), default="open")
    resolved_lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"))
    replay_count: Mapped[int] = mapped_column(Integer, default=0)
    last_replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxRow(Base):
    """One outbound effect (a Slack post, a CRM call), written before it is attempted."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    notifier: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(300))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # pending → delivered | dead
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeliveryAttemptRow(Base):
    """The log of every attempt at an outbox row."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    response: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class RoundRobinRow(Base):
    """Where the round robin is up to: ``position`` counts the turns ever given.

    Locked (``SELECT … FOR UPDATE``) and advanced in the transaction that assigns the lead,
    so two workers never give the same turn, and a restart resumes where it left off.
    """

    __tablename__ = "round_robin"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    last_agent: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RoutingEventRow(Base):
    """The history of who got each lead: every assignment, offer, claim, timeout, repeat."""

    __tablename__ = "routing_events"
    __table_args__ = (Index("ix_routing_events_kind_created_at", "kind", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    # assigned | offered | claimed | claim_lost | timeout | repeat | drip | unassigned |
    # pond | accepted | missed (not accepted in time) | reassigned (the next agent got it)
    kind: Mapped[str] = mapped_column(String(16))
    agent: Mapped[str | None] = mapped_column(String(200))
    slack_user_id: Mapped[str | None] = mapped_column(String(50))
    #: the round-robin position taken (``round_robin.position`` before the turn)
    turn: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the flow behind this step (0009); NULL: the default flow, or before 0009
    flow: Mapped[str | None] = mapped_column(String(100))


class AgentAwayRow(Base):
    """An agent set away (``leadpipe agents away``, 0009): skipped by round robin and claims
    until ``until``. ``leadpipe agents back`` deletes the row."""

    __tablename__ = "agent_away"

    agent: Mapped[str] = mapped_column(String(200), primary_key=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)
    set_by: Mapped[str | None] = mapped_column(String(200))


class MailboxStateRow(Base):
    """Where each watched mailbox folder is up to, and when it was last reached."""

    __tablename__ = "mailbox_state"
    __table_args__ = (UniqueConstraint("mailbox", "folder"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(200))
    folder: Mapped[str] = mapped_column(String(500))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    down_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AuditRow(Base):
    """One action taken in the admin pages (login, logout, replay, retry): who, when, what."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    #: the signed-in user; for a failed login, the name that was typed
    actor: Mapped[str] = mapped_column(String(200))
    # login | login_failed | login_blocked | logout | replay | retry
    action: Mapped[str] = mapped_column(String(32))
    #: what it was done to, e.g. "dead_letter:12" or "delivery:7"
    target: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(64))


class HeartbeatRow(Base):
    """One running (or once-running) daemon: who it is and when it last said it was alive."""

    __tablename__ = "heartbeats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: set by a clean stop; a daemon that died leaves it empty and its beat grows old
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SlackSignatureRow(Base):
    """A Slack request signature already accepted, kept until its timestamp is too old to
    pass the 5-minute check anyway; a second request with it is a replay (shared by every
    replica on the database, and kept across restarts)."""

    __tablename__ = "slack_signatures"

    #: ``v0=`` and 64 hex digits, as Slack sent it
    signature: Mapped[str] = mapped_column(String(100), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: the request's own timestamp plus the 5 minutes: after this the row can go
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class GeocodeRow(Base):
    """One provider's answer about one normalized address (0007), so the same address is
    never asked twice of it. ``found`` false is an answer too: the provider had no match."""

    __tablename__ = "geocodes"
    __table_args__ = (UniqueConstraint("provider", "address_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(50))
    #: the address as asked, normalized (``storage.geocodes.address_key``)
    address_key: Mapped[str] = mapped_column(String(500))
    found: Mapped[bool] = mapped_column(Boolean)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    county: Mapped[str | None] = mapped_column(String(200))
    quality: Mapped[str | None] = mapped_column(String(50))
    matched_address: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EnrichmentRow(Base):
    """One enrichment provider's answer about one person (0011), so the same email is never
    asked twice of it. ``email_key`` is a hash of the normalized email, not the email: the
    cache keeps no contact value. ``found`` false is an answer too: no match."""

    __tablename__ = "enrichments"
    __table_args__ = (UniqueConstraint("provider", "email_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(50))
    #: ``daemon.providers.base.email_key``: sha256 of the case-folded email, hex
    email_key: Mapped[str] = mapped_column(String(64))
    found: Mapped[bool] = mapped_column(Boolean)
    company: Mapped[str | None] = mapped_column(String(300))
    title: Mapped[str | None] = mapped_column(String(300))
    #: ``[[network, url], …]``
    profiles: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    likelihood: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProviderUsageRow(Base):
    """Calls made to one provider on one UTC day (0007): the daily quota, shared by every
    replica and kept across restarts. ``alerted_at``: the tech channel heard the quota was
    nearly used up (once a day)."""

    __tablename__ = "provider_usage"

    provider: Mapped[str] = mapped_column(String(50), primary_key=True)
    #: ``YYYY-MM-DD``, UTC
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProviderJobRow(Base):
    """A question to a provider not answered inline (0007): it was slow, rate-limited, over
    its quota or down, so the lead was routed without it and this row asks again later.
    Like an outbox row: leased while in flight, retried with backoff (``Retry-After`` wins)."""

    __tablename__ = "provider_jobs"
    __table_args__ = (
        UniqueConstraint("lead_id", "kind"),
        Index("ix_provider_jobs_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    #: what is asked: ``geocode`` or ``enrichment``
    kind: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(50))
    # pending → sending (leased) → done | dead
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
