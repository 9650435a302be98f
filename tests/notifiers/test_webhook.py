"""The signed webhook (notifiers/webhook.py) through the outbox, against a local receiver.

When these fail, a system that receives leads by webhook cannot verify they come from
leadpipe, cannot drop a repeat, gets a body that breaks the lead contract, or a lead is
lost to a receiver that was briefly down.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest
from clikit import STORED_KEYS
from crmkit import all_delivered, crm_dispatcher, crm_router, drain_until, rows
from crmservers import WebhookReceiver
from routingkit import add_lead, make_lead

from daemon.config import Settings
from daemon.delivery.dispatch import build_notifiers, lead_destinations
from daemon.errors import ConfigError
from notifiers.webhook import Webhook, signature_header, verify
from storage.db import Database

SECRET = "whsec-test-1234"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def test_a_routed_lead_is_posted_as_the_lead_contract_signed_with_an_idempotency_key(db: Database, receiver: WebhookReceiver):
    router = crm_router(db, {"webhook": Webhook})
    lead_id = add_lead(db, router, make_lead(1))
    crm_dispatcher(db, {"webhook": Webhook(receiver.url, SECRET, timeout=2)}).drain()

    (call,) = receiver.named("hook")
    assert verify(SECRET, call.headers["X-Leadpipe-Signature"], call.raw, now=time.time())
    # what a receiver in any language does: HMAC-SHA256 over "<t>.<raw body>"
    stamp, mac = (p.split("=", 1)[1] for p in call.headers["X-Leadpipe-Signature"].split(","))
    assert hmac.new(SECRET.encode(), f"{stamp}.".encode() + call.raw, hashlib.sha256).hexdigest() == mac
    assert call.headers["Idempotency-Key"] == f"lead:{lead_id}:webhook:lead"
    assert call.headers["Content-Type"] == "application/json"
    body = json.loads(call.raw)
    assert set(body) == STORED_KEYS | {"agent_email", "agent_crm_user_id"}
    assert (body["id"], body["status"], body["agent"], body["phone"]) == (
        lead_id, "assigned", "Ana Ruiz", "+13055550001")
    # issue 15: the agent by display name only; a dialer or CRM matches users by email or id
    assert (body["agent_email"], body["agent_crm_user_id"]) == ("ana@example.com", "17")


def test_a_lead_without_an_agent_says_so_with_nulls(db: Database, receiver: WebhookReceiver):
    router = crm_router(db, {"webhook": Webhook})
    add_lead(db, router, make_lead(3, "low"))  # drip: no agent
    crm_dispatcher(db, {"webhook": Webhook(receiver.url, SECRET, timeout=2)}).drain()
    body = json.loads(receiver.named("hook")[0].raw)
    assert (body["status"], body["agent"], body["agent_email"], body["agent_crm_user_id"]) == (
        "drip", None, None, None)


def test_a_signature_fails_for_another_body_another_secret_or_an_old_timestamp():
    body = b'{"id":1}'
    now = 1_800_000_000
    header = signature_header(SECRET.encode(), now, body)
    assert verify(SECRET, header, body, now=now + 10)
    assert not verify(SECRET, header, b'{"id":2}', now=now)
    assert not verify("another", header, body, now=now)
    assert not verify(SECRET, header, body, now=now + 301)  # older than 5 minutes: a replay
    assert not verify(SECRET, None, body, now=now) and not verify(SECRET, "v1=abc", body, now=now)


def test_a_receiver_that_is_down_gets_the_lead_once_it_is_back_and_a_gone_one_is_dead(db: Database, receiver: WebhookReceiver):
    router = crm_router(db, {"webhook": Webhook})
    first = add_lead(db, router, make_lead(2))
    receiver.fail_next("hook", 500)
    receiver.fail_next("hook", 502)
    dispatcher = crm_dispatcher(db, {"webhook": Webhook(receiver.url, SECRET, timeout=2)})
    drain_until(dispatcher, all_delivered(db, "webhook"))
    assert receiver.statuses("hook") == [500, 502, 200]
    keys = {c.headers["Idempotency-Key"] for c in receiver.named("hook")}
    assert keys == {f"lead:{first}:webhook:lead"}  # the same key on every retry

    second = add_lead(db, router, make_lead(3))
    receiver.fail_next("hook", 410, body={"error": "endpoint removed"})
    (sent,) = dispatcher.drain()
    assert sent.fate == "dead" and "410" in (sent.error or "")
    assert rows(db, lead_id=second)[0].status == "dead"


def test_two_named_webhooks_each_get_every_lead(receiver: WebhookReceiver):
    settings = Settings(notifiers=[
        {"type": "webhook", "name": "dialer", "url": receiver.url, "secret": SECRET},
        {"type": "webhook", "name": "warehouse", "url": receiver.url, "secret": SECRET,
         "headers": {"Authorization": "Bearer x"}, "rate_limit": {"requests": 5, "per": "1s"}},
    ])
    assert list(build_notifiers(settings)) == ["dialer", "warehouse"]
    assert list(lead_destinations(settings)) == ["dialer", "warehouse"]
    with pytest.raises(ConfigError, match="two notifiers are named 'webhook'"):
        build_notifiers(Settings(notifiers=[{"type": "webhook", "url": receiver.url, "secret": SECRET}] * 2))


@pytest.mark.parametrize(("entry", "message"), [
    ({"type": "webhook", "url": "https://x.example/leads"}, r"notifiers\[0\]\.secret: is required"),
    ({"type": "webhook", "secret": "s"}, r"notifiers\[0\]\.url: is required"),
    ({"type": "webhook", "url": "ftp://x", "secret": "s"}, "must be an http"),
])
def test_a_bad_webhook_entry_stops_the_start(entry: dict[str, object], message: str):
    with pytest.raises(ConfigError, match=message):
        build_notifiers(Settings(notifiers=[entry]))
