"""Speed-to-lead figures (daemon/ops/responses.py, ``leadpipe stats``), on SQLite and
PostgreSQL.

When these fail, the owner reads wrong response times: an agent's slow answers hidden, a
lead moved on at its deadline counted as answered, or a claim not counted at all.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from flowkit import FOUR_TEAMS, OFFICE, lead_in, plan_of
from routingkit import Clock, add_lead

from daemon.cli import main
from daemon.delivery.alerts import Alerts
from daemon.ops import responses
from daemon.routing.assign import Router
from daemon.routing.flows import Plan
from storage.db import Database


def scenario(db: Database, tmp_path: Path, database_url: str) -> tuple[Path, Plan]:
    """north_high (Cho, Dee; deadline 5m): Cho accepts in 1 min, Dee in 4 min; a third lead
    Cho misses and Dee accepts 2 min after the move; a hot lead Ana claims after 30 s."""
    config = copy.deepcopy(FOUR_TEAMS)
    for flow in config["routing"]["flows"]:
        flow["deadline"] = "5m"
    config["database_url"] = database_url
    _, plan = plan_of(config, tmp_path)
    clock = Clock()
    router = Router(db, OFFICE, plan=plan, slack=True, offer_hot=True, clock=clock,
                    alerts=Alerts(db, to_slack=True, clock=clock))
    one = add_lead(db, router, lead_in(1, "33140", 800000))  # Cho
    two = add_lead(db, router, lead_in(2, "33140", 800000))  # Dee
    three = add_lead(db, router, lead_in(3, "33140", 800000))  # Cho
    hot = add_lead(db, router, lead_in(4, "90210", 800000, tier="hot"))  # default flow: offered
    clock.advance(seconds=30)
    assert router.claim(hot, "U0ANA").verdict == "won"
    clock.advance(seconds=30)
    assert router.accept(one, "U0CHO") == "accepted"  # 60 s
    clock.advance(minutes=3)
    assert router.accept(two, "U0DEE") == "accepted"  # 240 s
    clock.advance(minutes=2)
    assert router.expire_deadlines() == [three]  # 6 min: Cho missed it, Dee has it
    clock.advance(minutes=2)
    assert router.accept(three, "U0DEE") == "accepted"  # 120 s after the move, 480 s after arrival
    return tmp_path / "leadpipe.yaml", plan


def test_figures_per_agent_team_source_and_flow(db: Database, database_url: str, tmp_path: Path):
    _, plan = scenario(db, tmp_path, database_url)
    got = {(f.by, f.name): f for f in responses.compute(db, plan)}
    cho, dee, ana = got[("agent", "Cho")], got[("agent", "Dee")], got[("agent", "Ana")]
    assert (cho.received, cho.accepted, cho.median, cho.reassigned, cho.within_deadline) == (2, 1, 60.0, 1, 0.5)
    assert (dee.received, dee.accepted, dee.median, dee.within_deadline) == (2, 2, 180.0, 1.0)
    assert (ana.received, ana.claimed, ana.median) == (1, 1, 30.0)
    team = got[("team", "north_high")]
    assert (team.received, team.accepted, team.reassigned, team.times) == (3, 3, 1, (60.0, 240.0, 480.0))
    assert team.median == 240.0 and team.p90 == pytest.approx(432.0)
    assert round(team.within_deadline or 0, 3) == 0.667  # 480 s is past the 5 min
    assert got[("source", "zillow")].received == 4
    assert got[("flow", "north-high")].received == 3 and got[("flow", "default")].claimed == 1


def test_leadpipe_stats_prints_the_response_times(db: Database, database_url: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]):
    config, _ = scenario(db, tmp_path, database_url)
    db.dispose()
    period = "30d"
    assert main(["stats", "--config", str(config), "--period", period]) == 0
    text = capsys.readouterr().out
    assert f"time to accept per agent, last {period} (from its assignment)" in text
    assert "time to accept per team" in text and "north_high" in text and "67 %" in text
    assert main(["stats", "--config", str(config), "--period", period, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    answers = {(r["by"], r["name"]): r for r in rows if r["window"] == f"responses-{period}"}
    assert answers[("agent", "Cho")]["reassigned"] == 1
    assert main(["stats", "--config", str(config), "--period", "soon"]) == 1
    assert yaml.safe_load(config.read_text())["teams"]
