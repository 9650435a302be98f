"""Rate limits (daemon/delivery/pacing.py, the dispatcher's pacing) against a CRM that enforces a
sliding window, on SQLite and PostgreSQL.

When these fail, a burst of leads (a portal re-sending a day's leads, a replay of dead
deliveries) is answered 429 by the CRM and piles up in retries, or is paced so timidly that
the queue drains far below what the CRM allows.

The full-size case — 1,000 leads at 10 requests/s, over 100 s — is ``bench/crm_burst.py``;
the suite runs the same code on 100 leads at 25 requests per sliding second (still over 4 s).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from crmkit import burst, crm_dispatcher, crm_router, rows
from crmservers import FubServer
from routingkit import Clock, add_lead, make_lead

from daemon.delivery.pacing import HEADROOM, Pacer, capacity
from notifiers.base import RateLimit
from notifiers.followupboss import FollowUpBoss
from storage.db import Database


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fub() -> Iterator[FubServer]:
    with FubServer() as server:
        yield server


def test_a_burst_is_spaced_at_the_limit_less_its_headroom():
    t = FakeTime()
    pacer = Pacer({"requests": RateLimit(10, 1.0)}, clock=t, sleep=t.sleep)
    stamps = []
    for _ in range(21):
        assert pacer.acquire({"requests": 1})
        stamps.append(t.now)
    gap = 1 / (10 * HEADROOM)
    assert stamps[0] == 0.0
    assert all(b - a == pytest.approx(gap) for a, b in itertools.pairwise(stamps))
    # any sliding second holds at most 10 calls
    assert max(sum(1 for s in stamps if x <= s < x + 1) for x in stamps) <= 10


def test_an_action_of_several_calls_takes_its_share_of_every_bucket():
    t = FakeTime()
    pacer = Pacer({"requests": RateLimit(100, 10.0), "search": RateLimit(4, 1.0)}, clock=t, sleep=t.sleep)
    for _ in range(9):
        pacer.acquire({"requests": 2, "search": 1})
    # 18 calls at 9.5/s would take 1.8 s, but the search bucket is tighter: 8 more
    # searches after the first take 8 / 3.8 s
    assert t.now == pytest.approx(8 / (4 * HEADROOM))


def test_a_wait_longer_than_allowed_reserves_nothing():
    t = FakeTime()
    pacer = Pacer({"requests": RateLimit(1, 10.0)}, clock=t, sleep=t.sleep)
    assert pacer.acquire({"requests": 1})
    assert not pacer.acquire({"requests": 1}, max_wait=5)
    assert t.slept == [] and pacer.next_free({"requests": 1}) == pytest.approx(10 / HEADROOM)
    t.now += 10 / HEADROOM
    assert pacer.acquire({"requests": 1}, max_wait=0)


def test_100_leads_at_25_a_second_drain_without_a_single_429(db: Database, fub: FubServer):
    # How close to the allowed rate the drain runs is a speed, measured by
    # bench/crm_burst.py (95 % of it there); a share asserted here failed on a machine
    # busy with other work. The FakeTime tests above pin the pacing arithmetic.
    result = burst(db, fub, leads=100, requests=25, per=1.0)
    assert result.rejected == 0
    assert len(fub.events) == 100 and fub.statuses("events").count(201) == 100


def test_a_bucket_banks_only_what_a_sliding_window_can_spare():
    for requests, per, banked in ((4, 1.0, 1), (25, 1.0, 1), (100, 10.0, 2), (250, 10.0, 6)):
        t = FakeTime()
        pacer = Pacer({"requests": RateLimit(requests, per)}, clock=t, sleep=t.sleep)
        assert capacity(RateLimit(requests, per)) == banked
        t.now = 3600.0  # idle for an hour, then a burst
        stamps = []
        for _ in range(3 * requests):
            pacer.acquire({"requests": 1})
            stamps.append(t.now)
        busiest = max(sum(1 for s in stamps if x <= s < x + per) for x in stamps)
        assert busiest <= requests * (1 + HEADROOM) / 2 + 1 <= requests + 1
        assert busiest <= requests


def test_a_429_holds_the_notifier_until_retry_after_and_nothing_is_lost(db: Database, fub: FubServer):
    clock = Clock()
    router = crm_router(db, {"followupboss": FollowUpBoss}, clock=clock)
    for n in range(3):
        add_lead(db, router, make_lead(n))
    fub.fail_next("events", 429, retry_after=30)  # another integration used up the key's window
    notifier = FollowUpBoss("k", base_url=fub.base_url, timeout=2, clock=clock)
    dispatcher = crm_dispatcher(db, {"followupboss": notifier}, clock=clock)
    first = dispatcher.run_due()
    assert [s.fate for s in first] == ["retry", "deferred", "deferred"]  # not sent into the 429
    assert len(fub.named("events")) == 1
    assert dispatcher.run_due() == []
    clock.advance(seconds=30)
    assert sorted(s.fate for s in dispatcher.drain()) == ["delivered"] * 3
    assert len(fub.events) == 3
    assert [d.attempts for d in rows(db, notifier="followupboss")] == [2, 1, 1]  # waiting is no attempt


def test_a_held_notifier_does_not_make_the_dispatcher_loop_spin(db: Database, fub: FubServer):
    clock = Clock()
    router = crm_router(db, {"followupboss": FollowUpBoss}, clock=clock)
    add_lead(db, router, make_lead(1))
    fub.fail_next("events", 429, retry_after=30)
    dispatcher = crm_dispatcher(db, {"followupboss": FollowUpBoss("k", base_url=fub.base_url, timeout=2,
                                                                  clock=clock)}, clock=clock)
    dispatcher.run_due()
    add_lead(db, router, make_lead(2))  # due now, but its notifier is held
    assert dispatcher.run_due() == []
    assert dispatcher._sleep(1.0) == 1.0
    clock.advance(seconds=29.5)
    assert dispatcher._sleep(1.0) == pytest.approx(0.5)
