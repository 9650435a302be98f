"""Slack interactivity over HTTP (daemon/web.py): a real uvicorn on port 0, signed requests.

When these fail, two agents both believe they got a hot lead, anyone on the internet can
claim leads with a forged or replayed request, or Slack gives up on a slow answer.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from routingkit import Clock, add_lead, make_dispatcher, make_lead, make_router
from slackserver import SlackServer

from daemon.assign import Router
from daemon.web import SignatureCheck, WebServer, make_app
from storage import leads, outbox
from storage import routing as store
from storage.db import Database

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    with SlackServer() as server:
        yield server


@pytest.fixture
def web(db: Database) -> Iterator[tuple[WebServer, Router]]:
    router = make_router(db, clock=Clock())
    server = WebServer(make_app(router, SECRET), "127.0.0.1", 0).start()
    try:
        yield server, router
    finally:
        server.stop()


def click_body(lead_id: int, user: str) -> bytes:
    payload = {
        "type": "block_actions", "user": {"id": user, "username": user.lower()},
        "channel": {"id": "C0HOT"}, "container": {"channel_id": "C0HOT", "message_ts": "1.1"},
        "actions": [{"action_id": "claim_lead", "value": str(lead_id), "type": "button",
                     "action_ts": f"{time.time():.6f}"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def post(server: WebServer, body: bytes, *, secret: str = SECRET, timestamp: float | None = None,
         signature: str | None = None) -> tuple[int, float]:
    ts = str(int(timestamp if timestamp is not None else time.time()))
    sig = signature or SignatureCheck(secret).sign(ts, body)
    req = urllib.request.Request(
        f"{server.url}/slack/actions", data=body, method="POST",
        headers={"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig,
                 "Content-Type": "application/x-www-form-urlencoded"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, time.perf_counter() - started
    except urllib.error.HTTPError as exc:
        return exc.code, time.perf_counter() - started


def state(db: Database, lead_id: int) -> tuple[object, ...]:
    with db.session() as s:
        row = leads.get(s, lead_id)
        assert row is not None
        return (row.status, row.agent, row.claimed_by, len(store.history(s, lead_id)),
                len(outbox.listing(s, lead_id=lead_id)))


def test_two_claims_1_ms_apart_give_one_winner_and_one_ephemeral(
        db: Database, web: tuple[WebServer, Router], slack: SlackServer):
    server, router = web
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    dispatcher = make_dispatcher(db, slack.base_url)
    dispatcher.drain()  # the claim message is posted
    answers: dict[str, tuple[int, float]] = {}

    def click(user: str) -> None:
        answers[user] = post(server, click_body(lead_id, user))

    first = threading.Thread(target=click, args=("U0ANA",))
    second = threading.Thread(target=click, args=("U0BEN",))
    first.start()
    time.sleep(0.001)
    second.start()
    first.join()
    second.join()

    assert {code for code, _ in answers.values()} == {200}
    assert max(elapsed for _, elapsed in answers.values()) < 3.0  # Slack's limit
    status, agent, claimed_by, _, _ = state(db, lead_id)
    assert status == "claimed" and agent == claimed_by and agent in ("Ana Ruiz", "Ben Okafor")
    dispatcher.drain()
    (update,) = slack.named("chat.update")
    (ephemeral,) = slack.named("chat.postEphemeral")
    winner, loser = ("U0ANA", "U0BEN") if agent == "Ana Ruiz" else ("U0BEN", "U0ANA")
    assert update.body["text"].startswith(f":white_check_mark: Claimed by <@{winner}> in ")
    assert ephemeral.body["user"] == loser and f"Already claimed by <@{winner}>" in ephemeral.body["text"]
    dms = [c for c in slack.named("chat.postMessage") if c.body["channel"].startswith("D")]
    assert [c.body["channel"] for c in dms] == [f"D{winner}"]


def test_a_forged_signature_is_refused_and_changes_nothing(db: Database, web: tuple[WebServer, Router]):
    server, router = web
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    before = state(db, lead_id)
    assert post(server, click_body(lead_id, "U0ANA"), secret="not-the-secret")[0] == 401
    assert post(server, click_body(lead_id, "U0ANA"), signature="v0=" + "0" * 64)[0] == 401
    assert state(db, lead_id) == before


def test_a_stale_timestamp_is_refused_and_changes_nothing(db: Database, web: tuple[WebServer, Router]):
    server, router = web
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    before = state(db, lead_id)
    assert post(server, click_body(lead_id, "U0ANA"), timestamp=time.time() - 301)[0] == 401
    assert post(server, click_body(lead_id, "U0ANA"), timestamp=time.time() + 301)[0] == 401
    assert state(db, lead_id) == before


def test_a_replayed_request_is_refused_and_changes_nothing(db: Database, web: tuple[WebServer, Router]):
    server, router = web
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    body = click_body(lead_id, "U0ANA")
    ts = time.time()
    assert post(server, body, timestamp=ts)[0] == 200
    after_first = state(db, lead_id)
    assert post(server, body, timestamp=ts)[0] == 401
    assert state(db, lead_id) == after_first


def test_the_health_check_answers(web: tuple[WebServer, Router]):
    server, _ = web
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as resp:
        assert json.load(resp) == {"status": "ok"}


def test_a_port_in_use_is_a_clear_error_at_start(web: tuple[WebServer, Router]):
    from daemon.errors import ConfigError

    server, router = web
    with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1"):
        WebServer(make_app(router, SECRET), "127.0.0.1", server.port)
