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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from daemon.lead import Lead

DecisionKind = Literal["round_robin", "repeat", "offer", "drip", "unassigned"]


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
        active = self.active()
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

    ``round_robin``: give it the next turn of ``rotation``; ``repeat``: give it to
    ``agent`` (who has ``repeat_of``), no turn; ``offer``: post it for claiming;
    ``drip``: no agent, drip campaign; ``unassigned``: nobody to give it to.
    """

    kind: DecisionKind
    why: str
    agent: str | None = None
    repeat_of: int | None = None
    rotation: tuple[str, ...] = ()


def decide(lead: Lead, roster: Roster, previous: Previous | None, *, can_offer: bool) -> Decision:
    """Route one lead. ``previous`` is the person's earlier lead, if any; ``can_offer``
    says whether hot leads can be offered in Slack (configured, and not switched off)."""
    if previous is not None:
        kept = roster.get(previous.agent)
        if kept is not None and kept.active:
            return Decision("repeat", f"repeat inquiry: {kept.name} has this person (lead #{previous.lead_id})",
                            agent=kept.name, repeat_of=previous.lead_id)
    if lead.tier == "low":
        return Decision("drip", "low tier: drip campaign")
    if lead.tier == "hot" and can_offer:
        return Decision("offer", "hot: offered in Slack for claiming")
    rotation = roster.rotation()
    if not rotation:
        return Decision("unassigned", "no active agent in the roster")
    return Decision("round_robin", f"{lead.tier}: round robin", rotation=rotation)


def fallback(roster: Roster) -> Decision:
    """An offer nobody claimed in time: the next round-robin turn, or nobody."""
    rotation = roster.rotation()
    if not rotation:
        return Decision("unassigned", "claim timed out and no agent is active")
    return Decision("round_robin", "claim timed out: round robin", rotation=rotation)
