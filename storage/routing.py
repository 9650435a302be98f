"""Routing state: the round-robin pointer, who has each lead, and the routing history.

The pointer is one row (``round_robin``). ``lock_pointer`` takes its row lock
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises
writers) and ``take_turn`` advances it, both in the caller's transaction — the one that
assigns the lead — so two workers or replicas never give the same turn and a restart
resumes where the last commit left it. The rotation itself (who, in which order, with
weights) is computed by ``daemon/routing/decide.py`` and passed in as a list of names.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import LeadRow, RoundRobinRow, RoutingEventRow

POINTER = "default"


@dataclass(frozen=True)
class Turn:
    """One round-robin turn: the agent, and the position it was taken at."""

    agent: str
    position: int


@dataclass(frozen=True)
class PreviousOwner:
    """The newest earlier lead of the same person that has an agent."""

    lead_id: int
    agent: str
    matched_on: str  # "phone" | "email"


@dataclass(frozen=True)
class RoutingEvent:
    """One line of a lead's routing history."""

    id: int
    lead_id: int
    kind: str
    agent: str | None
    slack_user_id: str | None
    turn: int | None
    detail: str | None
    created_at: datetime


def lock_pointer(session: Session, *, now: datetime) -> int:
    """Lock the round-robin pointer for the rest of the transaction; its position."""
    q = select(RoundRobinRow).where(RoundRobinRow.name == POINTER)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    row = session.scalars(q).first()
    if row is None:  # a database migrated before the pointer was seeded, or emptied by hand
        try:
            with session.begin_nested():
                session.add(RoundRobinRow(name=POINTER, position=0, updated_at=now))
                session.flush()
        except IntegrityError:
            pass
        row = session.scalars(q).one()
    return row.position


def take_turn(session: Session, rotation: Sequence[str], *, now: datetime) -> Turn:
    """Give the next turn of ``rotation`` and advance the pointer, in this transaction.

    ``rotation`` is non-empty: the active agents in turn order, an agent with weight w
    appearing w times.
    """
    if not rotation:
        raise ValueError("take_turn needs at least one agent in the rotation")
    position = lock_pointer(session, now=now)
    agent = rotation[position % len(rotation)]
    session.execute(
        update(RoundRobinRow).where(RoundRobinRow.name == POINTER)
        .values(position=position + 1, last_agent=agent, updated_at=now)
    )
    return Turn(agent, position)


def previous_owner(session: Session, *, phone: str | None, email: str | None,
                   since: datetime, exclude_lead_id: int) -> PreviousOwner | None:
    """The newest lead since ``since`` with the same phone or email that has an agent.

    Stored emails are wholly lower-cased (``normalize_email``; migration 0004 lower-cased
    older rows), so both terms use their column's index. Comparing ``lower(email)``
    instead made the database read every lead in the repeat window, under the routing
    lock: ~20 ms per lead at 60,000 leads in the window, growing with it."""
    conds = []
    if phone:
        conds.append(LeadRow.phone == phone)
    if email:
        conds.append(LeadRow.email == email.lower())
    if not conds:
        return None
    row = session.execute(
        select(LeadRow.id, LeadRow.agent, LeadRow.phone)
        .where(or_(*conds), LeadRow.created_at >= since, LeadRow.id != exclude_lead_id,
               LeadRow.agent.is_not(None))
        .order_by(LeadRow.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    lead_id, agent, row_phone = row
    return PreviousOwner(lead_id, str(agent), "phone" if phone and row_phone == phone else "email")


def assign(session: Session, lead_id: int, agent: str, *, at: datetime,
           repeat_of: int | None = None, only_if_offered: bool = False) -> bool:
    """Give the lead to ``agent``. With ``only_if_offered``, only while it still waits for
    a claim (the timeout's fallback loses to a claim that came first). True if it did."""
    q = update(LeadRow).where(LeadRow.id == lead_id)
    if only_if_offered:
        q = q.where(LeadRow.status == "offered")
    done = session.execute(q.values(status="assigned", agent=agent, assigned_at=at,
                                     repeat_of=repeat_of))
    return bool(done.rowcount)  # type: ignore[attr-defined]


def offer(session: Session, lead_id: int, *, at: datetime, deadline: datetime) -> None:
    """Mark the lead as offered for claiming until ``deadline``."""
    session.execute(update(LeadRow).where(LeadRow.id == lead_id)
                    .values(status="offered", offered_at=at, claim_deadline=deadline))


def set_status(session: Session, lead_id: int, status: str, *, only_if: str | None = None) -> bool:
    q = update(LeadRow).where(LeadRow.id == lead_id)
    if only_if is not None:
        q = q.where(LeadRow.status == only_if)
    return bool(session.execute(q.values(status=status)).rowcount)  # type: ignore[attr-defined]


def claim(session: Session, lead_id: int, agent: str, *, at: datetime) -> bool:
    """The first click wins: one conditional UPDATE, true only for the one that changed
    the row from ``offered``. A second claimer — in this process or another replica —
    finds it claimed and changes nothing."""
    done = session.execute(
        update(LeadRow)
        .where(LeadRow.id == lead_id, LeadRow.status == "offered")
        .values(status="claimed", agent=agent, claimed_by=agent, claimed_at=at, assigned_at=at)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def due_offers(session: Session, *, now: datetime, limit: int = 50) -> list[int]:
    """Leads still offered past their claim deadline, oldest first; locked on PostgreSQL
    (``SKIP LOCKED``: another replica handles the rest)."""
    q = (
        select(LeadRow.id)
        .where(LeadRow.status == "offered", LeadRow.claim_deadline <= now)
        .order_by(LeadRow.claim_deadline, LeadRow.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return list(session.scalars(q))


def record(session: Session, lead_id: int, kind: str, *, at: datetime, agent: str | None = None,
           slack_user_id: str | None = None, turn: int | None = None,
           detail: str | None = None) -> None:
    """Add one line to the lead's routing history."""
    session.add(RoutingEventRow(lead_id=lead_id, kind=kind, agent=agent,
                                slack_user_id=slack_user_id, turn=turn, detail=detail,
                                created_at=at))
    session.flush()


def history(session: Session, lead_id: int | None = None, *, kind: str | None = None) -> list[RoutingEvent]:
    """Routing events, oldest first."""
    q = select(RoutingEventRow).order_by(RoutingEventRow.id)
    if lead_id is not None:
        q = q.where(RoutingEventRow.lead_id == lead_id)
    if kind is not None:
        q = q.where(RoutingEventRow.kind == kind)
    return [RoutingEvent(r.id, r.lead_id, r.kind, r.agent, r.slack_user_id, r.turn, r.detail,
                         r.created_at) for r in session.scalars(q)]


def counts_since(session: Session, since: datetime) -> dict[str | None, dict[str, int]]:
    """Routing events since ``since`` counted per agent (``None`` for drip, unassigned) and kind."""
    rows = session.execute(
        select(RoutingEventRow.agent, RoutingEventRow.kind, func.count())
        .where(RoutingEventRow.created_at >= since)
        .group_by(RoutingEventRow.agent, RoutingEventRow.kind)
    )
    out: dict[str | None, dict[str, int]] = defaultdict(dict)
    for agent, kind, n in rows:
        out[agent][kind] = int(n)
    return dict(out)


def waiting_offers(session: Session) -> int:
    """Leads offered in Slack that nobody has claimed yet (nor timed out to round robin)."""
    return int(session.scalar(select(func.count()).select_from(LeadRow).where(LeadRow.status == "offered"))
               or 0)


def pointer_position(session: Session) -> int:
    return int(session.scalar(
        select(RoundRobinRow.position).where(RoundRobinRow.name == POINTER)
    ) or 0)
