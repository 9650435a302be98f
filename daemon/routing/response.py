"""Speed to lead: the Accept button, and the deadline that moves an unaccepted lead on.

Every assignment DM has an **Accept** button (``notifiers/slack.py``). Its click comes
through the same signed ``POST /slack/actions`` (or Socket Mode) as Claim, and is settled the
same way: one conditional UPDATE (``storage.routing.accept``) that only the first Accept of
the agent holding the lead passes; a second click, a replayed request or a click by the
agent the lead was taken from changes nothing. Accepting records ``accepted_at``; the time
to accept is counted from the lead's assignment to that agent (``leadpipe stats``).

A flow's ``deadline`` (``routing.accept_deadline`` for the default flow) sets
``leads.accept_deadline`` at each assignment. The deadline job (``expire_deadlines``, with
the claim timeouts) moves each lead past it to the team's next available agent — its own
round-robin turn, skipping the agent who missed it — and tells the first agent by DM, all
in one transaction: the row is locked (``SKIP LOCKED`` on PostgreSQL) and the move is a
conditional UPDATE on the very deadline it acts on, so a deadline is acted on exactly once
— by one replica, and after a SIGKILL either not at all (the next run does it) or wholly.
An agent who misses ``routing.miss_alert_after`` deadlines within a day gets their team lead
told (by DM; the alerts channel when the lead has no Slack id, or there is no team lead).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from daemon.delivery.alerts import Alerts
from daemon.routing import decide as routing
from daemon.routing.availability import Availability
from daemon.routing.decide import Roster
from daemon.routing.flows import Plan
from notifiers.slack import DM_NOTICE
from storage import outbox
from storage import routing as store
from storage.db import Database

log = logging.getLogger(__name__)

AcceptVerdict = Literal["accepted", "already", "not_yours", "not_an_agent", "no_such_lead"]


class Responses:
    """Accepting and deadlines; the ``Router`` (daemon/routing/assign.py) is built on it."""

    db: Database
    roster: Roster
    plan: Plan
    slack: bool
    alerts: Alerts | None
    clock: Callable[[], datetime]
    wake: Callable[[], None]
    #: told of every Accept after its commit (the metrics); set by the Service
    on_accept: Callable[[AcceptVerdict, float | None], None] | None = None

    # provided by Router
    def availability(self, s: Session, now: datetime) -> Availability:
        raise NotImplementedError
    def _enqueue(self, s: Session, lead_id: int, action: str, payload: dict[str, Any],
                 extra: tuple[str, ...] = ()) -> None: ...
    def _tell_agent(self, s: Session, lead_id: int, agent_name: str, why: str,
                    repeat_of: int | None = None) -> None: ...
    def _ephemeral(self, s: Session, lead_id: int, user: str, channel: str | None, click: str,
                   text: str) -> None: ...

    # -- Accept ----------------------------------------------------------------------

    def accept(self, lead_id: int, slack_user_id: str, *, channel: str | None = None,
               click_id: str | None = None) -> AcceptVerdict:
        """The agent with this Slack user id clicked Accept on lead ``lead_id``."""
        now = self.clock()
        agent = self.roster.by_slack_user(slack_user_id)
        click = click_id or uuid.uuid4().hex
        seconds: float | None = None
        with self.db.session() as s:
            placed = store.lead_routing(s, lead_id)
            verdict: AcceptVerdict
            if placed is None:
                verdict = "no_such_lead"
            elif agent is None:
                verdict = "not_an_agent"
            elif store.accept(s, lead_id, agent.name, at=now):
                verdict = "accepted"
                seconds = max(0.0, (now - (placed.assigned_at or now)).total_seconds())
                store.record(s, lead_id, "accepted", at=now, agent=agent.name, flow=placed.flow,
                             slack_user_id=slack_user_id, detail=f"accepted in {seconds:.1f}s")
                self._notice(s, lead_id, slack_user_id, f"Lead #{lead_id} is yours: accepted in "
                             f"{_duration(seconds)}.", key="accepted")
            elif placed.agent == agent.name and placed.accepted_at is not None:
                verdict = "already"
            else:
                verdict = "not_yours"
                holder = self.roster.get(placed.agent)
                who = f"<@{holder.slack_user_id}>" if holder and holder.slack_user_id else (placed.agent or "nobody")
                self._ephemeral(s, lead_id, slack_user_id, channel, click,
                                f"Lead #{lead_id} is no longer yours: it is with {who}.")
        log.info("lead #%s: accept by %s: %s", lead_id, slack_user_id, verdict)
        if self.on_accept is not None:
            self.on_accept(verdict, seconds)
        self.wake()
        return verdict

    def away_today(self, slack_user_id: str, *, channel: str | None = None,
                   click_id: str | None = None) -> datetime | None:
        """The "Away for today" button: the agent is away until midnight on their own clock
        (``leadpipe agents back NAME`` ends it sooner). Returns until when; None for a
        clicker who is not an agent."""
        agent = self.roster.by_slack_user(slack_user_id)
        if agent is None:
            return None
        now = self.clock()
        hours = self.plan.hours.get(agent.name)
        zone = ZoneInfo(hours.zone if hours else self.plan.time_zone)
        local = now.astimezone(zone)
        until = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
        with self.db.session() as s:
            store.set_away(s, agent.name, until=until, at=now, by="slack")
            self._notice(s, None, slack_user_id, f"You are away until {until.astimezone(zone):%a %H:%M} "
                         f"({zone.key}): no new leads until then.", key=f"away:{until.isoformat()}")
        log.info("%s set away from Slack until %s", agent.name, until.isoformat())
        return until

    # -- deadlines -------------------------------------------------------------------

    def expire_deadlines(self, limit: int = 50) -> list[int]:
        """Leads unaccepted past their deadline move to the team's next agent. Returns the
        lead ids handled."""
        now = self.clock()
        with self.db.session() as s:
            ids = store.due_accepts(s, now=now, limit=limit)
            if ids:
                store.lock_pointer(s, now=now)  # serialises with routing, like a new lead
            for lead_id in ids:
                self._move_on(s, lead_id, now)
        if ids:
            self.wake()
        return ids

    def _move_on(self, s: Session, lead_id: int, now: datetime) -> None:
        placed = store.lead_routing(s, lead_id, lock=True)
        if placed is None or placed.agent is None or placed.accept_deadline is None:
            return
        missed, due = placed.agent, placed.accept_deadline
        flow = self.plan.flow(placed.flow)
        deadline = flow.deadline if flow else self.plan.default_deadline
        waited = (now - (placed.assigned_at or now)).total_seconds()
        decision = routing.round_robin(self.roster, self.plan, placed.team, self.availability(s, now),
                                       f"not accepted by {missed} in {_duration(waited)}",
                                       exclude=(missed,), flow=placed.flow or "default")
        store.record(s, lead_id, "missed", at=now, agent=missed, flow=placed.flow,
                     detail=f"not accepted in {_duration(waited)}")
        if decision.kind != "round_robin":
            store.clear_deadline(s, lead_id)  # nobody to move it to: it stays, and the office hears
            if self.alerts is not None:
                self.alerts.within(s, f"Lead #{lead_id} was not accepted by {missed} in "
                                      f"{_duration(waited)} and nobody else is available; it stays with them.",
                                   key=f"unaccepted:{lead_id}:{due.isoformat()}")
            self._misses(s, missed, placed.team, now, lead_id)
            return
        turn = store.take_turn(s, decision.rotation, now=now, name=decision.pointer, skip=decision.skip)
        if not store.move(s, lead_id, from_agent=missed, to_agent=turn.agent, at=now,
                          deadline=now + deadline if deadline else None, was_due=due):
            raise RuntimeError(f"lead #{lead_id} changed under its lock")  # rolls the turn back
        n = store.moves_of(s, lead_id) + 1
        store.record(s, lead_id, "reassigned", at=now, agent=turn.agent, turn=turn.position,
                     flow=placed.flow, detail=decision.why)
        gone = self.roster.get(missed)
        if gone is not None and gone.slack_user_id:
            self._notice(s, lead_id, gone.slack_user_id,
                         f"Lead #{lead_id} moved to {turn.agent}: not accepted within "
                         f"{_duration(waited)}.", key=f"moved:{n}")
        self._tell_agent_again(s, lead_id, turn.agent, n)
        self._misses(s, missed, placed.team, now, lead_id)
        log.info("lead #%s: not accepted by %s in %.0fs → %s", lead_id, missed, waited, turn.agent)

    def _tell_agent_again(self, s: Session, lead_id: int, agent_name: str, n: int) -> None:
        """The DM to the agent a lead moved to (its own outbox key: ``…:dm_agent:moved:N``)."""
        agent = self.roster.get(agent_name)
        if self.slack and agent is not None and agent.slack_user_id:
            self._enqueue(s, lead_id, "dm_agent", {"user": agent.slack_user_id, "agent": agent.name,
                                                   "why": "reassigned", "accept": True},
                          extra=("moved", str(n)))

    def _misses(self, s: Session, agent: str, team: str | None, now: datetime, lead_id: int) -> None:
        """The team lead hears when ``agent`` reaches ``miss_alert_after`` misses in a day."""
        count = store.misses_since(s, agent, now - timedelta(days=1))
        if count != self.plan.miss_alert_after:
            return
        lead_name = self.plan.teams[team].lead if team is not None and team in self.plan.teams else None
        boss = self.roster.get(lead_name)
        text = (f"{agent} let {count} leads pass their deadline to accept in the last 24 h"
                f"{f' (team {team})' if team else ''}.")
        if boss is not None and boss.slack_user_id:
            self._notice(s, lead_id, boss.slack_user_id, text, key=f"misses:{agent}:{now:%Y%m%d%H%M}")
        elif self.alerts is not None:
            self.alerts.within(s, text, key=f"misses:{agent}:{now:%Y%m%d%H%M}")

    def _notice(self, s: Session, lead_id: int | None, user: str, text: str, *, key: str) -> None:
        if not self.slack:
            return
        outbox.enqueue(s, notifier="slack", action=DM_NOTICE, lead_id=lead_id,
                       payload={"user": user, "text": text},
                       idempotency_key=f"notice:{lead_id or '-'}:{user}:{key}", at=self.clock())


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 90:
        return f"{s}s"
    if s < 5400:
        return f"{s // 60}m {s % 60:02d}s" if s % 60 else f"{s // 60}m"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"
