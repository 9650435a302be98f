"""Heartbeats: each running daemon's row, refreshed every few seconds.

``GET /readyz`` and ``leadpipe status`` read them to tell a running daemon from one that
stopped (``stopped_at`` set) or died or hangs (its ``beat_at`` grows old).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from storage.models import HeartbeatRow


@dataclass(frozen=True)
class Heartbeat:
    """One daemon as its heartbeat row tells it."""

    id: int
    host: str
    pid: int
    version: str
    started_at: datetime
    beat_at: datetime
    stopped_at: datetime | None


def start(session: Session, *, host: str, pid: int, version: str, at: datetime) -> int:
    """A new row for a daemon starting now; returns its id."""
    row = HeartbeatRow(host=host[:255], pid=pid, version=version[:64], started_at=at, beat_at=at)
    session.add(row)
    session.flush()
    return row.id


def beat(session: Session, heartbeat_id: int, *, at: datetime) -> bool:
    """Refresh ``beat_at``; False when the row is gone (pruned, or a database swapped under
    the daemon), so the caller can start a new one."""
    done = session.execute(
        update(HeartbeatRow).where(HeartbeatRow.id == heartbeat_id).values(beat_at=at, stopped_at=None)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def stop(session: Session, heartbeat_id: int, *, at: datetime) -> None:
    session.execute(
        update(HeartbeatRow).where(HeartbeatRow.id == heartbeat_id).values(beat_at=at, stopped_at=at)
    )


def since(session: Session, when: datetime) -> list[Heartbeat]:
    """The daemons that beat (or stopped) at or after ``when``, the newest beat first."""
    rows = session.scalars(
        select(HeartbeatRow).where(HeartbeatRow.beat_at >= when)
        .order_by(HeartbeatRow.beat_at.desc(), HeartbeatRow.id.desc())
    )
    return [Heartbeat(r.id, r.host, r.pid, r.version, r.started_at, r.beat_at, r.stopped_at)
            for r in rows]


def latest(session: Session) -> Heartbeat | None:
    """The row with the newest beat, however old."""
    r = session.scalars(select(HeartbeatRow).order_by(HeartbeatRow.beat_at.desc()).limit(1)).first()
    return None if r is None else Heartbeat(r.id, r.host, r.pid, r.version, r.started_at, r.beat_at,
                                            r.stopped_at)


def prune(session: Session, before: datetime) -> int:
    """Forget daemons whose last beat is older than ``before``; returns how many."""
    done = session.execute(delete(HeartbeatRow).where(
        or_(HeartbeatRow.beat_at < before, HeartbeatRow.stopped_at < before)))
    return int(done.rowcount)  # type: ignore[attr-defined]
