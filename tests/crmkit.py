"""Shared pieces of the CRM and webhook tests: a router that sends leads to destinations,
a dispatcher with quick retries, and a real-time drain."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from crmservers import FubServer
from routingkit import TEAM, Clock, make_lead

from daemon.delivery.alerts import Alerts
from daemon.delivery.dispatch import Dispatcher, RetryPolicy, Sent
from daemon.routing.assign import Router
from daemon.routing.decide import Roster
from notifiers import Notifier
from notifiers.base import RateLimit
from notifiers.followupboss import FollowUpBoss
from storage import leads as store_leads
from storage import outbox
from storage.db import Database
from storage.outbox import Delivery


def crm_router(db: Database, destinations: Mapping[str, type[Notifier]], *, clock: Clock | None = None,
               slack: bool = False, roster: Roster = TEAM) -> Router:
    clock = clock or Clock()
    return Router(db, roster, slack=slack, offer_hot=slack, clock=clock,
                  alerts=Alerts(db, to_slack=True, clock=clock), destinations=destinations)


def crm_dispatcher(db: Database, notifiers: Mapping[str, Notifier], *,
                   clock: Callable[..., object] | None = None, max_attempts: int = 8,
                   base: float = 0.05, cap: float = 0.2, lease: float = 60.0) -> Dispatcher:
    return Dispatcher(db, notifiers, clock=clock,  # type: ignore[arg-type]
                      policy=RetryPolicy(max_attempts=max_attempts, base=timedelta(seconds=base),
                                         cap=timedelta(seconds=cap)),
                      lease=timedelta(seconds=lease), alerts=Alerts(db, to_slack=True))


def drain_until(dispatcher: Dispatcher, done: Callable[[], bool], timeout: float = 15.0) -> list[Sent]:
    """Passes in real time until ``done()`` (or fail after ``timeout`` seconds)."""
    sent: list[Sent] = []
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done after {timeout}s: {[(s.action, s.fate, s.error) for s in sent]}")
        batch = dispatcher.run_due()
        sent.extend(batch)
        if not batch:
            time.sleep(0.01)
    return sent


def rows(db: Database, *, lead_id: int | None = None, notifier: str | None = None) -> list[Delivery]:
    with db.session() as s:
        return sorted(outbox.listing(s, lead_id=lead_id, notifier=notifier, limit=None), key=lambda d: d.id)


def all_delivered(db: Database, notifier: str) -> Callable[[], bool]:
    return lambda: all(d.status == "delivered" for d in rows(db, notifier=notifier))


@dataclass(frozen=True)
class Burst:
    """How a burst of leads drained through a rate-limited CRM."""

    leads: int
    seconds: float  # from the first call to the last lead delivered
    allowed: float  # the server's limit, in calls per second
    rejected: int  # calls the server answered 429
    gaps: tuple[float, ...] = ()  # the longest pauses between calls, in seconds

    @property
    def rate(self) -> float:
        return self.leads / self.seconds

    @property
    def share(self) -> float:
        """The drain rate as a share of the allowed rate."""
        return self.rate / self.allowed


def burst(db: Database, fub: FubServer, *, leads: int, requests: int, per: float,
          threads: int = 1) -> Burst:
    """Route ``leads`` leads at once to Follow Up Boss, whose server allows ``requests``
    calls per sliding ``per`` seconds, with ``rate_limit`` configured to the same, and time
    the dispatcher draining them (``threads`` dispatcher threads sharing one process's pacing)."""
    fub.limit = (requests, per)
    router = crm_router(db, {"followupboss": FollowUpBoss})
    with db.session() as s:
        for n in range(leads):
            lead = make_lead(n, email=f"burst{n}@example.com", phone=f"+1212555{n:04d}")
            router.route(s, store_leads.insert(s, lead, inbound_email_id=None), lead)
    notifier = FollowUpBoss("fub-key", base_url=fub.base_url, system_key="sys", timeout=5,
                            rate_limit=RateLimit(requests, per))
    dispatcher = crm_dispatcher(db, {"followupboss": notifier})
    stop, wake = threading.Event(), threading.Event()
    workers = [threading.Thread(target=dispatcher.run, args=(stop, wake, 0.05), daemon=True)
               for _ in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    try:
        deadline = time.monotonic() + 2 * leads * per / requests + 30
        while len(fub.events) < leads:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(fub.events)} of {leads} delivered in time")
            time.sleep(0.01)
        first = fub.requests[0].at
        finished = time.perf_counter()
    finally:
        stop.set()
        wake.set()
        for w in workers:
            w.join(timeout=5)
    assert first >= started
    arrivals = [r.at for r in fub.requests]
    gaps = sorted((b - a for a, b in itertools.pairwise(arrivals)), reverse=True)[:3]
    return Burst(leads, finished - first, requests / per, fub.rejected, tuple(round(g, 3) for g in gaps))
