"""Carrying out routing decisions: assignments, Slack offers, claims and claim timeouts.

``Router.route`` runs inside the transaction that stores the lead (daemon/pipeline/worker.py):
it locks the round-robin pointer, looks up the person's earlier leads, asks
``daemon.routing.decide.decide``, records the outcome, and writes the outbox rows that tell
people — all committed together or not at all. ``claim`` (the Claim button, over HTTP or
Socket Mode) and ``expire_offers`` (the claim timeout) each run in their own transaction;
a conditional update on the lead's status makes the first of them win.

Every outbound effect is an outbox row with the key ``lead:<id>:<notifier>:<action>``;
the dispatcher (daemon/delivery/dispatch.py) sends them.

The CRMs and webhooks (``destinations``) get every routed lead once its agent is known,
in the same transaction: at assignment (round robin or repeat), as drip, or unassigned —
and a hot lead offered in Slack at its claim or its claim timeout, so the CRM's person
is created with the agent who actually works it (FUB sets the owner only when it creates
the person, so an event sent at offer time would leave the person unowned or with the
wrong agent). The cost: the CRM sees an offered lead up to ``claim_timeout`` later.

Lead flows (``daemon/routing/flows.py``) pick the team and method; each team's round robin
has its own pointer row (``team:NAME``), locked and advanced like the default one. Accepting
and the deadline to accept are in ``daemon/routing/response.py`` (``Responses``, which
``Router`` is built on).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from daemon.config import Settings
from daemon.delivery.alerts import Alerts
from daemon.delivery.dispatch import lead_destinations
from daemon.lead import DeadLetter, Lead
from daemon.routing import decide as routing
from daemon.routing.availability import Availability
from daemon.routing.decide import Decision, Roster
from daemon.routing.flows import Plan, load_plan
from daemon.routing.response import Responses
from notifiers import Notifier
from notifiers.slack import (
    ACCEPT_ACTION_ID,
    AWAY_ACTION_ID,
    CLAIM_ACTION_ID,
    CLAIM_OFFER,
    CLAIM_TAKEN,
    CLAIM_UPDATE,
    DM_AGENT,
    Slack,
)
from storage import leads, outbox
from storage import routing as store
from storage.db import Database

log = logging.getLogger(__name__)

ClaimVerdict = Literal["won", "taken", "not_an_agent", "no_such_lead", "refused"]


@dataclass(frozen=True)
class ClaimResult:
    """What one click on Claim did. ``agent`` is who has the lead now."""

    lead_id: int
    verdict: ClaimVerdict
    agent: str | None = None
    seconds: float | None = None


class Router(Responses):
    """Routes leads and settles claims. ``roster`` and ``plan`` may be replaced (a reload)
    at any time."""

    def __init__(
        self,
        db: Database,
        roster: Roster,
        *,
        repeat_window: timedelta = timedelta(days=30),
        claim_timeout: timedelta = timedelta(minutes=5),
        slack: bool = False,
        offer_hot: bool = False,
        alerts: Alerts | None = None,
        clock: Callable[[], datetime] | None = None,
        wake: Callable[[], None] | None = None,
        destinations: Mapping[str, type[Notifier]] | None = None,
        plan: Plan | None = None,
    ):
        self.db = db
        self.roster = roster
        #: the flows and teams, the agents' hours; empty: one rotation of every agent
        self.plan = plan or Plan()
        self.repeat_window = repeat_window
        self.claim_timeout = claim_timeout
        self.slack = slack  # DMs, message updates, ephemerals go to Slack
        self.offer_hot = offer_hot and slack
        self.alerts = alerts
        self.clock = clock or (lambda: datetime.now(UTC))
        self.wake = wake or (lambda: None)
        #: the CRMs and webhooks every routed lead goes to, by notifier name
        self.destinations = dict(destinations or {})
        #: told of every claim's result after its commit (the metrics); set by the Service
        self.on_claim: Callable[[ClaimResult], None] | None = None

    # -- a new lead ------------------------------------------------------------------

    @classmethod
    def from_settings(cls, db: Database, settings: Settings, *, alerts: Alerts | None,
                      slack: bool, wake: Callable[[], None] | None = None) -> Router:
        """The router the configuration describes; ``slack``: a Slack notifier exists."""
        can_offer = bool(settings.routing.offer_hot_leads and slack
                         and settings.slack.hot_leads_channel)
        return cls(db, Roster.of(settings.agents), repeat_window=settings.routing.repeat_window,
                   claim_timeout=settings.slack.claim_timeout, slack=slack, offer_hot=can_offer,
                   alerts=alerts, wake=wake, destinations=lead_destinations(settings),
                   plan=load_plan(settings))

    def availability(self, s: Session, now: datetime) -> Availability:
        """Who is working at ``now``: the plan's hours, and the agents set away."""
        return Availability(now, self.plan.hours, store.away(s, now=now))

    def route(self, s: Session, lead_id: int, lead: Lead) -> Decision | None:
        """Route the stored lead ``lead_id`` in session ``s`` (the one that stored it).

        ``None`` when no agent is configured at all: routing is off and the lead stays
        ``new`` (the embedded default, where leadpipe only collects leads); the CRMs still
        get it, unassigned, for their own lead flow to assign."""
        if not self.roster.agents:
            self._to_destinations(s, lead_id, "new", "routing_off")
            return None
        now = self.clock()
        # The pointer lock first: it serialises routing, so a person's second inquiry
        # arriving on another worker sees the first one's agent.
        store.lock_pointer(s, now=now)
        found = store.previous_owner(s, phone=lead.phone, email=lead.email,
                                     since=now - self.repeat_window, exclude_lead_id=lead_id)
        previous = routing.Previous(found.lead_id, found.agent) if found else None
        decision = routing.decide(lead, self.roster, previous, can_offer=self.offer_hot,
                                  plan=self.plan, now=now, available=self.availability(s, now),
                                  slack=self.slack)
        flow, team = decision.flow, decision.team
        accept_by = now + decision.deadline if decision.deadline else None
        if decision.kind == "repeat":
            assert decision.agent is not None
            store.assign(s, lead_id, decision.agent, at=now, repeat_of=decision.repeat_of,
                         accept_by=accept_by, flow=flow, team=team)
            store.record(s, lead_id, "repeat", at=now, agent=decision.agent, flow=flow,
                         detail=f"{decision.why}; matched on {found.matched_on if found else '?'}")
            self._tell_agent(s, lead_id, decision.agent, "repeat", repeat_of=decision.repeat_of)
        elif decision.kind == "drip":
            store.set_status(s, lead_id, "drip", flow=flow)
            store.record(s, lead_id, "drip", at=now, detail=decision.why, flow=flow)
            self._to_destinations(s, lead_id, "drip", "drip")
        elif decision.kind in ("offer", "pond"):
            pond = decision.kind == "pond"
            store.offer(s, lead_id, at=now, status="pond" if pond else "offered", flow=flow, team=team,
                        deadline=None if pond else now + (decision.claim_timeout or self.claim_timeout))
            store.record(s, lead_id, "pond" if pond else "offered", at=now, detail=decision.why, flow=flow)
            where = {"channel": decision.channel} if decision.channel else {}
            self._enqueue(s, lead_id, CLAIM_OFFER, {**where, "pond": True} if pond else where)
        elif decision.kind in ("round_robin", "agent"):
            if decision.kind == "agent":
                assert decision.agent is not None
                turn = store.Turn(decision.agent, -1)
            else:
                turn = store.take_turn(s, decision.rotation, now=now, name=decision.pointer,
                                       skip=decision.skip)
            store.assign(s, lead_id, turn.agent, at=now, accept_by=accept_by, flow=flow, team=team)
            store.record(s, lead_id, "assigned", at=now, agent=turn.agent, flow=flow,
                         turn=turn.position if turn.position >= 0 else None, detail=decision.why)
            self._tell_agent(s, lead_id, turn.agent, "round_robin" if decision.kind == "round_robin" else "flow")
        else:
            store.set_status(s, lead_id, "unassigned", flow=flow)
            self._unassigned(s, lead_id, decision.why, now, already_set=True, flow=flow)
        log.info("lead #%s: %s%s", lead_id, decision.why,
                 f" → {decision.agent}" if decision.agent else "")
        return decision

    def dead_letter(self, s: Session, dead_letter_id: int, dead: DeadLetter) -> None:
        """Tell the tech channel about a new dead letter, in the transaction storing it."""
        if self.alerts is None:
            return
        rule = f", rule {dead.rule}" if dead.rule else ""
        detail = dead.detail.replace("--dlq ID", f"--dlq {dead_letter_id}")
        if "leadpipe rules new" in detail:
            # a sender no rule knows: the way out is a rule, and the replay comes after it
            then = f"— `leadpipe dlq show {dead_letter_id}`; once the rule is promoted, " \
                   f"`leadpipe dlq replay {dead_letter_id}`"
        else:
            then = f"— `leadpipe dlq show {dead_letter_id}`, then `leadpipe dlq replay {dead_letter_id}`"
        self.alerts.within(s, f"Dead letter #{dead_letter_id} ({dead.reason.value}{rule}): {detail[:500]} {then}",
                           key=f"dead_letter:{dead_letter_id}")

    # -- claims ----------------------------------------------------------------------

    def handle_interaction(self, payload: Mapping[str, Any]) -> list[ClaimResult]:
        """A Slack interactive payload (HTTP or Socket Mode): settle each Claim click."""
        if payload.get("type") != "block_actions":
            return []
        user = (payload.get("user") or {}).get("id")
        channel = (payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get("channel_id")
        results = []
        for action in payload.get("actions") or ():
            if action.get("action_id") == AWAY_ACTION_ID and user:
                self.away_today(user, channel=channel, click_id=action.get("action_ts"))
                continue
            if action.get("action_id") not in (CLAIM_ACTION_ID, ACCEPT_ACTION_ID) or not user:
                continue
            try:
                lead_id = int(action.get("value"))
            except (TypeError, ValueError):
                log.warning("a Claim or Accept click without a lead id: %r", action.get("value"))
                continue
            if action.get("action_id") == ACCEPT_ACTION_ID:
                self.accept(lead_id, user, channel=channel, click_id=action.get("action_ts"))
                continue
            results.append(self.claim(lead_id, user, channel=channel,
                                      click_id=action.get("action_ts")))
        return results

    def claim(self, lead_id: int, slack_user_id: str, *, channel: str | None = None,
              click_id: str | None = None) -> ClaimResult:
        """The agent with this Slack user id clicked Claim. The first click wins, atomically;
        a later one gets an ephemeral "already claimed by @name"."""
        now = self.clock()
        agent = self.roster.by_slack_user(slack_user_id)
        click = click_id or uuid.uuid4().hex
        with self.db.session() as s:
            current = leads.get(s, lead_id)
            if current is None:
                result = ClaimResult(lead_id, "no_such_lead")
                self._ephemeral(s, lead_id, slack_user_id, channel, click,
                                "This lead is no longer in leadpipe.")
            elif agent is None:
                result = ClaimResult(lead_id, "not_an_agent", current.agent)
                store.record(s, lead_id, "claim_lost", at=now, slack_user_id=slack_user_id,
                             detail="not an agent in the roster")
                self._ephemeral(s, lead_id, slack_user_id, channel, click,
                                "Only agents listed in leadpipe's configuration can claim leads.")
            elif (placed := store.lead_routing(s, lead_id)) is not None and placed.status in (
                    "offered", "pond") and (refusal := routing.may_claim(
                    agent.name, status=placed.status, team=placed.team, plan=self.plan,
                    available=self.availability(s, now))):
                result = ClaimResult(lead_id, "refused", current.agent)
                store.record(s, lead_id, "claim_lost", at=now, agent=agent.name, flow=placed.flow,
                             slack_user_id=slack_user_id, detail=refusal)
                self._ephemeral(s, lead_id, slack_user_id, channel, click, refusal)
            elif store.claim(s, lead_id, agent.name, at=now):
                offered = current.offered_at or now
                seconds = max(0.0, (now - offered).total_seconds())
                result = ClaimResult(lead_id, "won", agent.name, seconds)
                store.record(s, lead_id, "claimed", at=now, agent=agent.name,
                             flow=placed.flow if placed else None,
                             slack_user_id=slack_user_id, detail=f"claimed in {seconds:.1f}s")
                self._enqueue(s, lead_id, CLAIM_UPDATE, {
                    "kind": "claimed", "agent": agent.name, "slack_user_id": slack_user_id,
                    "seconds": seconds})
                self._tell_agent(s, lead_id, agent.name, "claimed")
            else:
                after = leads.get(s, lead_id)
                holder = after.agent if after else None
                result = ClaimResult(lead_id, "taken", holder)
                store.record(s, lead_id, "claim_lost", at=now, agent=agent.name,
                             slack_user_id=slack_user_id, detail=f"already with {holder}")
                self._ephemeral(s, lead_id, slack_user_id, channel, click,
                                self._taken_text(after.status if after else None, holder))
        log.info("lead #%s: claim by %s: %s", lead_id, slack_user_id, result.verdict)
        if self.on_claim is not None:
            self.on_claim(result)
        self.wake()
        return result

    def _taken_text(self, status: str | None, holder: str | None) -> str:
        who = self.roster.get(holder)
        name = f"<@{who.slack_user_id}>" if who and who.slack_user_id else (holder or "someone")
        if status == "claimed":
            return f"Already claimed by {name}."
        return f"Too late: this lead was assigned to {name}."

    # -- claim timeouts --------------------------------------------------------------

    def expire_offers(self, limit: int = 50) -> list[int]:
        """Offers past their claim deadline fall back to round robin; the message says so.
        Returns the lead ids handled."""
        now = self.clock()
        with self.db.session() as s:
            ids = store.due_offers(s, now=now, limit=limit)
            for lead_id in ids:
                self._expire(s, lead_id, now)
        if ids:
            self.wake()
        return ids

    def _expire(self, s: Session, lead_id: int, now: datetime) -> None:
        current = leads.get(s, lead_id)
        placed = store.lead_routing(s, lead_id)
        assert current is not None and placed is not None
        waited = (now - (current.offered_at or now)).total_seconds()
        flow = self.plan.flow(placed.flow)
        deadline = flow.deadline if flow else self.plan.default_deadline
        decision = routing.fallback(self.roster, self.plan, placed.team, self.availability(s, now),
                                    flow=placed.flow or "default", deadline=deadline)
        store.record(s, lead_id, "timeout", at=now, detail=f"unclaimed after {waited:.0f}s",
                     flow=placed.flow)
        if decision.kind != "round_robin":
            store.set_status(s, lead_id, "unassigned", only_if="offered")
            self._unassigned(s, lead_id, decision.why, now, already_set=True, flow=placed.flow)
            self._enqueue(s, lead_id, CLAIM_UPDATE, {"kind": "timeout", "agent": None,
                                                     "seconds": waited})
            return
        turn = store.take_turn(s, decision.rotation, now=now, name=decision.pointer, skip=decision.skip)
        accept_by = now + deadline if deadline else None
        if not store.assign(s, lead_id, turn.agent, at=now, only_if_offered=True, accept_by=accept_by,
                            team=decision.team):
            return  # unreachable while the row is locked; kept for SQLite's sake
        store.record(s, lead_id, "assigned", at=now, agent=turn.agent, turn=turn.position,
                     detail=decision.why, flow=placed.flow)
        agent = self.roster.get(turn.agent)
        self._enqueue(s, lead_id, CLAIM_UPDATE, {
            "kind": "timeout", "agent": turn.agent, "seconds": waited,
            "slack_user_id": agent.slack_user_id if agent else None})
        self._tell_agent(s, lead_id, turn.agent, "timeout")
        log.info("lead #%s: unclaimed after %.0fs → %s by round robin", lead_id, waited, turn.agent)

    # -- outbox rows -----------------------------------------------------------------

    def _tell_agent(self, s: Session, lead_id: int, agent_name: str, why: str,
                    repeat_of: int | None = None) -> None:
        """The agent who now has the lead hears about it (a Slack DM with the contact), and
        the CRMs get it with that agent: every assignment reaches this one place."""
        agent = self.roster.get(agent_name)
        if self.slack and agent is not None and agent.slack_user_id:
            self._enqueue(s, lead_id, DM_AGENT, {"user": agent.slack_user_id, "agent": agent.name,
                                                 "why": why, "repeat_of": repeat_of,
                                                 "accept": why != "claimed"})
        self._to_destinations(s, lead_id, "claimed" if why == "claimed" else "assigned", why,
                              agent_name)

    def _to_destinations(self, s: Session, lead_id: int, status: str, why: str,
                         agent_name: str | None = None) -> None:
        """One outbox row per CRM/webhook action, keyed ``lead:<id>:<notifier>:<action>``;
        the payload is what the CRM needs to know about the routing (``notifiers.base.Routed``)."""
        if not self.destinations:
            return
        agent = self.roster.get(agent_name) if agent_name else None
        routed = {"status": status, "why": why, "agent": agent_name,
                  "agent_email": agent.email if agent else None,
                  "crm_user_id": agent.crm_user_id if agent else None}
        for name, cls in self.destinations.items():
            for action in cls.lead_actions(routed):
                outbox.enqueue(s, notifier=name, action=action, lead_id=lead_id, payload=routed,
                               idempotency_key=outbox.key(lead_id, name, action), at=self.clock())

    def _ephemeral(self, s: Session, lead_id: int, user: str, channel: str | None, click: str,
                   text: str) -> None:
        if self.slack:
            self._enqueue(s, lead_id, CLAIM_TAKEN, {"user": user, "channel": channel, "text": text},
                          extra=(user, click))

    def _unassigned(self, s: Session, lead_id: int, why: str, now: datetime,
                    already_set: bool = False, flow: str | None = None) -> None:
        if not already_set:
            store.set_status(s, lead_id, "unassigned")
        store.record(s, lead_id, "unassigned", at=now, detail=why, flow=flow)
        self._to_destinations(s, lead_id, "unassigned", "unassigned")
        if self.alerts is not None:
            self.alerts.within(s, f"Lead #{lead_id} has no agent: {why}. Activate an agent "
                                  "in the configuration and assign it by hand.",
                               key=f"unassigned:{lead_id}")

    def _enqueue(self, s: Session, lead_id: int, action: str, payload: dict[str, Any],
                 extra: tuple[str, ...] = ()) -> None:
        if not self.slack:
            return
        outbox.enqueue(s, notifier=Slack.name, action=action, lead_id=lead_id, payload=payload,
                       idempotency_key=outbox.key(lead_id, Slack.name, action, *extra),
                       at=self.clock())
