"""Geocoding without stalling the pipeline (daemon/providers/geocoding.py), over the database
(SQLite and PostgreSQL) and against the geocoder stand-in (tests/geoservers.py).

When one of these fails: an address is paid for twice, the quota runs out without anyone
hearing (or the tech channel hears a hundred times), a slow or rate-limited geocoder holds
leads back from agents, a deferred look-up is lost or never reaches the stored lead and the
CRM, the geocoder is asked faster than its limit — or configuring nothing changes something.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from crmservers import WebhookReceiver
from geokit import make_geocoding, run_burst
from geoservers import GeoServer
from providerkit import alerts_sent, jobs, store, stored
from routingkit import TEAM, make_lead

from daemon.config import Settings
from daemon.delivery.alerts import Alerts
from daemon.delivery.dispatch import Dispatcher, RetryPolicy
from daemon.lead import Lead, Property
from daemon.providers.geocoding import Geocoding
from daemon.routing.assign import Router
from notifiers.webhook import EVENT_HEADER, Webhook
from storage import leads, provider_jobs
from storage.db import Database

MIAMI = Property(address="12 Palm Ave", city="Miami", state="FL", postal_code="33101")


@pytest.fixture
def census():
    with GeoServer("census") as server:
        yield server


def lead_at(n: int, prop: Property | None = None) -> Lead:
    base = make_lead(n)
    return Lead(**{**base.__dict__, "property": prop or Property(
        address=f"{n} Ocean Dr", city="Miami Beach", state="FL", postal_code="33139")})


def test_an_address_asked_once_is_answered_from_the_cache_ever_after(db: Database, census: GeoServer):
    g = make_geocoding(db, census)
    first_id, first = store(db, g, lead_at(1, MIAMI))
    # the same address written another way, inline and deferred: never asked again
    again = g.inline(lead_at(2, Property(address="12 PALM AVE.", city="miami", state="FL",
                                         postal_code="33101")))
    with db.session() as s:
        later = leads.insert(s, lead_at(3, MIAMI), inbound_email_id=None)
        provider_jobs.defer(s, later, "geocode", "census", at=datetime.now(UTC))
    (done,) = g.run_due()

    assert (first.how, again.how, done.fate) == ("asked", "cache", "done")
    assert census.count == 1
    for lead in (stored(db, first_id), again.lead, stored(db, later)):
        assert (lead.property.latitude, lead.property.longitude, lead.property.county,
                lead.property.geocode_quality, lead.property.geocoder) == (
            25.77427, -80.19366, "Miami-Dade County", "Match", "census")


def test_no_match_is_cached_too_and_leaves_the_property_as_it_was(db: Database, census: GeoServer):
    g = make_geocoding(db, census)
    nowhere = Property(address="1 Nowhere Rd", city="Faketown", state="ZZ")
    lead_id, inline = store(db, g, lead_at(1, nowhere))
    again = g.inline(lead_at(2, nowhere))
    assert (inline.how, inline.deferred, again.how) == ("asked", False, "cache")
    assert census.count == 1
    assert stored(db, lead_id).to_json()["property"]["latitude"] is None


def test_the_quota_nearly_used_up_tells_the_tech_channel_once(db: Database, census: GeoServer):
    alerts = Alerts(db, to_slack=True)
    g = make_geocoding(db, census, daily_quota=10, alert_at=0.9, alerts=alerts, rate=10_000)
    results = [g.inline(lead_at(n)) for n in range(12)]

    assert [r.how for r in results] == ["asked"] * 10 + ["over quota"] * 2
    assert census.count == 10
    (alert,) = alerts_sent(db, "provider_quota:census:")
    assert "9 of today's 10" in alert
    # a second replica (or the daemon after a restart) counts against the same quota
    other = make_geocoding(db, census, daily_quota=10, alerts=alerts, rate=10_000)
    assert other.inline(lead_at(99)).how == "over quota"
    assert census.count == 10
    assert len(alerts_sent(db, "provider_quota:")) == 1
    with db.session() as s:
        assert provider_jobs.usage(s, "census", datetime.now(UTC).date().isoformat()) == 10


def test_over_quota_the_lead_is_routed_and_its_look_up_waits_for_the_next_day(db: Database,
                                                                              census: GeoServer):
    g = make_geocoding(db, census, daily_quota=1)
    store(db, g, lead_at(1))
    lead_id, inline = store(db, g, lead_at(2), router=Router(db, TEAM))
    store(db, g, lead_at(3), router=Router(db, TEAM))
    done = g.run_due()

    assert (inline.deferred, inline.how) == (True, "over quota")
    assert [(d.fate, d.error) for d in done] == [("released", "over quota")] * 2
    assert census.count == 1
    with db.session() as s:
        assert leads.get(s, lead_id).status == "assigned"  # type: ignore[union-attr]
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)
    assert [(j.status, j.attempts, j.next_attempt_at) for j in jobs(db, "geocode")] == [("pending", 0, midnight)] * 2


def test_a_slow_geocoder_is_not_waited_for_and_its_answer_reaches_the_lead_later(db: Database,
                                                                                 census: GeoServer):
    census.set_mode("slow")
    census.delay = 2.0
    g = make_geocoding(db, census, budget=0.2, hold_base=0.05)
    lead_id, inline = store(db, g, lead_at(1, MIAMI), router=Router(db, TEAM))

    assert inline.deferred and inline.how.startswith("asked: census GET")
    assert stored(db, lead_id).property.latitude is None
    with db.session() as s:
        assert leads.get(s, lead_id).status == "assigned"  # type: ignore[union-attr]

    census.set_mode("ok")
    g.drain(deadline=time.monotonic() + 10)

    geo = stored(db, lead_id).to_json()["property"]
    assert (geo["latitude"], geo["longitude"], geo["county"], geo["geocode_quality"],
            geo["geocoder"]) == (25.77427, -80.19366, "Miami-Dade County", "Match", "census")
    (job,) = jobs(db, "geocode")
    assert job.status == "done"


def test_a_429_holds_the_geocoder_until_its_retry_after(db: Database, census: GeoServer):
    census.set_mode("429")
    census.retry_after = 120
    g = make_geocoding(db, census)
    _, first = store(db, g, lead_at(1))
    _, second = store(db, g, lead_at(2))
    assert (first.how.startswith("asked"), second.how) == (True, "held")
    assert census.count == 1
    assert 115 < g.gate.held_for() <= 120
    assert g.run_due() == []  # the runner does not ask either while held
    assert census.count == 1


def test_a_deferred_look_up_retries_as_a_row_and_retry_after_wins(db: Database, census: GeoServer):
    g = make_geocoding(db, census)
    census.set_mode("429")
    census.retry_after = 60
    with db.session() as s:
        lead_id = leads.insert(s, lead_at(1), inbound_email_id=None)
        provider_jobs.defer(s, lead_id, "geocode", "census", at=datetime.now(UTC))
    before = datetime.now(UTC)
    (done,) = g.run_due()
    (job,) = jobs(db, "geocode")
    assert (done.fate, job.status, job.attempts) == ("retry", "pending", 1)
    assert before + timedelta(seconds=59) <= job.next_attempt_at <= before + timedelta(seconds=62)
    assert "429" in (job.last_error or "")


def test_a_look_up_gives_up_after_its_attempts_and_alerts(db: Database, census: GeoServer):
    census.set_mode("503")
    alerts = Alerts(db, to_slack=True)
    g = make_geocoding(db, census, alerts=alerts,
                       policy=RetryPolicy(max_attempts=1, base=timedelta(seconds=0.1)))
    with db.session() as s:
        lead_id = leads.insert(s, lead_at(1), inbound_email_id=None)
        provider_jobs.defer(s, lead_id, "geocode", "census", at=datetime.now(UTC))
    (done,) = g.run_due()
    assert done.fate == "dead"
    (alert,) = alerts_sent(db, "geocode_dead:")
    assert f"lead #{lead_id}" in alert


def test_the_crm_is_sent_the_geocode_once_it_had_the_lead(db: Database, census: GeoServer):
    census.set_mode("503")
    with WebhookReceiver() as hook:
        webhook = Webhook(hook.url, "s3cret-s3cret", timeout=2)
        router = Router(db, TEAM, destinations={"webhook": Webhook})
        dispatcher = Dispatcher(db, {"webhook": webhook})
        g = make_geocoding(db, census, destinations={"webhook": Webhook}, hold_base=0.05)
        lead_id, inline = store(db, g, lead_at(1, MIAMI), router=router)
        dispatcher.drain()
        assert inline.deferred
        (first,) = hook.requests
        assert first.body["property"]["latitude"] is None and first.body["agent"] == "Ana Ruiz"

        census.set_mode("ok")
        g.drain(deadline=time.monotonic() + 10)
        dispatcher.drain()

    first, update = hook.requests
    assert update.headers.get(EVENT_HEADER) == "lead.updated"
    assert update.headers["Idempotency-Key"] == f"lead:{lead_id}:webhook:lead_update:geocode"
    assert (update.body["id"], update.body["property"]["latitude"], update.body["property"]["county"],
            update.body["agent_email"]) == (lead_id, 25.77427, "Miami-Dade County", "ana@example.com")


def test_a_crm_not_sent_the_lead_yet_gets_it_geocoded_and_no_update(db: Database, census: GeoServer):
    census.set_mode("503")
    with WebhookReceiver() as hook:
        router = Router(db, TEAM, destinations={"webhook": Webhook})
        g = make_geocoding(db, census, destinations={"webhook": Webhook}, hold_base=0.05)
        store(db, g, lead_at(1, MIAMI), router=router)
        census.set_mode("ok")
        g.drain(deadline=time.monotonic() + 10)  # before the dispatcher ever ran
        Dispatcher(db, {"webhook": Webhook(hook.url, "s3cret-s3cret", timeout=2)}).drain()
    (only,) = hook.requests
    assert only.body["property"]["latitude"] == 25.77427
    assert EVENT_HEADER not in only.headers


def test_with_no_geocoder_configured_nothing_is_asked_and_the_lead_is_as_before(db: Database):
    assert Geocoding.from_settings(db, Settings().geocoder, alerts=None) is None
    with db.session() as s:
        lead_id = leads.insert(s, make_lead(1), inbound_email_id=None)
    prop = stored(db, lead_id).to_json()["property"]
    assert {k: prop[k] for k in ("latitude", "longitude", "county", "geocode_quality",
                                 "geocoder")} == dict.fromkeys(
        ("latitude", "longitude", "county", "geocode_quality", "geocoder"))
    assert jobs(db, "geocode") == []


# -- the burst of issue 18 ---------------------------------------------------------------

@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_burst_of_1000_leads_is_routed_without_waiting_and_geocoded_once_the_geocoder_returns(
        db: Database, tmp_path: Path, census: GeoServer):
    census.set_mode("429")
    census.retry_after = 1
    _, g, seen = run_burst(db, tmp_path, census, 1000)
    assert g is not None

    # every lead routed, none geocoded: no answer came back during the burst …
    with db.session() as s:
        routed = leads.newest(s, limit=2000)
    assert len(routed) == 1000
    assert {r.status for r in routed} == {"assigned"}
    assert all(r.lead.property.latitude is None for r in routed)
    print(f"burst: {len(seen)} leads routed, the geocoder asked inline {census.count} times")
    assert 200 not in census.statuses
    # … and none waited on the geocoder: it was asked only when its hold let it, a
    # handful of times; every other lead went straight on
    asked = [i for i in seen if i.how.startswith("asked")]
    assert len(seen) == 1000 and len(asked) <= 20
    assert {i.how for i in seen if not i.how.startswith("asked")} <= {"held"}
    assert census.count == len(asked)
    assert len(jobs(db, "geocode")) == 1000

    # the runner finds the geocoder silent, then it returns: every lead is geocoded
    stop = threading.Event()
    runner = threading.Thread(target=g.run, args=(stop,), kwargs={"idle": 0.1}, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while census.count == len(asked) and time.monotonic() < deadline:
            time.sleep(0.05)
        census.set_mode("ok")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with db.session() as s:
                if provider_jobs.count_jobs(s, "geocode").get("done") == 1000:
                    break
            time.sleep(0.1)
    finally:
        stop.set()
        runner.join(timeout=5)

    with db.session() as s:
        assert provider_jobs.count_jobs(s, "geocode") == {"done": 1000}
        done = leads.newest(s, limit=2000)
    assert all(r.lead.property.latitude is not None and r.lead.property.county for r in done)
    assert {r.status for r in done} == {"assigned"}
    # each address asked once with success, and never more than 200 requests in a second
    assert census.statuses.count(200) == 1000
    assert census.max_in_window(1.0) <= 200
    assert max(census.per_second().values()) <= 200


def test_the_daemon_geocodes_what_it_takes_in_inline_or_on_its_next_pass(tmp_path: Path, census: GeoServer):
    """``leadpipe run --once`` with a geocoder: asked inline when it answers; when it does
    not, the lead is routed anyway and geocoded by the next run's pass over the rows."""
    from daemon.service import Service

    repo = Path(__file__).resolve().parents[2]
    inbox_dir = tmp_path / "inbox"
    inbox_dir.mkdir()
    settings = Settings(database_url=f"sqlite:///{tmp_path}/lp.db", rules_dir=repo / "rules",
                        inbox_dir=inbox_dir, agents=[{"name": "Ana Ruiz"}],
                        geocoder={"provider": "census", "base_url": census.base_url,
                                  "budget": "300ms", "timeout": "1s"})
    svc = Service(settings)
    try:
        assert svc.geocoding is not None and svc.worker.geocoding is svc.geocoding
        svc.geocoding.policy = RetryPolicy(base=timedelta(milliseconds=50))  # quick retries
        fixture = repo / "fixtures" / "emails" / "idx_website"
        (inbox_dir / "a.eml").write_bytes((fixture / "text_form.eml").read_bytes())
        (first,) = svc.run_once()
        census.set_mode("503")
        (inbox_dir / "b.eml").write_bytes((fixture / "seller_latin1.eml").read_bytes())
        (second,) = svc.run_once()
        with svc.db.session() as s:
            a, b = leads.get(s, first.lead_id), leads.get(s, second.lead_id)  # type: ignore[arg-type]
        assert a is not None and b is not None
        assert a.lead.property.latitude is not None and a.status == "assigned"
        assert b.lead.property.latitude is None and b.status in ("assigned", "drip")
        census.set_mode("ok")
        svc.geocoding.gate.held_until = 0.0  # as if its hold had run out
        svc.run_once()
        with svc.db.session() as s:
            b = leads.get(s, second.lead_id)  # type: ignore[arg-type]
        assert b is not None and b.lead.property.geocoder == "census"
    finally:
        svc.db.dispose()
