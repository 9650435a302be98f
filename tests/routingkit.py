"""Shared pieces of the routing, dispatch and Slack tests: leads, a roster, a clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from daemon.delivery.alerts import Alerts
from daemon.delivery.dispatch import Dispatcher, RetryPolicy
from daemon.lead import Lead, Property
from daemon.routing.assign import Router
from daemon.routing.decide import Agent, Roster
from notifiers.slack import Slack
from storage import leads
from storage.db import Database

START = datetime(2026, 11, 3, 14, 0, tzinfo=UTC)

ANA = Agent("Ana Ruiz", email="ana@example.com", slack_user_id="U0ANA", crm_user_id="17")
BEN = Agent("Ben Okafor", email="ben@example.com", slack_user_id="U0BEN", crm_user_id="18")
CHO = Agent("Cho Park", email="cho@example.com", slack_user_id="U0CHO", crm_user_id="19")
TEAM = Roster((ANA, BEN, CHO))


class Clock:
    """A clock the test moves by hand; thread-safe."""

    def __init__(self, now: datetime = START):
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **kw: float) -> datetime:
        with self._lock:
            self._now += timedelta(**kw)
            return self._now


def make_lead(n: int, tier: str = "standard", *, phone: str | None = None,
              email: str | None = None) -> Lead:
    return Lead(
        source="zillow", rule_version="3", message_id=f"<lead.{n}@zillow.example>",
        received_at=START, full_name=f"Dana Lee{n}", first_name="Dana", last_name=f"Lee{n}",
        email=email if email is not None else f"dana{n}@example.com",
        phone=phone if phone is not None else f"+1305555{n:04d}",
        property=Property(address="12 Palm Ave", city="Miami", state="FL", postal_code="33101",
                          price=650000.0),
        budget_min=500000.0, budget_max=700000.0, intent="buy",
        message="Can I see it this week?", score={"hot": 90, "standard": 50, "low": 10}[tier],
        tier=tier,  # type: ignore[arg-type]
    )


def make_router(db: Database, roster: Roster = TEAM, *, clock: Clock | None = None,
                slack: bool = True, offer_hot: bool = True,
                claim_timeout: timedelta = timedelta(minutes=5)) -> Router:
    clock = clock or Clock()
    return Router(db, roster, claim_timeout=claim_timeout, slack=slack, offer_hot=offer_hot,
                  alerts=Alerts(db, to_slack=slack, clock=clock), clock=clock)


def add_lead(db: Database, router: Router | None, lead: Lead) -> int:
    """Store and route one lead in one transaction, as the worker does."""
    with db.session() as s:
        lead_id = leads.insert(s, lead, inbound_email_id=None)
        if router is not None:
            router.route(s, lead_id, lead)
    return lead_id


def make_dispatcher(db: Database, base_url: str, *, clock: Clock | None = None,
                    max_attempts: int = 8) -> Dispatcher:
    clock = clock or Clock()
    slack = Slack("xoxb-test", base_url=base_url, hot_leads_channel="C0HOT",
                  alerts_channel="C0ALERTS", timeout=2, clock=clock)
    return Dispatcher(db, {"slack": slack}, clock=clock,
                      policy=RetryPolicy(max_attempts=max_attempts),
                      alerts=Alerts(db, to_slack=True, clock=clock))
