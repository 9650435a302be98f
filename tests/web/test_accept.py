"""The Accept button (daemon/routing/response.py through daemon/web/app.py): signed,
idempotent, and the time it took recorded; on SQLite and PostgreSQL, over real HTTP.

When these fail, anyone can accept a lead with a forged or replayed request, a double
click counts an agent's answer twice, an agent the lead was taken from can still accept
it, or the response times the owner reads are wrong.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from routingkit import Clock, add_lead, make_dispatcher, make_lead, make_router
from slackserver import SlackServer
from test_app import SECRET, post

from daemon.routing.assign import Router
from daemon.web.app import SignatureCheck, WebServer, make_app
from storage import routing as store
from storage.db import Database
from storage.models import LeadRow


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def web(db: Database, clock: Clock) -> Iterator[tuple[WebServer, Router]]:
    router = make_router(db, clock=clock)
    server = WebServer(make_app(router, SECRET), "127.0.0.1", 0).start()
    try:
        yield server, router
    finally:
        server.stop()


def accept_body(lead_id: int, user: str) -> bytes:
    payload = {
        "type": "block_actions", "user": {"id": user}, "channel": {"id": f"D{user}"},
        "actions": [{"action_id": "accept_lead", "value": str(lead_id), "type": "button",
                     "action_ts": f"{time.time():.6f}"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def accepted(db: Database, lead_id: int) -> tuple[object, ...]:
    with db.session() as s:
        row = s.get(LeadRow, lead_id)
        events = [(e.agent, e.detail) for e in store.history(s, lead_id, kind="accepted")]
        return row.accepted_at, events


def test_the_assignment_dm_carries_an_accept_button(db: Database, clock: Clock):
    router = make_router(db, clock=clock)
    lead_id = add_lead(db, router, make_lead(1))
    with SlackServer() as slack:
        make_dispatcher(db, slack.base_url, clock=clock).drain()
        (dm,) = [c for c in slack.named("chat.postMessage") if c.body["channel"].startswith("D")]
    blocks = dm.body["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    button, away = blocks[-1]["elements"]
    assert (button["action_id"], button["value"], button["text"]["text"]) == ("accept_lead", str(lead_id), "Accept")
    assert (away["action_id"], away["text"]["text"]) == ("away_today", "Away for today")
    assert f"New lead #{lead_id}" in dm.body["text"]  # the text stays for notifications


def test_accept_is_signed_idempotent_and_records_the_time_to_accept(
        db: Database, web: tuple[WebServer, Router], clock: Clock):
    server, router = web
    lead_id = add_lead(db, router, make_lead(1))  # Ana's turn
    clock.advance(seconds=95)
    body = accept_body(lead_id, "U0ANA")
    assert post(server, body, secret="not-the-secret")[0] == 401
    assert accepted(db, lead_id) == (None, [])
    ts = str(int(time.time()))
    signature = SignatureCheck(SECRET).sign(ts, body)
    assert post(server, body, timestamp=float(ts), signature=signature)[0] == 200
    at, events = accepted(db, lead_id)
    assert at == clock() and events == [("Ana Ruiz", "accepted in 95.0s")]
    assert post(server, body, timestamp=float(ts), signature=signature)[0] == 401  # replayed
    clock.advance(seconds=30)
    assert post(server, accept_body(lead_id, "U0ANA"))[0] == 200  # a second, genuine click
    assert accepted(db, lead_id) == (at, events)  # changes nothing
    assert router.accept(lead_id, "U0ANA") == "already"


def test_only_the_agent_who_holds_the_lead_can_accept_it(db: Database, clock: Clock):
    router = make_router(db, clock=clock)
    lead_id = add_lead(db, router, make_lead(1))
    assert router.accept(lead_id, "U0BEN") == "not_yours"
    assert router.accept(lead_id, "U0NOBODY") == "not_an_agent"
    assert router.accept(999_999, "U0ANA") == "no_such_lead"
    assert accepted(db, lead_id) == (None, [])
    assert router.accept(lead_id, "U0ANA") == "accepted"


def test_a_claim_is_an_accept(db: Database, clock: Clock):
    router = make_router(db, clock=clock)
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    clock.advance(seconds=12)
    assert router.claim(lead_id, "U0CHO").verdict == "won"
    assert accepted(db, lead_id)[0] == clock()
    assert router.accept(lead_id, "U0CHO") == "already"


def test_away_for_today_in_the_dm_skips_the_agent_until_their_midnight(
        db: Database, web: tuple[WebServer, Router], clock: Clock):
    server, router = web
    first = add_lead(db, router, make_lead(1))  # Ana
    payload = {"type": "block_actions", "user": {"id": "U0ANA"}, "channel": {"id": "DU0ANA"},
               "actions": [{"action_id": "away_today", "value": str(first), "action_ts": "1.2"}]}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    assert post(server, body, secret="forged")[0] == 401
    with db.session() as s:
        assert store.away(s, now=clock()) == {}
    assert post(server, body)[0] == 200
    with db.session() as s:
        away = store.away(s, now=clock())
    assert away == {"Ana Ruiz": clock().replace(hour=0) + timedelta(days=1)}  # UTC: no hours set
    agents = []
    for n in range(2, 6):
        lead_id = add_lead(db, router, make_lead(n))
        with db.session() as s:
            agents.append(s.get(LeadRow, lead_id).agent)
    assert agents == ["Ben Okafor", "Cho Park", "Ben Okafor", "Cho Park"]
    with SlackServer() as slack:
        make_dispatcher(db, slack.base_url, clock=clock).drain()
        notices = [c.body["text"] for c in slack.named("chat.postMessage") if c.body["channel"] == "DU0ANA"]
    assert any(t.startswith("You are away until") for t in notices)
