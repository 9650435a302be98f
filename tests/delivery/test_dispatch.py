"""The dispatcher (daemon/delivery/dispatch.py) against a local server speaking Slack's Web API.

When these fail, a Slack outage loses a claim message or posts it twice, a 429 is retried
before Slack allows, a broken delivery is retried forever instead of alerting, or the
delivery log cannot say what happened.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from routingkit import START, Clock, add_lead, make_dispatcher, make_lead, make_router
from slackserver import SlackServer

from daemon.config import Settings
from daemon.delivery.dispatch import Dispatcher, RetryPolicy, build_notifiers
from daemon.errors import ConfigError
from notifiers.slack import Slack
from storage import outbox
from storage.db import Database

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    with SlackServer() as server:
        yield server


def test_429_then_500_then_200_posts_exactly_one_message(db: Database, slack: SlackServer):
    clock = Clock()
    router = make_router(db, clock=clock)
    dispatcher = make_dispatcher(db, slack.base_url, clock=clock)
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    slack.fail_next("chat.postMessage", 429, retry_after=30)
    slack.fail_next("chat.postMessage", 500)

    (first,) = dispatcher.run_due()
    assert first.fate == "retry" and first.next_attempt_at == clock() + timedelta(seconds=30)
    assert dispatcher.run_due() == []  # Retry-After wins: nothing before 30 s
    clock.advance(seconds=29)
    assert dispatcher.run_due() == []
    clock.advance(seconds=1)
    (second,) = dispatcher.run_due()
    assert second.fate == "retry" and second.attempt == 2
    clock.advance(minutes=10)
    (third,) = dispatcher.run_due()
    assert third.fate == "delivered" and third.attempt == 3
    clock.advance(hours=1)
    assert dispatcher.run_due() == []

    assert [c.status for c in slack.calls if c.method == "chat.postMessage"] == [429, 500, 200]
    (posted,) = slack.named("chat.postMessage")
    assert posted.body["channel"] == "C0HOT"
    with db.session() as s:
        (row,) = outbox.listing(s, lead_id=lead_id)
        log = outbox.attempts(s, row.id)
    assert (row.status, row.attempts, row.result) == (
        "delivered", 3, {"channel": "C0HOT", "ts": slack.posted("C0HOT")[0]["ts"]})
    assert [(a.outcome, a.status_code) for a in log] == [("retry", 429), ("retry", 500), ("delivered", 200)]
    assert all(a.latency_ms is not None and a.latency_ms >= 0 for a in log)
    assert '"ratelimited"' in (log[0].response or "") and len(log[2].response or "") <= 2048


def test_a_restart_never_posts_a_claim_message_twice(db: Database, slack: SlackServer):
    router = make_router(db)
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    make_dispatcher(db, slack.base_url).drain()
    # a new process: the lead routed again (a re-run) and a fresh dispatcher
    with db.session() as s:
        from storage import leads

        router.route(s, lead_id, leads.get(s, lead_id).lead)  # type: ignore[union-attr]
    make_dispatcher(db, slack.base_url).drain()
    assert len(slack.named("chat.postMessage")) == 1


def test_a_delivery_in_flight_when_its_process_died_is_retried_after_its_lease(db: Database, slack: SlackServer):
    clock = Clock()
    router = make_router(db, clock=clock)
    add_lead(db, router, make_lead(1, "hot"))
    with db.session() as s:  # a dispatcher leases the row, then dies before sending
        (_leased,) = outbox.claim_due(s, now=clock(), lease_until=clock() + timedelta(seconds=60))
    dispatcher = make_dispatcher(db, slack.base_url, clock=clock)
    assert dispatcher.run_due() == []
    clock.advance(seconds=61)
    (sent,) = dispatcher.run_due()
    assert sent.fate == "delivered" and sent.attempt == 2
    assert len(slack.named("chat.postMessage")) == 1


# A replica's dispatcher in its own process, leasing rows for 2.5 s; Slack takes its post
# and holds the answer until the process is killed.
CHILD = """
import sys
from datetime import timedelta
from daemon.delivery.dispatch import Dispatcher
from notifiers.slack import Slack
from storage.db import Database

slack = Slack("xoxb-test", base_url=sys.argv[2], hot_leads_channel="C0HOT", timeout=60)
Dispatcher(Database(sys.argv[1]), {"slack": slack}, lease=timedelta(seconds=2.5)).drain()
"""


@pytest.mark.parametrize(("tier", "action"), [("hot", "claim_offer"), ("standard", "dm_agent")])
def test_a_post_slack_accepted_before_its_sender_was_killed_is_not_posted_again(
        db: Database, database_url: str, tier: str, action: str):
    # issue 15: a replica SIGKILLed after Slack accepted the Claim message (or the DM) but
    # before the answer was recorded; after its lease the other replica sent the same
    # outbox row again — a second message for the lead
    now = datetime.now(UTC)
    with SlackServer(epoch=now.timestamp()) as slack:
        lead_id = add_lead(db, make_router(db, clock=Clock(now)), make_lead(1, tier))
        slack.hold("chat.postMessage")
        child = subprocess.Popen([sys.executable, "-c", CHILD, database_url, slack.base_url], cwd=REPO)
        try:
            assert slack.held.wait(30), "the child never posted"
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=10) == -signal.SIGKILL
        finally:
            child.kill()
            slack.release()
        (posted,) = slack.named("chat.postMessage")  # Slack took it once

        restarted = Dispatcher(db, {"slack": Slack("xoxb-test", base_url=slack.base_url,
                                                   hot_leads_channel="C0HOT", timeout=2)},
                               lease=timedelta(seconds=2.5))
        deadline = time.monotonic() + 20
        while not (sent := restarted.run_due()):  # nothing due until the child's lease ends
            assert time.monotonic() < deadline, "the row never became due again"
            time.sleep(0.05)
        assert [(x.action, x.fate, x.attempt) for x in sent] == [(action, "delivered", 2)]
        assert len(slack.named("chat.postMessage")) == 1
        assert slack.named("conversations.history")  # it looked before posting
        with db.session() as s:
            (row,) = outbox.listing(s, lead_id=lead_id)
        channel = posted.body["channel"]
        assert row.result == {"channel": channel, "ts": slack.posted(channel)[0]["ts"],
                              "already_posted": True}


def test_a_post_whose_answer_timed_out_is_found_and_not_posted_again(db: Database):
    clock = Clock()
    with SlackServer(epoch=clock().timestamp()) as slack:
        add_lead(db, make_router(db, clock=clock), make_lead(1))  # round robin: a DM
        dispatcher = Dispatcher(db, {"slack": Slack("xoxb-test", base_url=slack.base_url,
                                                    timeout=1, clock=clock)}, clock=clock)
        slack.hold("chat.postMessage")  # carried out, answered too late
        try:
            (first,) = dispatcher.run_due()
        finally:
            slack.release()
        assert first.fate == "retry"
        clock.advance(minutes=11)
        (second,) = dispatcher.run_due()
        assert (second.fate, second.attempt) == ("delivered", 2)
        (dm,) = slack.named("chat.postMessage")
        assert dm.body["channel"] == "DU0ANA" and len(slack.posted("DU0ANA")) == 1


def test_a_retry_without_the_history_scope_is_dead_not_a_second_post(db: Database, slack: SlackServer):
    clock = Clock()
    add_lead(db, make_router(db, clock=clock), make_lead(1, "hot"))
    dispatcher = make_dispatcher(db, slack.base_url, clock=clock)
    slack.fail_next("chat.postMessage", 500)
    slack.fail_next("conversations.history", 200, error="missing_scope")
    assert dispatcher.run_due()[0].fate == "retry"
    clock.advance(minutes=11)
    (sent, *_) = dispatcher.run_due()
    assert sent.fate == "dead" and "channels:history" in (sent.error or "")
    assert slack.named("chat.postMessage") == []


def test_a_dead_post_retried_by_hand_after_its_answer_was_lost_is_not_posted_twice(db: Database):
    # the first attempt's post was accepted but its answer lost; the second was dead for
    # want of the history scope; `leadpipe deliveries retry ID` starts the count afresh
    clock = Clock()
    with SlackServer(epoch=clock().timestamp()) as slack:
        lead_id = add_lead(db, make_router(db, clock=clock), make_lead(1, "hot"))
        dispatcher = Dispatcher(db, {"slack": Slack("xoxb-test", base_url=slack.base_url,
                                                    hot_leads_channel="C0HOT", timeout=1,
                                                    clock=clock)}, clock=clock)
        slack.hold("chat.postMessage")
        try:
            assert dispatcher.run_due()[0].fate == "retry"
        finally:
            slack.release()
        slack.fail_next("conversations.history", 200, error="missing_scope")
        clock.advance(minutes=11)
        assert dispatcher.run_due()[0].fate == "dead"
        with db.session() as s:
            (row,) = outbox.listing(s, lead_id=lead_id, notifier="slack")
            assert outbox.retry(s, [row.id], at=clock()) == 1
        (again,) = [x for x in dispatcher.run_due() if x.delivery_id == row.id]
        assert (again.fate, again.attempt) == ("delivered", 1)
        assert len(slack.posted("C0HOT")) == 1


def test_a_permanent_error_is_dead_at_once_and_alerted(db: Database, slack: SlackServer):
    router = make_router(db)
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    slack.fail_next("chat.postMessage", 200, error="channel_not_found")
    dispatcher = make_dispatcher(db, slack.base_url)
    (sent,) = dispatcher.run_due()
    assert sent.fate == "dead" and "channel_not_found" in (sent.error or "")
    (alert_sent,) = dispatcher.run_due()  # the alert itself goes out through the outbox
    assert alert_sent.action == "alert" and alert_sent.fate == "delivered"
    (alert,) = slack.named("chat.postMessage")
    assert alert.body["channel"] == "C0ALERTS"
    assert f"claim_offer for lead #{lead_id}) is dead" in alert.body["text"]


def test_after_max_attempts_a_delivery_is_dead_and_retry_brings_it_back(db: Database, slack: SlackServer):
    clock = Clock()
    router = make_router(db, clock=clock)
    lead_id = add_lead(db, router, make_lead(1))  # a DM: conversations.open then chat.postMessage
    dispatcher = make_dispatcher(db, slack.base_url, clock=clock, max_attempts=3)
    for _ in range(3):
        slack.fail_next("conversations.open", 503)
    fates = []
    for _ in range(3):
        fates += [s.fate for s in dispatcher.run_due() if s.action == "dm_agent"]
        clock.advance(minutes=11)
    assert fates == ["retry", "retry", "dead"]
    with db.session() as s:
        (dm,) = outbox.listing(s, lead_id=lead_id)
        assert dm.status == "dead"
        assert outbox.retry(s, None, at=clock(), dead=True) == 1
    assert [s.fate for s in dispatcher.drain() if s.action == "dm_agent"] == ["delivered"]
    (opened,) = slack.named("conversations.open")
    assert opened.body["users"] == "U0ANA"
    dm_post = next(c for c in slack.named("chat.postMessage") if c.body["channel"] == "DU0ANA")
    assert "+13055550001" in dm_post.body["text"] and "dana1@example.com" in dm_post.body["text"]


def test_a_timeout_or_a_refused_connection_is_retried(db: Database):
    clock = Clock()
    router = make_router(db, clock=clock)
    add_lead(db, router, make_lead(1, "hot"))
    with SlackServer() as gone:
        url = gone.base_url  # a port nobody listens on once this server stops
    (sent,) = make_dispatcher(db, url, clock=clock).run_due()
    assert sent.fate == "retry" and sent.error and "slack" in sent.error


def test_an_html_error_page_is_a_transient_failure(db: Database, slack: SlackServer):
    router = make_router(db)
    add_lead(db, router, make_lead(1, "hot"))
    slack.fail_next("chat.postMessage", 502, html=True)
    (sent,) = make_dispatcher(db, slack.base_url).run_due()
    assert sent.fate == "retry"


def test_backoff_is_exponential_with_full_jitter_and_capped():
    policy = RetryPolicy(max_attempts=20, base=timedelta(seconds=2), cap=timedelta(minutes=10))
    rng = random.Random(7)
    for attempts, ceiling in ((1, 2), (2, 4), (3, 8), (10, 600), (19, 600)):
        waits = [(policy.next_attempt(attempts, START, None, rng) - START).total_seconds()
                 for _ in range(200)]
        assert min(waits) >= 0 and max(waits) <= ceiling
        assert max(waits) > ceiling * 0.8  # full jitter spans the whole range
    later = START + timedelta(hours=2)
    assert policy.next_attempt(1, START, later, rng) == later  # Retry-After wins over the cap


def test_an_unknown_notifier_type_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown type 'salesforce'; valid types: followupboss, hubspot, slack, webhook"):
        build_notifiers(Settings(notifiers=[{"type": "salesforce"}]))


def test_slack_is_built_from_its_section_when_it_has_a_token():
    assert build_notifiers(Settings()) == {}
    built = build_notifiers(Settings(slack={"bot_token": "xoxb-1", "base_url": "http://127.0.0.1:9/api"}))
    assert list(built) == ["slack"]
