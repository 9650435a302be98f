"""Slack interactivity over HTTP (daemon/web/app.py): a real uvicorn on port 0, signed requests.

When these fail, two agents both believe they got a hot lead, anyone on the internet can
claim leads with a forged or replayed request, or Slack gives up on a slow answer.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from routingkit import Clock, add_lead, make_dispatcher, make_lead, make_router
from slackserver import SlackServer
from sqlalchemy import text

from daemon.routing.assign import Router
from daemon.web.app import SignatureCheck, WebServer, make_app
from storage import leads, outbox, slack_signatures
from storage import routing as store
from storage.db import Database

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
REPO = Path(__file__).resolve().parents[2]


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


def post(server: WebServer | str, body: bytes, *, secret: str = SECRET, timestamp: float | None = None,
         signature: str | None = None) -> tuple[int, float]:
    ts = str(int(timestamp if timestamp is not None else time.time()))
    sig = signature or SignatureCheck(secret).sign(ts, body)
    url = server if isinstance(server, str) else server.url
    req = urllib.request.Request(
        f"{url}/slack/actions", data=body, method="POST",
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


# A daemon's web face in its own process: the routing the daemon does, on the database at
# argv[1]; prints its URL, serves until SIGTERM.
CHILD = """
import signal, sys, threading
sys.path.insert(0, "tests")
from routingkit import make_router
from daemon.web.app import WebServer, make_app
from storage.db import Database

db = Database(sys.argv[1])
server = WebServer(make_app(make_router(db), sys.argv[2]), "127.0.0.1", 0).start()
print(server.url, flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
server.stop()
db.dispose()
"""


@pytest.fixture
def daemons(database_url: str) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        child.kill()
        child.wait(timeout=10)


def start_daemon(daemons: list[subprocess.Popen[str]], database_url: str) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen([sys.executable, "-c", CHILD, database_url, SECRET], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    daemons.append(child)
    assert child.stdout is not None
    url = child.stdout.readline().strip()
    assert url.startswith("http://"), f"the web server did not start (exit {child.poll()})"
    return child, url


def stop_daemon(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=20) == 0


def test_a_replayed_click_is_refused_after_a_restart(db: Database, database_url: str,
                                                     daemons: list[subprocess.Popen[str]]):
    # issue 15: the same signed bytes sent again after a SIGTERM and restart got 200 and
    # were processed again (the seen signatures lived in the stopped process's memory)
    router = make_router(db)
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    body, ts = click_body(lead_id, "U0ANA"), time.time()
    first, url = start_daemon(daemons, database_url)
    assert post(url, body, timestamp=ts)[0] == 200
    after_first = state(db, lead_id)
    stop_daemon(first)

    _, url = start_daemon(daemons, database_url)
    assert post(url, body, timestamp=ts)[0] == 401
    assert state(db, lead_id) == after_first


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_replay_through_a_second_replica_is_refused(db: Database, database_url: str,
                                                      daemons: list[subprocess.Popen[str]]):
    # two replicas behind one URL on one PostgreSQL: each used to keep its own set
    router = make_router(db)
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    _, url_a = start_daemon(daemons, database_url)
    _, url_b = start_daemon(daemons, database_url)
    body, ts = click_body(lead_id, "U0ANA"), time.time()
    assert post(url_a, body, timestamp=ts)[0] == 200
    after_first = state(db, lead_id)
    assert post(url_b, body, timestamp=ts)[0] == 401
    assert post(url_a, body, timestamp=ts)[0] == 401
    assert state(db, lead_id) == after_first

    # the same bytes reaching both replicas at once: exactly one is accepted
    other = add_lead(db, router, make_lead(2, "hot"))
    body, ts = click_body(other, "U0BEN"), time.time()
    codes: list[int] = []
    threads = [threading.Thread(target=lambda u=u: codes.append(post(u, body, timestamp=ts)[0]))
               for u in (url_a, url_b, url_a, url_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 401, 401, 401]


def test_seen_signatures_are_pruned_once_their_timestamp_is_too_old(db: Database):
    now = [time.time()]
    router = make_router(db)
    server = WebServer(make_app(router, SECRET, clock=lambda: now[0]), "127.0.0.1", 0).start()
    try:
        lead_id = add_lead(db, router, make_lead(1, "hot"))
        old = click_body(lead_id, "U0ANA")
        assert post(server, old, timestamp=now[0])[0] == 200
        sent_at = now[0]
        now[0] += 301  # the first request's timestamp is now refused as stale anyway
        assert post(server, old, timestamp=sent_at)[0] == 401
        assert post(server, click_body(lead_id, "U0BEN"), timestamp=now[0])[0] == 200
        with db.session() as s:
            assert slack_signatures.count(s) == 1  # the old signature is gone
    finally:
        server.stop()


def test_a_click_the_database_cannot_record_is_answered_503_and_changes_nothing(
        db: Database, web: tuple[WebServer, Router]):
    # without the row, a replay could not be told apart later: refuse rather than act
    server, router = web
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    before = state(db, lead_id)
    with db.session() as s:
        s.execute(text("DROP TABLE slack_signatures"))
    assert post(server, click_body(lead_id, "U0ANA"))[0] == 503
    assert state(db, lead_id) == before


def test_the_health_check_answers(web: tuple[WebServer, Router]):
    server, _ = web
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as resp:
        assert json.load(resp) == {"status": "ok"}


def test_a_port_in_use_is_a_clear_error_at_start(web: tuple[WebServer, Router]):
    from daemon.errors import ConfigError

    server, router = web
    with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1"):
        WebServer(make_app(router, SECRET), "127.0.0.1", server.port)
