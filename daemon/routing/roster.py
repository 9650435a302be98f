"""The agents as the brokerage sees them: who is on the roster, and today's counts.

Feeds ``leadpipe agents``; also builds the ``Router`` the one-shot commands (``ingest``,
``dlq replay``) route with, the same way the daemon does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from daemon.config import Settings
from daemon.delivery.alerts import Alerts
from daemon.routing.assign import Router
from daemon.routing.availability import Availability
from daemon.routing.decide import Roster
from daemon.routing.flows import load_plan
from storage import routing as store
from storage.db import Database


@dataclass(frozen=True)
class AgentLine:
    """One agent with today's counts (since midnight UTC)."""

    name: str
    slack_user_id: str | None
    crm_user_id: str | None
    active: bool
    weight: int
    assigned: int  # round-robin turns, claim-timeout fallbacks included
    claimed: int
    repeat: int
    next_up: bool  # the next round-robin turn is theirs
    #: why round robin and claims skip them now (``away until …``, ``off hours (…)``), or None
    unavailable: str | None = None
    #: the teams they are in
    teams: tuple[str, ...] = ()


@dataclass(frozen=True)
class RosterReport:
    agents: tuple[AgentLine, ...]
    drip: int
    unassigned: int
    #: offered in Slack and still waiting for a claim (a claimed or timed-out offer is not)
    offered: int
    since: datetime


def today(settings: Settings, db: Database, now: datetime | None = None) -> RosterReport:
    """The roster with counts since midnight UTC of ``now``."""
    now = now or datetime.now(UTC)
    since = now.replace(hour=0, minute=0, second=0, microsecond=0)
    roster = Roster.of(settings.agents)
    with db.session() as s:
        counts = store.counts_since(s, since)
        position = store.pointer_position(s)
        waiting = store.waiting_offers(s)
        away = store.away(s, now=now)
    plan = load_plan(settings)
    avail = Availability(now, plan.hours, away)
    rotation = roster.rotation()
    up = rotation[position % len(rotation)] if rotation else None
    lines = tuple(
        AgentLine(a.name, a.slack_user_id, a.crm_user_id, a.active, a.weight,
                  counts.get(a.name, {}).get("assigned", 0), counts.get(a.name, {}).get("claimed", 0),
                  counts.get(a.name, {}).get("repeat", 0), a.name == up, avail.why_not(a.name),
                  tuple(t.name for t in plan.teams.values() if a.name in t.agents))
        for a in roster.agents
    )
    nobody = counts.get(None, {})
    return RosterReport(lines, nobody.get("drip", 0), nobody.get("unassigned", 0),
                        waiting, since)


def router_for(settings: Settings, db: Database) -> Router:
    """The router ``leadpipe run`` would use; its Slack rows wait in the outbox for the
    daemon's dispatcher."""
    slack = bool(settings.slack.bot_token)
    alerts = Alerts(db, to_slack=slack and bool(settings.slack.alerts_channel))
    return Router.from_settings(db, settings, alerts=alerts, slack=slack)
