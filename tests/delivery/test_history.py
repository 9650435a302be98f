"""``leadpipe deliveries`` and the delivery log of ``leadpipe leads show``
(daemon/cli/deliveries.py, daemon/delivery/history.py), and the daemon delivering to the
CRMs its configuration names, on SQLite and PostgreSQL.

When these fail, a brokerage whose CRM was down for an hour cannot see which leads never
arrived, cannot send them once it is back, or the daemon quietly sends nothing to a CRM
that is configured.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from crmkit import crm_dispatcher, crm_router, drain_until, rows
from crmservers import FubServer, HubSpotServer, WebhookReceiver
from routingkit import add_lead, make_lead

from daemon.cli import main
from daemon.config import Settings
from daemon.service import Service
from notifiers.followupboss import FollowUpBoss
from storage.db import Database

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fub() -> Iterator[FubServer]:
    with FubServer() as server:
        yield server


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_a_crm_down_for_the_whole_run_leaves_every_delivery_dead_listed_and_retry_dead_sends_them(
        db: Database, database_url: str, fub: FubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config = tmp_path / "leadpipe.yaml"
    config.write_text(yaml.safe_dump({
        "database_url": database_url,
        "notifiers": [{"type": "followupboss", "api_key": "k", "base_url": fub.base_url}],
    }))
    cfg = ("--config", str(config))
    router = crm_router(db, {"followupboss": FollowUpBoss})
    lead_ids = [add_lead(db, router, make_lead(n)) for n in range(3)]
    fub.down = True
    dispatcher = crm_dispatcher(db, {"followupboss": FollowUpBoss("k", base_url=fub.base_url, timeout=2)},
                                max_attempts=3)
    drain_until(dispatcher, lambda: all(d.status == "dead" for d in rows(db, notifier="followupboss")))
    assert fub.statuses("events") == [503] * 9 and fub.events == []
    alerts = [d.payload["text"] for d in rows(db, notifier="slack")]
    assert len(alerts) == 3 and all("is dead after 3 attempts" in a for a in alerts)  # the tech channel

    code, out = run(capsys, "deliveries", "list", "--status", "dead", "--json", *cfg)
    listed = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and sorted(d["lead_id"] for d in listed) == lead_ids
    assert {(d["notifier"], d["action"], d["status"], d["attempts"]) for d in listed} == {
        ("followupboss", "event", "dead", 3)}
    code, out = run(capsys, "deliveries", "list", "--status", "dead", "--notifier", "followupboss", *cfg)
    assert "3 deliveries" in out and "deliveries retry" in out
    code, out = run(capsys, "deliveries", "show", str(listed[0]["id"]), *cfg)
    assert code == 0 and out.count("retry     503") + out.count("dead      503") == 3
    assert "Service Unavailable" in out and f"deliveries retry {listed[0]['id']}" in out

    fub.down = False
    code, out = run(capsys, "deliveries", "retry", "--dead", *cfg)
    assert code == 0 and "3 deliveries due again now" in out
    assert {s.fate for s in dispatcher.drain()} == {"delivered"}
    assert len(fub.events) == 3 and all(d.status == "delivered" for d in rows(db, notifier="followupboss"))

    code, out = run(capsys, "leads", "show", str(lead_ids[0]), *cfg)
    assert code == 0 and "deliveries:" in out and "followupboss event: delivered, 4 attempts" in out
    assert "retry     503" in out and "delivered 201" in out

    code, out = run(capsys, "deliveries", "retry", str(listed[0]["id"]), *cfg)
    assert "was delivered already" in out and "0 deliveries due again" in out
    assert main(["deliveries", "retry", "999999", *cfg]) == 1
    assert main(["deliveries", "retry", *cfg]) == 1  # neither IDs nor --dead


def test_the_daemon_sends_each_lead_to_every_configured_crm(database_url: str, tmp_path: Path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(REPO / "fixtures/emails/zillow/current_layout_all_caps.eml", inbox / "lead.eml")
    with FubServer() as fub, HubSpotServer() as hubspot, WebhookReceiver() as hook:
        settings = Settings(
            database_url=database_url, rules_dir=REPO / "rules", inbox_dir=inbox,
            agents=[{"name": "Ana Ruiz", "crm_user_id": "17"}],
            notifiers=[
                {"type": "followupboss", "api_key": "k", "base_url": fub.base_url},
                {"type": "hubspot", "access_token": "t", "base_url": hubspot.base_url},
                {"type": "webhook", "url": hook.url, "secret": "s3cret-s3cret"},
            ])
        service = Service(settings)
        try:
            (result,) = service.run_once()
        finally:
            service.db.dispose()
        assert result.lead_id is not None
        assert len(fub.events) == 1 and fub.events[0]["person"]["assignedUserId"] == 17
        assert len(hubspot.contacts) == 1 and len(hubspot.notes) == 1 and len(hubspot.tasks) == 1
        assert len(hook.named("hook")) == 1


def test_doctor_checks_each_crm_key(database_url: str, fub: FubServer, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]):
    with HubSpotServer() as hubspot:
        config = tmp_path / "leadpipe.yaml"
        config.write_text(yaml.safe_dump({
            "database_url": database_url, "rules_dir": str(REPO / "rules"),
            "notifiers": [{"type": "followupboss", "api_key": "k", "base_url": fub.base_url},
                          {"type": "hubspot", "access_token": "t", "base_url": hubspot.base_url},
                          {"type": "webhook", "url": "https://example.com/x", "secret": "s"}]}))
        hubspot.down = True
        code, out = run(capsys, "doctor", "--config", str(config))
    assert "ok    followupboss: Follow Up Boss: API key of Broker Owner" in out
    assert "FAIL  hubspot: hubspot GET /crm/v3/objects/contacts: 503" in out
    assert "ok    webhook: configured" in out
    assert code == 1
