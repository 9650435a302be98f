"""The audit log: every action taken in the admin pages, with who did it and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import AuditRow


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: str | None
    ip: str | None


def record(session: Session, *, at: datetime, actor: str, action: str,
           target: str | None = None, detail: str | None = None, ip: str | None = None) -> int:
    """Add one entry; its id."""
    row = AuditRow(at=at, actor=actor[:200], action=action[:32], target=target,
                   detail=detail[:4000] if detail else detail, ip=ip[:64] if ip else ip)
    session.add(row)
    session.flush()
    return row.id


def recent(session: Session, *, limit: int = 100, offset: int = 0,
           actor: str | None = None, action: str | None = None) -> list[AuditEntry]:
    """Entries, newest first."""
    q = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit).offset(offset)
    if actor:
        q = q.where(AuditRow.actor == actor)
    if action:
        q = q.where(AuditRow.action == action)
    return [AuditEntry(r.id, r.at, r.actor, r.action, r.target, r.detail, r.ip)
            for r in session.scalars(q)]


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditRow)) or 0)
