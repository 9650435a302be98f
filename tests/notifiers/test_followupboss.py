"""Follow Up Boss (notifiers/followupboss.py) through the outbox, against a local server
speaking FUB's ``/v1/events``, on SQLite and PostgreSQL.

When these fail, a lead never reaches the brokerage's CRM, reaches it twice, lands on the
wrong agent or without its property, is retried before FUB allows, or an archived lead
flow swallows leads without anyone hearing about it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from crmkit import all_delivered, crm_dispatcher, crm_router, drain_until, rows
from crmservers import FubServer
from routingkit import add_lead, make_lead

from daemon.config import Settings
from daemon.delivery.dispatch import build_notifiers
from daemon.errors import ConfigError
from daemon.lead import Lead, Property
from notifiers.base import RateLimit
from notifiers.followupboss import FollowUpBoss, event_type
from storage import outbox
from storage.db import Database


@pytest.fixture
def fub() -> Iterator[FubServer]:
    with FubServer() as server:
        yield server


def fub_notifier(server: FubServer, **kw: object) -> FollowUpBoss:
    options = {"api_key": "fub-key", "base_url": server.base_url, "system": "leadpipe-test",
               "system_key": "sys-key", "timeout": 2, **kw}
    return FollowUpBoss.from_config(options)


def test_a_routed_lead_becomes_exactly_one_event_on_its_agent_with_tags_and_property(db: Database, fub: FubServer):
    router = crm_router(db, {"followupboss": FollowUpBoss})
    lead_id = add_lead(db, router, make_lead(1))
    dispatcher = crm_dispatcher(db, {"followupboss": fub_notifier(fub)})
    sent = dispatcher.drain()
    assert [(s.action, s.fate) for s in sent] == [("event", "delivered")]
    assert dispatcher.drain() == []

    (call,) = fub.named("events")
    user, _, _ = base64.b64decode(call.headers["Authorization"][6:]).decode().partition(":")
    assert user == "fub-key"
    assert (call.headers["X-System"], call.headers["X-System-Key"]) == ("leadpipe-test", "sys-key")
    body = call.body
    assert body["type"] == "Property Inquiry" and body["source"] == "zillow" and body["system"] == "leadpipe-test"
    assert body["message"].startswith("Can I see it this week?\n\n— score 50 (standard) · "
                                      "budget $500,000–$700,000 · assigned to Ana Ruiz "
                                      "<ana@example.com>, CRM user 17 (round_robin)")
    assert body["person"] == {"firstName": "Dana", "lastName": "Lee1",
                              "emails": [{"value": "dana1@example.com"}],
                              "phones": [{"value": "+13055550001"}],
                              "tags": ["standard"], "assignedUserId": 17}
    assert body["property"] == {"street": "12 Palm Ave", "city": "Miami", "state": "FL",
                                "code": "33101", "price": 650000}
    (row,) = rows(db, lead_id=lead_id)
    assert (row.status, row.idempotency_key) == ("delivered", f"lead:{lead_id}:followupboss:event")
    assert row.result == {"event_id": fub.events[0]["id"], "person_id": fub.people[0]["id"]}
    assert len(fub.people) == 1


def test_a_low_lead_goes_to_drip_tagged_drip_with_no_agent(db: Database, fub: FubServer):
    router = crm_router(db, {"followupboss": FollowUpBoss})
    add_lead(db, router, make_lead(2, "low"))
    crm_dispatcher(db, {"followupboss": fub_notifier(fub)}).drain()
    (call,) = fub.named("events")
    assert call.body["person"]["tags"] == ["low", "drip"]
    assert "assignedUserId" not in call.body["person"]


def test_a_repeat_inquiry_is_a_second_event_on_the_same_person(db: Database, fub: FubServer):
    router = crm_router(db, {"followupboss": FollowUpBoss})
    add_lead(db, router, make_lead(3))
    add_lead(db, router, replace(make_lead(3), message_id="<again@x>", message="Still available?"))
    crm_dispatcher(db, {"followupboss": fub_notifier(fub)}).drain()
    assert len(fub.events) == 2 and len(fub.people) == 1
    assert [e["person"]["assignedUserId"] for e in fub.events] == [17, 17]  # the repeat keeps Ana


@pytest.mark.parametrize(("lead", "expected"), [
    (Lead("x", "1", intent="sell", property=Property(address="1 Main St")), "Seller Inquiry"),
    (Lead("x", "1", intent="buy", property=Property(mls_id="A123")), "Property Inquiry"),
    (Lead("x", "1", property=Property(url="https://homes.example/1")), "Property Inquiry"),
    (Lead("x", "1", message="Do you have condos?", property=Property(city="Miami")), "General Inquiry"),
    (Lead("x", "1", intent="rent"), "General Inquiry"),
    (Lead("x", "1", email="a@b.example"), "Registration"),
])
def test_the_event_type_follows_the_lead(lead: Lead, expected: str):
    assert event_type(lead) == expected


def test_an_archived_lead_flow_is_recorded_as_ignored_not_retried_and_alerted_once(db: Database, fub: FubServer):
    fub.archived.add("zillow")
    router = crm_router(db, {"followupboss": FollowUpBoss})
    first = add_lead(db, router, make_lead(4))
    second = add_lead(db, router, make_lead(5))
    dispatcher = crm_dispatcher(db, {"followupboss": fub_notifier(fub)})
    assert [s.fate for s in dispatcher.drain()] == ["delivered", "delivered"]
    assert dispatcher.drain() == [] and fub.statuses("events") == [204, 204]
    (row,) = rows(db, lead_id=first)
    assert row.status == "delivered" and "archived" in (row.result or {})["ignored"]
    with db.session() as s:
        (attempt,) = outbox.attempts(s, row.id)
    assert attempt.status_code == 204
    alerts = [d for d in rows(db, notifier="slack") if d.action == "alert"]
    assert len(alerts) == 1  # once per source, not once per lead
    assert f"lead #{first}" in alerts[0].payload["text"] and "'zillow' is archived" in alerts[0].payload["text"]
    assert rows(db, lead_id=second)[0].status == "delivered"


def test_429_then_503_then_a_timeout_then_success_is_one_event_no_earlier_than_retry_after(db: Database, fub: FubServer):
    router = crm_router(db, {"followupboss": FollowUpBoss})
    lead_id = add_lead(db, router, make_lead(6))
    fub.fail_next("events", 429, retry_after=1)
    fub.fail_next("events", 503)
    fub.fail_next("events", 503, hang=1.5)  # answers after the client's 0.3 s read timeout
    dispatcher = crm_dispatcher(db, {"followupboss": fub_notifier(fub, timeout=0.3)})
    sent = drain_until(dispatcher, all_delivered(db, "followupboss"))
    assert [s.fate for s in sent if s.fate != "deferred"] == ["retry", "retry", "retry", "delivered"]

    calls = fub.named("events")
    assert [c.status for c in calls] == [429, 503, 503, 201]
    assert calls[1].at - calls[0].at >= 1.0  # Retry-After: 1
    assert len(fub.events) == 1
    (row,) = rows(db, lead_id=lead_id)
    with db.session() as s:
        log = outbox.attempts(s, row.id)
    assert [(a.outcome, a.status_code) for a in log] == [
        ("retry", 429), ("retry", 503), ("retry", None), ("delivered", 201)]
    assert "read timeout" in (log[2].error or "") and "scripted 429" in (log[0].response or "")


def test_a_bad_request_is_dead_at_once_and_the_tech_channel_is_told(db: Database, fub: FubServer):
    router = crm_router(db, {"followupboss": FollowUpBoss})
    lead_id = add_lead(db, router, make_lead(7))
    fub.fail_next("events", 400, body={"errorMessage": "Invalid assignedUserId"})
    (sent,) = crm_dispatcher(db, {"followupboss": fub_notifier(fub)}).drain()
    assert sent.fate == "dead" and "Invalid assignedUserId" in (sent.error or "")
    (alert,) = [d for d in rows(db, notifier="slack") if d.action == "alert"]
    assert f"followupboss event for lead #{lead_id}) is dead" in alert.payload["text"]


def test_a_wrong_api_key_is_a_permanent_failure(db: Database, fub: FubServer):
    router = crm_router(db, {"followupboss": FollowUpBoss})
    add_lead(db, router, make_lead(8))
    notifier = FollowUpBoss("", base_url=fub.base_url, timeout=2)
    (sent,) = crm_dispatcher(db, {"followupboss": notifier}).drain()
    assert sent.fate == "dead" and "401" in (sent.error or "")


def test_configuration_reads_the_key_file_and_picks_the_documented_rate_limit(tmp_path: Path, fub: FubServer):
    (tmp_path / "fub").write_text("from-a-file\n")
    built = build_notifiers(Settings(notifiers=[
        {"type": "followupboss", "api_key_file": str(tmp_path / "fub"), "base_url": fub.base_url}]))
    notifier = built["followupboss"]
    assert isinstance(notifier, FollowUpBoss)
    assert notifier.rate_limits == {"requests": RateLimit(125, 10)}
    assert "Broker Owner" in notifier.check()
    with_key = fub_notifier(fub)
    assert with_key.rate_limits == {"requests": RateLimit(250, 10)}
    own = fub_notifier(fub, rate_limit={"requests": 50, "per": "10s"})
    assert own.rate_limits == {"requests": RateLimit(50, 10)}


@pytest.mark.parametrize(("entry", "message"), [
    ({"type": "followupboss"}, "notifiers[0].api_key: is required (or `api_key_file`)"),
    ({"type": "followupboss", "api_key": "k", "apikey": "x"},
     "notifiers[0].apikey: unknown key; valid keys: api_key, base_url"),
    ({"type": "followupboss", "api_key": "k", "rate_limit": {"requests": 0}}, "rate_limit"),
    ({"type": "followupboss", "api_key": "k", "timeout": "soon"}, "notifiers[0].timeout: not a duration"),
])
def test_a_bad_followupboss_entry_stops_the_start_naming_the_key(entry: dict[str, object], message: str):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_notifiers(Settings(notifiers=[entry]))
