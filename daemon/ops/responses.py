"""Speed to lead: how fast agents answered the leads of a period, per agent, team, source
and flow (``leadpipe stats``, the admin page ``/admin/responses``).

Read from the routing history (``routing_events``), so it covers every replica and restart:

- **received**: the leads given to the agent (round robin, a flow's named agent, a repeat
  inquiry, a move after a missed deadline, a claim); for a team, source or flow, its leads
  that reached an agent;
- **time to accept**, median and p90: for an agent, from the moment the lead was given to
  them (for a claim, from the offer) to their Accept (a claim is its own accept); for a team,
  source or flow, from the lead's arrival to the first Accept — the wait the person had;
- **within deadline**: the share of received leads accepted within the flow's ``deadline``
  (the default flow: ``routing.accept_deadline``; with neither, the 5-minute target);
- **reassigned**: leads taken from the agent at a missed deadline (for a group: its leads
  moved at least once); **claimed**: leads claimed in Slack.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.routing.flows import Plan
from storage import response_stats
from storage.db import Database

#: the deadline figures are measured against when a flow sets none
TARGET = timedelta(minutes=5)
GROUPS = ("agent", "team", "source", "flow")


@dataclass(frozen=True)
class Figures:
    """One agent's (team's, source's, flow's) answers over the period; seconds."""

    by: str
    name: str
    received: int = 0
    accepted: int = 0
    median: float | None = None
    p90: float | None = None
    within_deadline: float | None = None  # a share, 0..1, of ``received``
    reassigned: int = 0
    claimed: int = 0
    #: the times to accept themselves, for the chart
    times: tuple[float, ...] = field(default=(), repr=False)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["times"]
        return out


@dataclass
class _Tally:
    received: int = 0
    times: list[float] = field(default_factory=list)
    within: int = 0
    reassigned: int = 0
    claimed: int = 0

    def figures(self, by: str, name: str) -> Figures:
        return Figures(by, name, self.received, len(self.times), _q(self.times, 50), _q(self.times, 90),
                       round(self.within / self.received, 3) if self.received else None,
                       self.reassigned, self.claimed, tuple(sorted(self.times)))


def _q(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    if pct == 50:
        return round(statistics.median(values), 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[pct - 1], 1)


def compute(db: Database, plan: Plan, *, period: timedelta = timedelta(days=7),
            now: datetime | None = None) -> list[Figures]:
    """The figures of the leads stored in the last ``period``, grouped by agent, team,
    source and flow (in that order, each by name)."""
    now = now or datetime.now(UTC)
    with db.session() as s:
        steps = response_stats.steps(s, now - period, now)
    return figures(steps, plan)


def _deadline(plan: Plan, flow: str | None) -> timedelta:
    spec = plan.flow(flow)
    return (spec.deadline if spec else plan.default_deadline) or TARGET


def figures(steps: Iterable[response_stats.Step], plan: Plan) -> list[Figures]:
    """``compute``'s figures from the steps themselves (pure)."""
    tallies: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    by_lead: dict[int, list[response_stats.Step]] = defaultdict(list)
    for st in steps:
        by_lead[st.lead_id].append(st)
    for lead_steps in by_lead.values():
        first = lead_steps[0]
        # the lead's arrival: its routing, in the transaction that stored it (for a hot lead,
        # its offer)
        arrived = min(first.at, first.offered_at or first.at)
        open_since: dict[str, tuple[datetime, str | None]] = {}
        answered: datetime | None = None
        reached = moved = claimed = False
        for st in lead_steps:
            agent = st.agent or "?"
            limit = _deadline(plan, st.flow)
            mine = tallies[("agent", agent)]
            if st.kind in ("assigned", "repeat", "reassigned"):
                open_since[agent] = (st.at, st.flow)
                mine.received += 1
                reached = True
            elif st.kind == "claimed":
                waited = max(0.0, (st.at - (st.offered_at or st.at)).total_seconds())
                mine.received += 1
                mine.claimed += 1
                mine.times.append(waited)
                mine.within += waited <= limit.total_seconds()
                reached = claimed = True
                answered = answered or st.at
            elif st.kind == "accepted" and agent in open_since:
                given, flow = open_since.pop(agent)
                waited = max(0.0, (st.at - given).total_seconds())
                mine.times.append(waited)
                mine.within += waited <= _deadline(plan, flow).total_seconds()
                answered = answered or st.at
            elif st.kind == "missed":
                open_since.pop(agent, None)
                mine.reassigned += 1
                moved = True
        if not reached:
            continue
        flow = next((st.flow for st in lead_steps if st.flow), None) or "default"
        for key in (("team", first.team or "(whole office)"), ("source", first.source), ("flow", flow)):
            group = tallies[key]
            group.received += 1
            group.reassigned += moved
            group.claimed += claimed
            if answered is not None:
                waited = max(0.0, (answered - arrived).total_seconds())
                group.times.append(waited)
                group.within += waited <= _deadline(plan, flow).total_seconds()
    order = {g: i for i, g in enumerate(GROUPS)}
    return [t.figures(by, name) for (by, name), t in
            sorted(tallies.items(), key=lambda kv: (order[kv[0][0]], kv[0][1]))]


def share(value: float | None) -> str:
    """``83 %`` or ``-``."""
    return "-" if value is None else f"{value * 100:.0f} %"
