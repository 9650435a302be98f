"""Speed to lead: per agent, team, source and flow over a chosen period, the time to
accept (median, p90, each answer on a chart against the deadline), the share accepted in
time, the leads moved on and claimed (``daemon/ops/responses.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup, escape

from daemon.ops import responses
from daemon.ops.responses import Figures
from daemon.ops.stats import seconds
from daemon.routing.flows import Plan, load_plan
from daemon.web.admin.site import Admin

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30),
           "90d": timedelta(days=90)}


@dataclass(frozen=True)
class Row:
    figures: Figures
    chart: Markup


def spread_chart(times: tuple[float, ...], *, scale: float, deadline: float | None,
                 width: int = 300, height: int = 22, label: str = "") -> Markup:
    """Each time to accept as a dot on one axis from 0 to ``scale`` seconds (longer ones at
    the right end), the median as a tick, the deadline as a dashed line. Inline SVG, no script."""
    def x(v: float) -> float:
        return 4 + min(v, scale) / scale * (width - 8) if scale else 4.0

    mid = height / 2
    median = responses._q(list(times), 50) if times else None
    parts = [f'<svg class="spread" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(label)}: {len(times)} answers, median '
             f'{escape(seconds(median))}">',
             f'<line class="axis" x1="4" y1="{mid}" x2="{width - 4}" y2="{mid}"/>']
    if deadline is not None:
        parts.append(f'<line class="deadline" x1="{x(deadline):.1f}" y1="1" x2="{x(deadline):.1f}" '
                     f'y2="{height - 1}"><title>deadline {escape(seconds(deadline))}</title></line>')
    for v in times:
        parts.append(f'<circle class="answer" cx="{x(v):.1f}" cy="{mid}" r="3">'
                     f'<title>{escape(seconds(v))}</title></circle>')
    if median is not None:
        parts.append(f'<rect class="p50" x="{x(median) - 1:.1f}" y="2" width="2" height="{height - 4}">'
                     f'<title>median {escape(seconds(median))}</title></rect>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _deadline(plan: Plan) -> float:
    limits = [f.deadline for f in plan.flows if f.deadline] + [plan.default_deadline or responses.TARGET]
    return min(limits).total_seconds()


def routes(admin: Admin) -> APIRouter:
    r = APIRouter()

    @r.get("/responses")
    def response_times(request: Request) -> Response:
        session = admin.viewer(request)
        period = request.query_params.get("period", "7d")
        if period not in PERIODS:
            period = "7d"
        plan = load_plan(admin.settings)
        figs = responses.compute(admin.db, plan, period=PERIODS[period], now=admin.clock())
        deadline = _deadline(plan)
        scale = max([deadline * 3] + [max(f.times) for f in figs if f.times and f.by == "agent"])
        scale = min(scale, deadline * 6)
        groups = []
        for by in responses.GROUPS:
            rows = [Row(f, spread_chart(f.times, scale=scale, deadline=deadline, label=f"{by} {f.name}"))
                    for f in figs if f.by == by]
            if rows:
                groups.append((by, rows))
        return admin.page("responses.html", session, nav="responses", groups=groups, period=period,
                          periods=list(PERIODS), deadline=deadline, scale=scale)

    return r
