"""``leadpipe stats`` (daemon/ops/stats.py): per-source figures over 24 h and 7 d.

When these fail, the numbers a broker reads to judge a portal (how many leads, how many
lost as dead letters, how fast they reach an agent and get claimed) are wrong.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml
from slackserver import SlackServer

from daemon.cli import main
from daemon.config import load_settings
from daemon.service import Service

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "emails"
EMAILS = ["trulia/html_definition_list", "realtor/text_layout", "realtor/courtesy_lead_html",
          "_hostile/zillow_no_phone_no_email", "_hostile/empty_body"]


def test_stats_count_each_source_and_time_its_routing_and_claims(
        database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    arrived = time.time() - 30  # each email arrived 30 s before it is taken in
    for i, name in enumerate(EMAILS):
        shutil.copy(FIXTURES / f"{name}.eml", inbox / f"{i}.eml")
        os.utime(inbox / f"{i}.eml", (arrived, arrived))
    with SlackServer() as slack:
        config = tmp_path / "leadpipe.yaml"
        config.write_text(yaml.safe_dump({
            "database_url": database_url, "rules_dir": str(REPO / "rules"), "inbox_dir": str(inbox),
            "agents": [{"name": "Ana Ruiz", "slack_user_id": "U0ANA"}],
            "slack": {"bot_token": "xoxb-test", "base_url": slack.base_url, "hot_leads_channel": "C0HOT"},
        }))
        service = Service(load_settings(config))
        results = service.run_once()
        hot = next(r for r in results if getattr(r.outcome, "tier", None) == "hot")
        assert hot.lead_id is not None and service.router.claim(hot.lead_id, "U0ANA").verdict == "won"
        service.db.dispose()
        assert main(["stats", "--json", "--config", str(config)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    day = {r["source"]: r for r in rows if r["window"] == "24h"}
    week = {r["source"]: r for r in rows if r["window"] == "7d"}
    assert set(day) == set(week) == {"trulia", "realtor", "zillow", "unknown"}
    assert (day["realtor"]["emails"], day["realtor"]["leads"], day["realtor"]["dead_letters"]) == (2, 2, 0)
    assert (day["zillow"]["emails"], day["zillow"]["leads"], day["zillow"]["dead_letters"]) == (1, 0, 1)
    assert day["unknown"]["dead_letters"] == 1
    assert 29 <= day["realtor"]["route_median"] <= day["realtor"]["route_p95"] < 120
    assert 29 <= day["trulia"]["route_median"] < 120  # hot: routed when offered in Slack
    assert day["trulia"]["claim_median"] is not None and day["trulia"]["claim_median"] < 60
    assert day["realtor"]["claim_median"] is None and day["zillow"]["route_median"] is None
    assert week["realtor"] == {**day["realtor"], "window": "7d"}


def test_stats_as_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config = tmp_path / "leadpipe.yaml"
    config.write_text(f"database_url: sqlite:///{tmp_path}/lp.db\n")
    assert main(["db", "upgrade", "--config", str(config)]) == 0  # stats creates no database
    assert main(["stats", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "last 24h: nothing received" in out and "last 7d: nothing received" in out
