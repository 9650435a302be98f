"""Lead flows for the routing tests: a brokerage of four teams, and plans built from YAML
the way the daemon builds them (``load_settings`` → ``load_plan``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from routingkit import START, make_lead

from daemon.config import Settings, load_settings
from daemon.lead import Lead, Property
from daemon.routing.decide import Agent, Roster
from daemon.routing.flows import Plan, load_plan

NAMES = ("Ana", "Ben", "Cho", "Dee", "Eve", "Fay", "Gus", "Hal")
OFFICE = Roster(tuple(Agent(n, slack_user_id=f"U0{n.upper()}", weight=2 if n == "Ana" else 1)
                      for n in NAMES))

#: two areas (north 331*, south 333*) × two price bands (under / from 500,000): four teams
FOUR_TEAMS: dict[str, Any] = {
    "agents": [{"name": a.name, "slack_user_id": a.slack_user_id, "weight": a.weight}
               for a in OFFICE.agents],
    "teams": [
        {"name": "north_low", "agents": ["Ana", "Ben"]},
        {"name": "north_high", "agents": ["Cho", "Dee"]},
        {"name": "south_low", "agents": ["Eve", "Fay"]},
        {"name": "south_high", "agents": ["Gus", "Hal"]},
    ],
    "routing": {"flows": [
        {"name": "north-low", "match": {"postal_codes": ["331*"], "price": {"max": 500000}}, "team": "north_low"},
        {"name": "north-high", "match": {"postal_codes": ["331*"], "price": {"min": 500000}}, "team": "north_high"},
        {"name": "south-low", "match": {"postal_codes": ["333*"], "price": {"max": 500000}}, "team": "south_low"},
        {"name": "south-high", "match": {"postal_codes": ["333*"], "price": {"min": 500000}}, "team": "south_high"},
    ]},
}


def plan_of(config: dict[str, Any], tmp_path: Path, name: str = "leadpipe.yaml") -> tuple[Settings, Plan]:
    """The settings and plan of ``config`` written to a file (so errors carry lines)."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    settings = load_settings(path)
    return settings, load_plan(settings)


def lead_in(n: int, postal_code: str, price: float, *, tier: str = "standard", **kw: Any) -> Lead:
    lead = make_lead(n, tier)
    return replace(lead, property=Property(address="1 Main St", city="Miami", state="FL",
                                           postal_code=postal_code, price=price), **kw)


__all__ = ["FOUR_TEAMS", "OFFICE", "START", "lead_in", "plan_of"]
