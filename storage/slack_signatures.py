"""Slack request signatures already accepted: what makes a replay a replay.

``remember`` is called for every request whose signature and timestamp are good, before
it is acted on. The signature is the primary key, so of two requests with the same bytes
exactly one insert succeeds — on one replica or on two sharing the database (on
PostgreSQL the second insert waits for the first's commit, then fails), and before or
after a restart. Rows past their ``expires_at`` are deleted on the way.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import SlackSignatureRow


def remember(session: Session, signature: str, *, at: datetime, expires_at: datetime) -> bool:
    """Record ``signature`` as seen at ``at``, kept until ``expires_at``; False when it was
    recorded before and has not expired (a replay). Prunes expired rows first."""
    prune(session, now=at)
    try:
        with session.begin_nested():
            session.add(SlackSignatureRow(signature=signature, seen_at=at, expires_at=expires_at))
            session.flush()
    except IntegrityError:
        return False
    return True


def prune(session: Session, *, now: datetime) -> int:
    """Delete the rows that expired before ``now``; returns how many."""
    done = session.execute(delete(SlackSignatureRow).where(SlackSignatureRow.expires_at < now))
    return int(done.rowcount)  # type: ignore[attr-defined]


def count(session: Session) -> int:
    """How many signatures are kept."""
    return int(session.scalar(select(func.count()).select_from(SlackSignatureRow)) or 0)
