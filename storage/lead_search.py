"""Finding leads for the admin pages: filters, a search box, and the values to filter by.

The search terms arrive already interpreted (``daemon/web/admin/search.py`` turns what was
typed into a name fragment, an E.164 phone, a run of digits and an id); this module only
turns them into one query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from daemon.lead import StoredLead
from storage.leads import to_value
from storage.models import LeadRow


@dataclass(frozen=True)
class LeadFilter:
    """What the leads page asks for; every part optional (``None``: no condition)."""

    source: str | None = None
    tier: str | None = None
    agent: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: a fragment of the name or the email, case-insensitive
    text: str | None = None
    #: an E.164 phone: equal
    phone: str | None = None
    #: a run of digits the stored phone contains (part of a number typed)
    digits: str | None = None
    #: the lead's id
    lead_id: int | None = None


def find(session: Session, f: LeadFilter, *, limit: int = 50, offset: int = 0) -> list[StoredLead]:
    """Leads matching every filter and any of the search terms, newest first."""
    q = select(LeadRow).order_by(LeadRow.id.desc()).limit(limit).offset(offset)
    for cond in _conditions(f):
        q = q.where(cond)
    return [to_value(r) for r in session.scalars(q)]


def count(session: Session, f: LeadFilter) -> int:
    q = select(func.count()).select_from(LeadRow)
    for cond in _conditions(f):
        q = q.where(cond)
    return int(session.scalar(q) or 0)


def _conditions(f: LeadFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if f.source:
        conds.append(LeadRow.source == f.source)
    if f.tier:
        conds.append(LeadRow.tier == f.tier)
    if f.agent:
        conds.append(LeadRow.agent == f.agent)
    if f.status:
        conds.append(LeadRow.status == f.status)
    if f.since:
        conds.append(LeadRow.created_at >= f.since)
    if f.until:
        conds.append(LeadRow.created_at < f.until)
    terms: list[ColumnElement[bool]] = []
    if f.text:
        pattern = "%" + _escape_like(f.text.lower()) + "%"
        terms.append(func.lower(LeadRow.full_name).like(pattern, escape="\\"))
        terms.append(func.lower(LeadRow.email).like(pattern, escape="\\"))
    if f.phone:
        terms.append(LeadRow.phone == f.phone)
    if f.digits:
        terms.append(LeadRow.phone.like("%" + f.digits + "%"))
    if f.lead_id is not None:
        terms.append(LeadRow.id == f.lead_id)
    if terms:
        conds.append(or_(*terms))
    return conds


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class Facets:
    """The values present in the leads table, for the filter menus."""

    sources: Sequence[str]
    agents: Sequence[str]
    statuses: Sequence[str]


def facets(session: Session) -> Facets:
    def values(column: Any) -> list[str]:
        rows = session.scalars(select(column).distinct().where(column.is_not(None)).order_by(column))
        return [str(v) for v in rows]

    return Facets(values(LeadRow.source), values(LeadRow.agent), values(LeadRow.status))
