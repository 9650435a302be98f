"""The leads list (filters and search) and one lead's page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from daemon.lead import TIERS
from daemon.web.admin.search import with_query
from daemon.web.admin.site import Admin, email_of, found
from storage import lead_search, leads, outbox, routing
from storage.lead_search import LeadFilter

PER_PAGE = 50


def routes(admin: Admin) -> APIRouter:
    r = APIRouter()

    @r.get("/leads")
    def lead_list(request: Request, q: str = "", source: str = "", tier: str = "",
                  agent: str = "", status: str = "", since: str = "", until: str = "",
                  page: int = 1) -> Response:
        session = admin.viewer(request)
        page = max(page, 1)
        start, end = _day(since), _day(until)
        f = LeadFilter(source=source or None, tier=tier or None, agent=agent or None,
                       status=status or None, since=start,
                       until=end + timedelta(days=1) if end else None)
        f = with_query(f, q, admin.settings.default_region)
        with admin.db.session() as s:
            found = lead_search.find(s, f, limit=PER_PAGE + 1, offset=(page - 1) * PER_PAGE)
            total = lead_search.count(s, f)
            facets = lead_search.facets(s)
        args = {"q": q, "source": source, "tier": tier, "agent": agent, "status": status,
                "since": since, "until": until}
        return admin.page("leads.html", session, nav="leads", leads=found[:PER_PAGE],
                          more=len(found) > PER_PAGE, page=page, total=total, facets=facets,
                          tiers=TIERS, args=args,
                          bad_date=bool((since and start is None) or (until and end is None)))

    @r.get("/leads/{lead_id}")
    def lead_page(request: Request, lead_id: int) -> Response:
        session = admin.viewer(request)
        with admin.db.session() as s:
            lead = found(leads.get(s, lead_id), f"lead #{lead_id}")
            events = routing.history(s, lead_id)
            deliveries = outbox.listing(s, lead_id=lead_id, limit=None)
            attempts = {d.id: outbox.attempts(s, d.id) for d in deliveries}
            email = email_of(s, lead.inbound_email_id)
        return admin.page("lead.html", session, nav="leads", row=lead, lead=lead.lead,
                          events=events, deliveries=sorted(deliveries, key=lambda d: d.id),
                          attempts=attempts, email=email)

    return r


def _day(text: str) -> datetime | None:
    """``YYYY-MM-DD`` as the start of that UTC day; ``None`` when empty or not a date."""
    try:
        d = date.fromisoformat(text.strip())
    except ValueError:
        return None
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
