"""The daemon's periodic checks (daemon/service.py).

When these fail, a mailbox watcher can die or go quiet while the daemon looks alive,
and nobody hears about it until an agent asks where the leads went.
"""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from slackserver import SlackServer

from daemon.config import Settings, load_settings
from daemon.service import Service
from storage import mailboxes, outbox

REPO = Path(__file__).resolve().parents[2]


def service(database_url: str, tmp_path: Path) -> Service:
    settings = Settings(
        database_url=database_url,
        rules_dir=REPO / "rules",
        inbox_dir=tmp_path / "inbox",
        mailboxes=[{
            "name": "leads", "host": "127.0.0.1", "port": 9, "security": "none",
            "username": "u", "password": "p", "alert_after": "10m",
        }],
    )
    return Service(settings)


def test_a_mailbox_that_went_quiet_without_an_error_is_alerted_once(database_url: str, tmp_path: Path):
    svc = service(database_url, tmp_path)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    with svc.db.session() as s:
        mailboxes.record_contact(s, "leads", "INBOX", long_ago)

    first = svc.check_watchers()
    second = svc.check_watchers()

    assert len(first) == 1 and "no contact with the server" in first[0] and "leads" in first[0]
    assert second == []  # one alert per silence, not one every 30 s
    with svc.db.session() as s:
        mailboxes.record_contact(s, "leads", "INBOX", datetime.now(UTC))
    assert svc.check_watchers() == []  # contact again: healthy, and the next silence alerts anew


def test_a_mailbox_in_recent_contact_raises_no_alert(database_url: str, tmp_path: Path):
    svc = service(database_url, tmp_path)
    with svc.db.session() as s:
        mailboxes.record_contact(s, "leads", "INBOX", datetime.now(UTC) - timedelta(minutes=2))
    assert svc.check_watchers() == []


def test_a_watcher_thread_that_died_is_restarted_and_reported(database_url: str, tmp_path: Path):
    svc = service(database_url, tmp_path)
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    svc._threads["leads"] = dead

    alerts = svc.check_watchers()

    try:
        assert any("watcher stopped unexpectedly; restarted" in a for a in alerts)
        assert svc._threads["leads"] is not dead and svc._threads["leads"].is_alive()
    finally:
        svc.stop.set()
        svc._threads["leads"].join(timeout=10)
    assert not svc._threads["leads"].is_alive()


# -- routing and Slack in the daemon (issue 5) ---------------------------------------------

HOT_EMAIL = REPO / "fixtures" / "emails" / "trulia" / "html_definition_list.eml"
AGENTS = [{"name": "Ana Ruiz", "slack_user_id": "U0ANA"}, {"name": "Ben Okafor", "slack_user_id": "U0BEN"}]


def routed_service(database_url: str, tmp_path: Path, slack_url: str, **extra: object) -> Service:
    config = {
        "database_url": database_url, "rules_dir": str(REPO / "rules"),
        "inbox_dir": str(tmp_path / "inbox"), "agents": AGENTS,
        "slack": {"bot_token": "xoxb-test", "base_url": slack_url, "hot_leads_channel": "C0HOT",
                  "alerts_channel": "C0ALERTS"},
        **extra,
    }
    path = tmp_path / "leadpipe.yaml"
    path.write_text(yaml.safe_dump(config))
    return Service(load_settings(path), config_path=path)


def test_run_once_routes_a_hot_lead_and_posts_its_claim_message(database_url: str, tmp_path: Path):
    with SlackServer() as slack:
        svc = routed_service(database_url, tmp_path, slack.base_url)
        (tmp_path / "inbox").mkdir()
        shutil.copy(HOT_EMAIL, tmp_path / "inbox" / "hot.eml")
        (result,) = svc.run_once()
        (posted,) = slack.named("chat.postMessage")
        assert posted.body["channel"] == "C0HOT"
        assert f"'value': '{result.lead_id}'" in str(posted.body["blocks"])
        svc.run_once()  # a second run (a restart) posts nothing again
        assert len(slack.named("chat.postMessage")) == 1
        svc.db.dispose()


def test_alerts_reach_the_tech_channel(database_url: str, tmp_path: Path):
    with SlackServer() as slack:
        svc = routed_service(database_url, tmp_path, slack.base_url)
        svc.alert("mailbox leads: no contact with the server since never")
        svc.dispatcher.drain()
        (posted,) = slack.named("chat.postMessage")
        assert posted.body["channel"] == "C0ALERTS" and "no contact" in posted.body["text"]
        svc.db.dispose()


def test_an_edited_agents_list_applies_without_a_restart(database_url: str, tmp_path: Path):
    svc = routed_service(database_url, tmp_path, "http://127.0.0.1:9/api/")
    path = tmp_path / "leadpipe.yaml"
    assert svc.reload_agents() is False  # unchanged
    config = yaml.safe_load(path.read_text())
    config["agents"][0]["active"] = False
    config["agents"].append({"name": "Cho Park", "slack_user_id": "U0CHO", "weight": 2})
    path.write_text(yaml.safe_dump(config))
    assert svc.reload_agents() is True
    assert svc.router.roster.rotation() == ("Ben Okafor", "Cho Park", "Cho Park")
    path.write_text(path.read_text() + "\nagents: [{nme: typo}]\n")  # broken: kept, alerted
    assert svc.reload_agents() is False
    assert svc.router.roster.rotation() == ("Ben Okafor", "Cho Park", "Cho Park")
    with svc.db.session() as s:
        (alert,) = outbox.listing(s, notifier="slack")
    assert "does not load; the agents in force are kept" in alert.payload["text"]
    svc.db.dispose()
