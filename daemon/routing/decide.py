"""Who gets a lead: pure decisions from the lead, the roster and the person's history.

``decide`` returns a ``Decision``; nothing here touches the database or the clock. The
effects (taking the round-robin turn in the same transaction, the outbox rows) are in
``daemon/routing/assign.py`` and ``storage/routing.py``.

Order of the rules:

1. **Repeat inquiry** — the person (same E.164 phone or email) sent a lead within the
   repeat window and an active agent has it: that agent keeps the person, no turn taken.
2. **Low tier** — no agent; the lead goes to the drip campaign.
3. **Hot tier** — offered in Slack for the first agent to claim (when Slack can offer).
4. **Round robin** — the next turn over the active agents in config order; an agent with
   weight w has w turns per round, spread over the round (A2 B1 C1 → A B C A).
5. No active agent at all — unassigned (and an alert).

With lead flows (``daemon/routing/flows.py``) the first flow that matches the lead says
which team and which method: round robin within the team (its own pointer, ``team:NAME``),
an offer in the team's channel that only its agents may claim, one named agent, or the
pond (unassigned, claimable by anyone). Rules 1 and 2 still come first (a low-tier lead
goes to a flow only when the flow names ``tier: low``). Agents away or off hours
(``Availability``) are skipped; a team with nobody available hands the lead to its
``fallback``, and after the last one to the default flow: every active agent. With nobody
available anywhere, the default flow's next turn gets it anyway (and its deadline, if any,
moves it on): a lead is never stuck. No flows, no hours, nobody away: exactly rules 1-5.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from daemon.lead import Lead
from daemon.routing.availability import Availability
from daemon.routing.flows import DEFAULT, Choice, Plan, choose

DecisionKind = Literal["round_robin", "repeat", "offer", "drip", "unassigned", "agent", "pond"]


@dataclass(frozen=True)
class Agent:
    """One agent of the roster, as configured."""

    name: str
    email: str | None = None
    slack_user_id: str | None = None
    crm_user_id: str | None = None
    active: bool = True
    weight: int = 1


class AgentLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def slack_user_id(self) -> str | None: ...
    @property
    def crm_user_id(self) -> str | None: ...
    @property
    def active(self) -> bool: ...
    @property
    def weight(self) -> int: ...


@dataclass(frozen=True)
class Roster:
    """The agents, in config order."""

    agents: tuple[Agent, ...] = ()

    @classmethod
    def of(cls, agents: Iterable[AgentLike]) -> Roster:
        """From ``AgentSettings`` (or anything with the same attributes)."""
        return cls(tuple(
            Agent(name=a.name, email=a.email, slack_user_id=a.slack_user_id,
                  crm_user_id=a.crm_user_id, active=a.active, weight=a.weight)
            for a in agents
        ))

    def get(self, name: str | None) -> Agent | None:
        return next((a for a in self.agents if a.name == name), None)

    def by_slack_user(self, slack_user_id: str) -> Agent | None:
        return next((a for a in self.agents if a.slack_user_id == slack_user_id), None)

    def active(self) -> tuple[Agent, ...]:
        return tuple(a for a in self.agents if a.active)

    def rotation(self) -> tuple[str, ...]:
        """One round of turns: active agents in config order, weights as extra turns
        spread over the round (round k holds every agent whose weight is above k)."""
        return self.rotation_of(a.name for a in self.agents)

    def rotation_of(self, names: Iterable[str]) -> tuple[str, ...]:
        """``rotation`` over the active agents among ``names``, in the order given (a team's)."""
        wanted = list(dict.fromkeys(names))
        active = [a for n in wanted if (a := self.get(n)) is not None and a.active]
        rounds = max((a.weight for a in active), default=0)
        return tuple(a.name for k in range(rounds) for a in active if a.weight > k)


@dataclass(frozen=True)
class Previous:
    """The person's newest earlier lead (within the repeat window) that has an agent."""

    lead_id: int
    agent: str


@dataclass(frozen=True)
class Decision:
    """What to do with one lead.

    ``round_robin``: give it the next turn of ``rotation`` (of the pointer ``pointer``)
    that is not in ``skip``; ``repeat``: give it to ``agent`` (who has ``repeat_of``), no
    turn; ``agent``: give it to ``agent`` (a flow's named agent), no turn; ``offer``: post it
    in ``channel`` (None: the hot-leads channel) for ``claimers`` (empty: any agent) to claim
    within ``claim_timeout`` (None: ``slack.claim_timeout``); ``pond``: unassigned, claimable
    by any agent; ``drip``: no agent, drip campaign; ``unassigned``: nobody to give it to.
    ``flow``/``team``: where it was routed (``default``/None: the whole office);
    ``deadline``: the time the agent has to accept it.
    """

    kind: DecisionKind
    why: str
    agent: str | None = None
    repeat_of: int | None = None
    rotation: tuple[str, ...] = ()
    flow: str = DEFAULT
    team: str | None = None
    pointer: str = "default"
    skip: frozenset[str] = frozenset()
    channel: str | None = None
    claim_timeout: timedelta | None = None
    claimers: tuple[str, ...] = ()
    deadline: timedelta | None = None
    choice: Choice | None = field(default=None, compare=False)


_NO_PLAN = Plan()


def decide(lead: Lead, roster: Roster, previous: Previous | None, *, can_offer: bool,
           plan: Plan = _NO_PLAN, now: datetime | None = None,
           available: Availability | None = None, slack: bool | None = None) -> Decision:
    """Route one lead. ``previous`` is the person's earlier lead, if any; ``can_offer``
    says whether hot leads can be offered in the hot-leads channel (configured, and not
    switched off); ``slack`` whether a team's own channel can be posted to (default:
    ``can_offer``). ``plan`` holds the flows (none: rules 1-5), ``available`` who is working
    at ``now`` (None: everyone)."""
    avail = available or Availability.always()
    now = now or avail.now
    choice = choose(lead, plan, now)
    flow = choice.flow
    name, deadline = choice.name, (flow.deadline if flow else plan.default_deadline)
    placed = {"flow": name, "deadline": deadline, "choice": choice}
    if previous is not None:
        kept = roster.get(previous.agent)
        if kept is not None and kept.active:
            return Decision("repeat", f"repeat inquiry: {kept.name} has this person (lead #{previous.lead_id})",
                            agent=kept.name, repeat_of=previous.lead_id,
                            team=flow.team if flow else None, **placed)  # type: ignore[arg-type]
    if lead.tier == "low" and not (flow and "low" in flow.match.tier):
        return Decision("drip", "low tier: drip campaign", flow=name, choice=choice)
    if flow is None:
        if lead.tier == "hot" and can_offer:
            return Decision("offer", "hot: offered in Slack for claiming", **placed)  # type: ignore[arg-type]
        return _default_turn(roster, avail, f"{lead.tier}: round robin", **placed)  # type: ignore[arg-type]
    why = choice.why
    if flow.method == "pond":
        team = plan.teams.get(flow.team or "")
        return Decision("pond", f"{why}: into the pond", team=flow.team,
                        channel=team.channel if team else None, **placed)  # type: ignore[arg-type]
    if flow.method == "agent":
        assert flow.agent is not None
        agent = roster.get(flow.agent)
        if agent is not None and agent.active and avail.available(agent.name):
            return Decision("agent", f"{why}: to {agent.name}", agent=agent.name, team=flow.team,
                            **placed)  # type: ignore[arg-type]
        gone = avail.why_not(flow.agent) or "inactive"
        return round_robin(roster, plan, flow.team, avail, f"{why}: {flow.agent} is {gone}",
                           **placed)  # type: ignore[arg-type]
    team = plan.teams[flow.team or ""]
    if flow.method == "offer":
        channel = team.channel
        if (channel and (can_offer if slack is None else slack)) or (not channel and can_offer):
            claimers = tuple(a for a in roster.rotation_of(team.agents) if avail.available(a))
            if claimers:
                return Decision("offer", f"{why}: offered to team {team.name} for claiming",
                                team=team.name, channel=channel, claim_timeout=team.claim_timeout,
                                claimers=tuple(dict.fromkeys(claimers)), **placed)  # type: ignore[arg-type]
            why += f": nobody of team {team.name} available to claim"
    return round_robin(roster, plan, team.name, avail, why, **placed)  # type: ignore[arg-type]


def round_robin(roster: Roster, plan: Plan, team: str | None, available: Availability, why: str,
                exclude: Sequence[str] = (), **placed: object) -> Decision:
    """The next turn in ``team``, else in the teams it falls back to, else in the default
    flow; the agents not available (and ``exclude``) skipped."""
    for t in plan.fallbacks(team):
        rotation = roster.rotation_of(t.agents)
        skip = frozenset(a for a in rotation if a in exclude or not available.available(a))
        if rotation and len(skip) < len(set(rotation)):
            return Decision("round_robin", f"{why}: round robin in team {t.name}", rotation=rotation,
                            team=t.name, pointer=f"team:{t.name}", skip=skip, **placed)  # type: ignore[arg-type]
        why += f"; nobody of team {t.name} available"
    if plan.fallbacks(team):
        why += ": the default flow"
    return _default_turn(roster, available, why, exclude=exclude, **placed)


def _default_turn(roster: Roster, available: Availability, why: str, exclude: Sequence[str] = (),
                  **placed: object) -> Decision:
    rotation = roster.rotation()
    if not rotation:
        return Decision("unassigned", "no active agent in the roster", **placed)  # type: ignore[arg-type]
    skip = frozenset(a for a in rotation if a in exclude or not available.available(a))
    if len(skip) == len(set(rotation)):
        if exclude:  # a deadline's move with nobody else to move to
            return Decision("unassigned", f"{why}: nobody else available", **placed)  # type: ignore[arg-type]
        why += " (nobody is available: the next turn anyway)"
        skip = frozenset()
    return Decision("round_robin", why, rotation=rotation, skip=skip, **placed)  # type: ignore[arg-type]


def fallback(roster: Roster, plan: Plan = _NO_PLAN, team: str | None = None,
             available: Availability | None = None, flow: str = DEFAULT,
             deadline: timedelta | None = None) -> Decision:
    """An offer nobody claimed in time: the next round-robin turn in its team (and the
    teams it falls back to, and the default flow), or nobody."""
    rotation = roster.rotation()
    if not rotation:
        return Decision("unassigned", "claim timed out and no agent is active", flow=flow)
    return round_robin(roster, plan, team, available or Availability.always(), "claim timed out",
                       flow=flow, deadline=deadline) if team else \
        _default_turn(roster, available or Availability.always(), "claim timed out: round robin",
                      flow=flow, deadline=deadline)


def may_claim(agent: str, *, status: str, team: str | None, plan: Plan,
              available: Availability) -> str | None:
    """Why ``agent`` may not claim a lead in ``status`` offered to ``team``, or None."""
    if status == "offered" and team is not None and team in plan.teams and agent not in plan.teams[team].agents:
        return f"This lead is offered to team {team}; only its agents can claim it."
    gone = available.why_not(agent)
    if gone:
        return f"You are {gone}, so leadpipe does not give you leads now."
    return None
