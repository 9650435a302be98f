"""Routing state: the round-robin pointer, who has each lead, and the routing history.

Each pointer is one row (``round_robin``): ``default`` for the office's rotation, and
``team:<name>`` for each team's own. ``lock_pointer`` takes its row lock
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises
writers) and ``take_turn`` advances it, both in the caller's transaction — the one that
assigns the lead — so two workers or replicas never give the same turn and a restart
resumes where the last commit left it. The rotation itself (who, in which order, with
weights) is computed by ``daemon/routing/decide.py`` and passed in as a list of names, with
the names to skip (away, off hours): a skipped turn is passed over, not given later, and
the pointer moves past the turn actually given.

Routing also locks the ``default`` row first for every lead, whichever team it goes to:
that serialises routing, so a person's second inquiry sees the first one's agent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import AgentAwayRow, LeadRow, RoundRobinRow, RoutingEventRow

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
    flow: str | None = None


@dataclass(frozen=True)
class LeadRouting:
    """Where one stored lead stands in routing: its flow, team, agent and deadlines."""

    lead_id: int
    status: str
    agent: str | None
    flow: str | None
    team: str | None
    created_at: datetime
    assigned_at: datetime | None
    offered_at: datetime | None
    accepted_at: datetime | None
    accept_deadline: datetime | None


def lock_pointer(session: Session, *, now: datetime, name: str = POINTER) -> int:
    """Lock the round-robin pointer ``name`` for the rest of the transaction (created at 0
    the first time a team's is used); its position."""
    q = select(RoundRobinRow).where(RoundRobinRow.name == name)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    row = session.scalars(q).first()
    if row is None:  # a new team's pointer, or the default one emptied by hand
        try:
            with session.begin_nested():
                session.add(RoundRobinRow(name=name, position=0, updated_at=now))
                session.flush()
        except IntegrityError:
            pass
        row = session.scalars(q).one()
    return row.position


def take_turn(session: Session, rotation: Sequence[str], *, now: datetime, name: str = POINTER,
              skip: frozenset[str] = frozenset()) -> Turn:
    """Give the next turn of ``rotation`` that is not in ``skip`` and advance the pointer
    ``name`` past it, in this transaction.

    ``rotation`` is non-empty: the active agents in turn order, an agent with weight w
    appearing w times; at least one of them is not in ``skip``.
    """
    if not rotation or all(a in skip for a in rotation):
        raise ValueError("take_turn needs at least one agent in the rotation to give a turn to")
    position = lock_pointer(session, now=now, name=name)
    while rotation[position % len(rotation)] in skip:
        position += 1
    agent = rotation[position % len(rotation)]
    session.execute(
        update(RoundRobinRow).where(RoundRobinRow.name == name)
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
           repeat_of: int | None = None, only_if_offered: bool = False,
           accept_by: datetime | None = None, **where: str | None) -> bool:
    """Give the lead to ``agent``, to be accepted by ``accept_by`` (None: no deadline).
    With ``only_if_offered``, only while it still waits for a claim (the timeout's fallback
    loses to a claim that came first). ``where`` may set ``flow`` and ``team``. True if it did."""
    q = update(LeadRow).where(LeadRow.id == lead_id)
    if only_if_offered:
        q = q.where(LeadRow.status == "offered")
    done = session.execute(q.values(status="assigned", agent=agent, assigned_at=at,
                                     repeat_of=repeat_of, accept_deadline=accept_by,
                                     accepted_at=None, **_placed(where)))
    return bool(done.rowcount)  # type: ignore[attr-defined]


def _placed(where: dict[str, str | None]) -> dict[str, str | None]:
    unknown = set(where) - {"flow", "team"}
    if unknown:
        raise TypeError(f"unknown lead routing columns: {sorted(unknown)}")
    return where


def offer(session: Session, lead_id: int, *, at: datetime, deadline: datetime | None,
          status: str = "offered", **where: str | None) -> None:
    """Mark the lead as offered for claiming until ``deadline`` (status ``offered``), or put
    it in the pond (status ``pond``, no deadline: claimable until someone does)."""
    session.execute(update(LeadRow).where(LeadRow.id == lead_id)
                    .values(status=status, offered_at=at, claim_deadline=deadline, **_placed(where)))


def set_status(session: Session, lead_id: int, status: str, *, only_if: str | None = None,
               **where: str | None) -> bool:
    q = update(LeadRow).where(LeadRow.id == lead_id)
    if only_if is not None:
        q = q.where(LeadRow.status == only_if)
    return bool(session.execute(q.values(status=status, **_placed(where))).rowcount)  # type: ignore[attr-defined]


def claim(session: Session, lead_id: int, agent: str, *, at: datetime) -> bool:
    """The first click wins: one conditional UPDATE, true only for the one that changed
    the row from ``offered`` (or ``pond``). A second claimer — in this process or another
    replica — finds it claimed and changes nothing. Claiming is accepting: the claimer
    clicked, so ``accepted_at`` is the claim's time."""
    done = session.execute(
        update(LeadRow)
        .where(LeadRow.id == lead_id, LeadRow.status.in_(("offered", "pond")))
        .values(status="claimed", agent=agent, claimed_by=agent, claimed_at=at, assigned_at=at,
                accepted_at=at, accept_deadline=None)
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
           detail: str | None = None, flow: str | None = None) -> None:
    """Add one line to the lead's routing history."""
    session.add(RoutingEventRow(lead_id=lead_id, kind=kind, agent=agent,
                                slack_user_id=slack_user_id, turn=turn, detail=detail,
                                created_at=at, flow=flow))
    session.flush()


def history(session: Session, lead_id: int | None = None, *, kind: str | None = None) -> list[RoutingEvent]:
    """Routing events, oldest first."""
    q = select(RoutingEventRow).order_by(RoutingEventRow.id)
    if lead_id is not None:
        q = q.where(RoutingEventRow.lead_id == lead_id)
    if kind is not None:
        q = q.where(RoutingEventRow.kind == kind)
    return [RoutingEvent(r.id, r.lead_id, r.kind, r.agent, r.slack_user_id, r.turn, r.detail,
                         r.created_at, r.flow) for r in session.scalars(q)]


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


def pointer_position(session: Session, name: str = POINTER) -> int:
    return int(session.scalar(
        select(RoundRobinRow.position).where(RoundRobinRow.name == name)
    ) or 0)


# -- where a lead stands, accepting, deadlines -----------------------------------------------


def lead_routing(session: Session, lead_id: int, *, lock: bool = False) -> LeadRouting | None:
    """The routing state of one lead; ``lock``: its row locked (PostgreSQL) for this transaction."""
    q = select(LeadRow).where(LeadRow.id == lead_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    r = session.scalars(q).first()
    if r is None:
        return None
    return LeadRouting(r.id, r.status, r.agent, r.flow, r.team, r.created_at, r.assigned_at,
                       r.offered_at, r.accepted_at, r.accept_deadline)


def accept(session: Session, lead_id: int, agent: str, *, at: datetime) -> bool:
    """The agent who has the lead accepted it: one conditional UPDATE, true only for the
    first Accept of the agent who holds it now (a second click, or a click by the agent it
    was taken from, changes nothing)."""
    done = session.execute(
        update(LeadRow)
        .where(LeadRow.id == lead_id, LeadRow.agent == agent, LeadRow.accepted_at.is_(None),
               LeadRow.status.in_(("assigned", "claimed")))
        .values(accepted_at=at, accept_deadline=None)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def due_accepts(session: Session, *, now: datetime, limit: int = 50) -> list[int]:
    """Assigned leads nobody accepted by their deadline, oldest first; locked on PostgreSQL
    (``SKIP LOCKED``: another replica handles the rest)."""
    q = (
        select(LeadRow.id)
        .where(LeadRow.status == "assigned", LeadRow.accepted_at.is_(None),
               LeadRow.accept_deadline <= now)
        .order_by(LeadRow.accept_deadline, LeadRow.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return list(session.scalars(q))


def move(session: Session, lead_id: int, *, from_agent: str, to_agent: str, at: datetime,
         deadline: datetime | None, was_due: datetime) -> bool:
    """Move an unaccepted lead from ``from_agent`` to ``to_agent``; only while it is still
    theirs, unaccepted, with the deadline ``was_due`` (so a deadline is acted on once)."""
    done = session.execute(
        update(LeadRow)
        .where(LeadRow.id == lead_id, LeadRow.agent == from_agent, LeadRow.accepted_at.is_(None),
               LeadRow.status == "assigned", LeadRow.accept_deadline == was_due)
        .values(agent=to_agent, assigned_at=at, accept_deadline=deadline)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def clear_deadline(session: Session, lead_id: int) -> None:
    session.execute(update(LeadRow).where(LeadRow.id == lead_id).values(accept_deadline=None))


def misses_since(session: Session, agent: str, since: datetime) -> int:
    """How many leads ``agent`` let pass their deadline since ``since``."""
    return int(session.scalar(
        select(func.count()).select_from(RoutingEventRow)
        .where(RoutingEventRow.kind == "missed", RoutingEventRow.agent == agent,
               RoutingEventRow.created_at >= since)) or 0)


def moves_of(session: Session, lead_id: int) -> int:
    """How many times the lead was moved on for want of an Accept."""
    return int(session.scalar(
        select(func.count()).select_from(RoutingEventRow)
        .where(RoutingEventRow.kind == "reassigned", RoutingEventRow.lead_id == lead_id)) or 0)


# -- agents set away ------------------------------------------------------------------


def set_away(session: Session, agent: str, *, until: datetime, at: datetime,
             by: str | None = None) -> None:
    """``agent`` is away until ``until`` (replacing an earlier setting)."""
    row = session.get(AgentAwayRow, agent)
    if row is None:
        session.add(AgentAwayRow(agent=agent, until=until, set_at=at, set_by=by))
    else:
        row.until, row.set_at, row.set_by = until, at, by
    session.flush()


def clear_away(session: Session, agent: str) -> bool:
    """``agent`` is back; true if they were set away."""
    row = session.get(AgentAwayRow, agent)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def away(session: Session, *, now: datetime) -> dict[str, datetime]:
    """The agents set away at ``now``, with until when."""
    return {r.agent: r.until for r in session.scalars(
        select(AgentAwayRow).where(AgentAwayRow.until > now))}
