"""Per source: leads per day, the dead-letter share, drift warnings, the last lead seen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from daemon.reading.parsing import is_drift_warning
from daemon.web.admin.chart import bar_chart, days_ending
from daemon.web.admin.site import Admin
from storage import source_stats
from storage.source_stats import SourceFigures

DAYS = 30


@dataclass(frozen=True)
class SourceRow:
    """One line of the Sources page."""

    source: str
    figures: SourceFigures
    chart: Markup
    drift: list[tuple[int, str]]
    has_rule: bool


def routes(admin: Admin) -> APIRouter:
    r = APIRouter()

    @r.get("/sources")
    def sources(request: Request) -> Response:
        session = admin.viewer(request)
        now = admin.clock()
        today = now.astimezone(UTC).date()
        days = days_ending(today, DAYS)
        since = datetime(days[0].year, days[0].month, days[0].day, tzinfo=UTC)
        with admin.db.session() as s:
            figs = source_stats.figures(s, since=since)
        engine = admin.engine()
        ruled = {x.spec.source for x in engine.rules.rules}
        names = sorted(ruled | set(figs), key=lambda n: (n == "", n))
        rows = []
        for name in names:
            fig = figs.get(name) or SourceFigures(name)
            rows.append(SourceRow(
                source=name, figures=fig, has_rule=name in ruled,
                chart=bar_chart(fig.per_day, days, label="leads"),
                drift=[(i, w) for i, w in fig.warnings if is_drift_warning(w)]))
        rows.sort(key=lambda x: (x.source == "", -x.figures.leads - x.figures.dead_letters,
                                 x.source))
        return admin.page("sources.html", session, nav="sources", rows=rows, days=DAYS,
                          first_day=days[0], last_day=days[-1], rule_errors=engine.rules.errors,
                          stale_after=timedelta(days=7))

    return r
