"""Lead flows and teams: which team works a lead, and how it is given to one of them.

The configuration holds them beside the agents they name (README "Lead flows"):

```yaml
teams:
  - {name: buyers_north, agents: [Ana Ruiz, Ben Okafor], fallback: buyers_south}
  - {name: leasing, agents: [Cho Park], channel: C0LEASING, claim_timeout: 3m}
routing:
  time_zone: America/New_York        # the office's clock, for flows' `time`
  flows:                             # first match wins; no match: the default flow
    - {name: rentals, match: {intent: rent}, team: leasing, method: offer}
    - {name: north, match: {postal_codes: ["331*"]}, team: buyers_north, deadline: 5m}
```

A flow matches on ``source`` (globs), ``tier``, ``intent``, ``postal_codes`` (exact, or a
prefix ending in ``*``), ``city``, ``state``, ``price`` (``min`` inclusive, ``max``
exclusive; the property's price, else the top of the budget, else its bottom),
``language`` (of the message, ``daemon/routing/language.py``) and ``time`` (days and hours on
the office's clock). Every condition given must hold; a flow with no ``match`` takes every
lead. The lead has no property type, so there is no condition on one.

The default flow — the one a lead no flow matches takes, and the only one with no flows
configured — is today's single rotation: every active agent, hot leads offered in
``slack.hot_leads_channel``, the ``default`` pointer.

``load_plan`` checks it all once (at start and on every reload), naming ``file:line: key``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from daemon import yamlfile
from daemon.config import Settings, parse_duration
from daemon.errors import ConfigError
from daemon.lead import Lead
from daemon.routing import availability, language
from daemon.yamlfile import AtKey

Method = Literal["round_robin", "offer", "agent", "pond"]
DEFAULT = "default"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _checked_by(check: Callable[[str], object]) -> Callable[[str], str]:
    """A field validator that keeps the text as written once ``check`` (which raises
    ``ValueError`` naming what is wrong) has accepted it."""

    def validate(v: str) -> str:
        check(v)
        return v

    return validate


def _listed(v: Any) -> Any:
    return [v] if isinstance(v, str | int | float) else v


class PriceRange(_Strict):
    """``min`` inclusive, ``max`` exclusive, in dollars; either may be left out."""

    min: float | None = Field(None, ge=0)
    max: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> PriceRange:
        if self.min is not None and self.max is not None and self.max <= self.min:
            raise ValueError(f"max ({self.max:g}) must be above min ({self.min:g})")
        return self


class TimeWindow(_Strict):
    """Days and hours on the office's clock (``routing.time_zone``): ``{days: mon-fri,
    hours: "08:00-20:00"}``."""

    days: str = "daily"
    hours: str = "00:00-24:00"

    _days = field_validator("days")(_checked_by(lambda v: [availability.day_range(p) for p in v.split(",")]))
    _hours = field_validator("hours")(_checked_by(availability.parse_spans))


class Match(_Strict):
    """What a flow takes; every condition given must hold."""

    source: tuple[str, ...] = ()
    tier: tuple[Literal["hot", "standard", "low"], ...] = ()
    intent: tuple[Literal["buy", "sell", "rent"], ...] = ()
    postal_codes: tuple[str, ...] = ()
    city: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    price: PriceRange | None = None
    language: tuple[str, ...] = ()
    time: TimeWindow | None = None

    _lists = field_validator("source", "tier", "intent", "postal_codes", "city", "state",
                             "language", mode="before")(_listed)

    @field_validator("postal_codes", mode="after")
    @classmethod
    def _codes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for code in v:
            body = str(code).removesuffix("*")
            if not body.isalnum() or "*" in body:
                raise ValueError(f"not a postal code or prefix: {code!r} (write 33101 or 331*)")
        return tuple(str(c) for c in v)

    def is_empty(self) -> bool:
        return self == Match()


class TeamSpec(_Strict):
    """A team: its agents (round-robin order, their weights), its Slack channel for offers
    and the pond, its claim timeout, where its leads go when none of them can take one."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    agents: tuple[str, ...] = Field(min_length=1)
    channel: str | None = None
    claim_timeout: timedelta | None = None
    #: another team's name, or ``default`` (the whole office); None: the default flow
    fallback: str | None = None
    #: the team lead: told by DM when an agent misses ``routing.miss_alert_after`` deadlines a day
    lead: str | None = None

    _durations = field_validator("claim_timeout", mode="before")(
        lambda v: None if v is None else parse_duration(v))


class FlowSpec(_Strict):
    """One flow: what it takes, the team, and the method."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,60}$")
    match: Match = Field(default_factory=Match)
    team: str | None = None
    method: Method = "round_robin"
    #: for ``method: agent``: the one agent
    agent: str | None = None
    #: unaccepted this long after it is given to an agent: the team's next agent gets it
    deadline: timedelta | None = None

    _durations = field_validator("deadline", mode="before")(
        lambda v: None if v is None else parse_duration(v))

    @model_validator(mode="after")
    def _named(self) -> FlowSpec:
        if self.method == "agent" and not self.agent:
            raise AtKey(("agent",), "method: agent needs the agent's name")
        if self.method != "agent" and self.agent:
            raise AtKey(("agent",), f"agent is for method: agent (this flow's method is {self.method})")
        if self.method in ("round_robin", "offer") and not self.team:
            raise AtKey(("team",), f"method: {self.method} needs a team")
        return self


class _AgentPart(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str
    time_zone: str | None = None
    hours: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _hours(self) -> _AgentPart:
        if self.time_zone:
            try:
                availability.zone(self.time_zone)
            except ValueError as exc:
                raise AtKey(("time_zone",), str(exc)) from exc
        for day, text in self.hours.items():
            try:
                availability.hours_of(self.time_zone, {day: text})
            except ValueError as exc:
                raise AtKey(("hours", day), str(exc)) from exc
        return self


class _RoutingPart(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    flows: tuple[FlowSpec, ...] = ()
    time_zone: str = "UTC"

    _zone = field_validator("time_zone")(_checked_by(availability.zone))


class _Root(BaseModel):
    """The parts of the configuration flows live in, laid out as in the file (so problems
    name the file's keys)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    agents: tuple[_AgentPart, ...] = ()
    teams: tuple[TeamSpec, ...] = ()
    routing: _RoutingPart = Field(default_factory=_RoutingPart)

    @model_validator(mode="after")
    def _names(self) -> _Root:
        agents = {a.name for a in self.agents}
        teams: dict[str, int] = {}
        for i, t in enumerate(self.teams):
            if t.name in teams or t.name == DEFAULT:
                raise AtKey(("teams", i, "name"), f"{t.name!r} is taken (by another team, or the default flow)")
            teams[t.name] = i
            for j, a in enumerate(t.agents):
                if a not in agents:
                    raise AtKey(("teams", i, "agents", j), f"unknown agent {a!r}{_near(a, agents)}")
            if t.lead is not None and t.lead not in agents:
                raise AtKey(("teams", i, "lead"), f"unknown agent {t.lead!r}{_near(t.lead, agents)}")
        for i, t in enumerate(self.teams):
            if t.fallback not in (None, DEFAULT) and t.fallback not in teams:
                raise AtKey(("teams", i, "fallback"),
                            f"unknown team {t.fallback!r}{_near(t.fallback, teams)} (or write default)")
            if t.fallback == t.name:
                raise AtKey(("teams", i, "fallback"), "a team cannot fall back to itself")
        seen: set[str] = set()
        for i, f in enumerate(self.routing.flows):
            at = ("routing", "flows", i)
            if f.name in seen or f.name == DEFAULT:
                raise AtKey((*at, "name"), f"{f.name!r} is taken (by another flow, or the default flow)")
            seen.add(f.name)
            if f.team is not None and f.team not in teams:
                raise AtKey((*at, "team"), f"unknown team {f.team!r}{_near(f.team, teams)}")
            if f.agent is not None and f.agent not in agents:
                raise AtKey((*at, "agent"), f"unknown agent {f.agent!r}{_near(f.agent, agents)}")
        return self


def _near(name: str, known: Any) -> str:
    return yamlfile.did_you_mean(name, sorted(known))


@dataclass(frozen=True)
class Plan:
    """The flows in order, the teams by name, the agents' hours, the office's time zone."""

    flows: tuple[FlowSpec, ...] = ()
    teams: Mapping[str, TeamSpec] = field(default_factory=dict)
    hours: Mapping[str, availability.Hours] = field(default_factory=dict)
    time_zone: str = "UTC"
    #: the default flow's deadline to accept (``routing.accept_deadline``)
    default_deadline: timedelta | None = None
    #: a day's missed deadlines that alert the team lead
    miss_alert_after: int = 3

    def flow(self, name: str | None) -> FlowSpec | None:
        return next((f for f in self.flows if f.name == name), None)

    def fallbacks(self, team: str | None) -> list[TeamSpec]:
        """``team`` and the teams it falls back to, in order (each once); the default flow
        (the whole office) is what comes after the last."""
        out: list[TeamSpec] = []
        while team is not None and team != DEFAULT and team in self.teams and \
                all(t.name != team for t in out):
            out.append(self.teams[team])
            team = self.teams[team].fallback
        return out


def load_plan(settings: Settings) -> Plan:
    """The flows, teams and hours of ``settings``, checked; raises ``ConfigError`` listing
    each problem as ``file:line: key: what``."""
    doc, env = settings._origin or (yamlfile.YamlDocument(data={}, file="(configuration)"), {})
    data = {
        "agents": [{"name": a.name, "time_zone": a.time_zone, "hours": dict(a.hours)} for a in settings.agents],
        "teams": list(settings.teams),
        "routing": {"flows": list(settings.routing.flows), "time_zone": settings.routing.time_zone},
    }
    try:
        root = _Root.model_validate(data)
    except ValidationError as exc:
        lines = [str(p) for p in yamlfile.problems(doc, exc, model=_Root, elsewhere=env)]
        raise ConfigError("bad routing configuration:\n  " + "\n  ".join(lines)) from exc
    return Plan(
        flows=root.routing.flows,
        teams={t.name: t for t in root.teams},
        hours={a.name: availability.hours_of(a.time_zone, a.hours) for a in root.agents
               if a.hours or a.time_zone},
        time_zone=root.routing.time_zone,
        default_deadline=settings.routing.accept_deadline,
        miss_alert_after=settings.routing.miss_alert_after,
    )


# -- matching -------------------------------------------------------------------------------


def lead_price(lead: Lead) -> float | None:
    """The price a lead is about: the property's, else the top of its budget, else the bottom."""
    for v in (lead.property.price, lead.budget_max, lead.budget_min):
        if v is not None:
            return float(v)
    return None


def _postal_hit(code: str, patterns: tuple[str, ...]) -> str | None:
    for p in patterns:
        if (p.endswith("*") and code.startswith(p[:-1])) or code == p:
            return p
    return None


def conditions(flow: FlowSpec, lead: Lead, now: datetime, time_zone: str = "UTC") -> list[tuple[bool, str]]:
    """Each condition of ``flow`` checked on ``lead`` at ``now``: (held, why)."""
    m, out = flow.match, []
    if m.source:
        src = lead.source.lower()
        hit = next((g for g in m.source if fnmatch.fnmatchcase(src, g.lower())), None)
        out.append((hit is not None, f"source {lead.source} {'matches ' + hit if hit else 'not in ' + ', '.join(m.source)}"))
    if m.tier:
        out.append((lead.tier in m.tier, f"tier {lead.tier} {'in' if lead.tier in m.tier else 'not in'} {', '.join(m.tier)}"))
    if m.intent:
        ok = lead.intent in m.intent
        out.append((ok, f"intent {lead.intent or 'unknown'} {'in' if ok else 'not in'} {', '.join(m.intent)}"))
    if m.postal_codes:
        code = (lead.property.postal_code or "").strip()[:5]
        hit = _postal_hit(code, m.postal_codes) if code else None
        out.append((hit is not None, f"postal code {code or 'unknown'} "
                    f"{'matches ' + hit if hit else 'not in ' + ', '.join(m.postal_codes)}"))
    for key, value in (("city", lead.property.city), ("state", lead.property.state)):
        wanted = getattr(m, key)
        if wanted:
            ok = value is not None and value.strip().lower() in {w.lower() for w in wanted}
            out.append((ok, f"{key} {value or 'unknown'} {'in' if ok else 'not in'} {', '.join(wanted)}"))
    if m.price is not None:
        price = lead_price(lead)
        lo, hi = m.price.min, m.price.max
        ok = price is not None and (lo is None or price >= lo) and (hi is None or price < hi)
        band = f"[{'' if lo is None else f'{lo:,.0f}'}, {'' if hi is None else f'{hi:,.0f}'})"
        out.append((ok, f"price {'unknown' if price is None else f'{price:,.0f}'} {'in' if ok else 'not in'} {band}"))
    if m.language:
        lang = language.detect(lead.message)
        ok = lang in m.language
        out.append((ok, f"language {lang or 'unknown'} {'in' if ok else 'not in'} {', '.join(m.language)}"))
    if m.time is not None:
        hours = availability.hours_of(time_zone, {d.strip(): m.time.hours for d in m.time.days.split(",")})
        ok = hours.working(now)
        local = now.astimezone(ZoneInfo(time_zone))
        out.append((ok, f"time {local:%a %H:%M} {'in' if ok else 'not in'} {m.time.days} {m.time.hours}"))
    return out


@dataclass(frozen=True)
class Choice:
    """The flow a lead takes (``None``: the default flow) and why, flow by flow."""

    flow: FlowSpec | None
    why: str
    tried: tuple[tuple[str, bool, tuple[str, ...]], ...] = ()

    @property
    def name(self) -> str:
        return self.flow.name if self.flow else DEFAULT


def choose(lead: Lead, plan: Plan, now: datetime) -> Choice:
    """The first flow of ``plan`` whose every condition holds for ``lead`` at ``now``."""
    tried = []
    for f in plan.flows:
        checks = conditions(f, lead, now, plan.time_zone)
        ok = all(held for held, _ in checks)
        tried.append((f.name, ok, tuple(why for _, why in checks)))
        if ok:
            why = "; ".join(w for _, w in checks) or "matches every lead"
            return Choice(f, f"flow {f.name}: {why}", tuple(tried))
    return Choice(None, "no flow matched: the default flow" if plan.flows else "the default flow",
                  tuple(tried))
