"""``leadpipe agents`` (daemon/routing/roster.py): the roster with today's counts.

When these fail, a broker cannot see who got how many leads today, or who is next.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from routingkit import START, Clock, add_lead, make_lead

from daemon.cli import main
from daemon.config import Settings
from daemon.routing import roster
from daemon.routing.assign import Router
from daemon.routing.decide import Roster
from storage.db import Database

AGENTS = [
    {"name": "Ana Ruiz", "slack_user_id": "U0ANA", "crm_user_id": "17"},
    {"name": "Ben Okafor", "slack_user_id": "U0BEN", "weight": 2},
    {"name": "Cho Park", "slack_user_id": "U0CHO", "active": False},
]


def test_today_counts_assignments_claims_repeats_and_drip(db: Database):
    settings = Settings(database_url=str(db.url.render_as_string(hide_password=False)), agents=AGENTS)
    clock = Clock()
    router = Router(db, Roster.of(settings.agents), clock=clock, slack=True, offer_hot=True)
    for n in range(4):
        add_lead(db, router, make_lead(n))  # Ana, Ben, Ben, Ana
    add_lead(db, router, make_lead(10, phone="+13055550000"))  # repeat of lead 0 → Ana
    add_lead(db, router, make_lead(20, "low"))
    hot = add_lead(db, router, make_lead(30, "hot"))
    assert roster.today(settings, db, now=START + timedelta(hours=1)).offered == 1
    router.claim(hot, "U0BEN")
    add_lead(db, router, make_lead(31, "hot"))  # offered, nobody has claimed it yet
    report = roster.today(settings, db, now=START + timedelta(hours=1))
    got = {a.name: (a.assigned, a.claimed, a.repeat, a.next_up) for a in report.agents}
    assert got == {"Ana Ruiz": (2, 0, 1, False), "Ben Okafor": (2, 1, 0, True),
                   "Cho Park": (0, 0, 0, False)}
    # the claimed lead is no longer counted as offered; the unclaimed one is
    assert (report.drip, report.offered) == (1, 1)
    tomorrow = roster.today(settings, db, now=START + timedelta(days=1))
    assert sum(a.assigned for a in tomorrow.agents) == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_leadpipe_agents_lists_the_roster(database_url: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]):
    config = tmp_path / "leadpipe.yaml"
    config.write_text(yaml.safe_dump({"database_url": database_url, "agents": AGENTS}))
    assert main(["db", "upgrade", "--config", str(config)]) == 0  # agents creates no database
    assert main(["agents", "--config", str(config)]) == 0
    table = capsys.readouterr().out
    for shown in ("Ana Ruiz", "U0BEN", "Cho Park", "drip (low tier, no agent): 0"):
        assert shown in table
    assert main(["agents", "--config", str(config), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["name"] for x in lines] == ["Ana Ruiz", "Ben Okafor", "Cho Park"]
    assert lines[0]["next_up"] is True and lines[2]["active"] is False
