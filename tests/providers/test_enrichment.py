"""Person enrichment (daemon/providers/enrichment.py, person_http.py, peopledatalabs.py),
over the database (SQLite and PostgreSQL) and against stand-ins of the providers' APIs
(tests/enrichservers.py).

When one of these fails: an agent is shown the wrong company or a dangerous link, a person
is paid for twice (or a "no match" is asked again and again), running out of credits goes
unheard or is retried as if it were a blip, a slow or rate-limited provider holds leads
back from agents, a late answer never reaches the stored lead or the CRM, the lead's own
name, email or phone is overwritten by a provider's guess, an email lands in the logs or
the cache — or configuring nothing changes something.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from crmservers import HubSpotServer, WebhookReceiver
from enrichservers import PdlServer, PersonServer
from providerkit import alerts_sent, jobs, store, stored
from routingkit import TEAM, make_lead

from daemon.config import ProviderSettings, Settings
from daemon.delivery.alerts import Alerts
from daemon.delivery.dispatch import Dispatcher, RetryPolicy
from daemon.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from daemon.lead import Enrichment, Lead, Profile
from daemon.providers.base import email_key
from daemon.providers.enrichment import Enriching
from daemon.providers.peopledatalabs import PeopleDataLabs
from daemon.providers.person_http import PersonHttp
from daemon.providers.registry import ENRICHERS, build_enricher
from daemon.routing.assign import Router
from notifiers.hubspot import HubSpot
from notifiers.webhook import EVENT_HEADER, Webhook
from storage import leads, provider_jobs
from storage.db import Database
from storage.models import EnrichmentRow

DANA = "dana@example.com"
NOBODY = "nobody@example.com"


@pytest.fixture
def pdl():
    with PdlServer() as server:
        yield server


def make_enriching(db: Database, server: PdlServer, **kw: object) -> Enriching:
    options: dict[str, object] = {"rate": 100.0, "budget": 0.3, "timeout": 0.5, "hold_base": 0.05,
                                  "policy": RetryPolicy(max_attempts=8, base=timedelta(seconds=0.1)),
                                  **kw}
    client = PeopleDataLabs(server.key, base_url=server.base_url)
    return Enriching(db, client, **options)  # type: ignore[arg-type]


def lead_of(email: str, n: int = 1) -> Lead:
    return make_lead(n, email=email)


# -- the adapters ---------------------------------------------------------------------------

def test_pdl_maps_company_title_profiles_and_likelihood_and_sends_only_the_email(pdl: PdlServer):
    got = PeopleDataLabs(pdl.key, base_url=pdl.base_url).ask(DANA, timeout=2)
    assert got == Enrichment("peopledatalabs", True, company="compass", title="broker associate",
                             profiles=(Profile("linkedin", "https://linkedin.com/in/dana-lee"),
                                       Profile("twitter", "https://twitter.com/danalee"),
                                       Profile("facebook", "https://facebook.com/dana.lee.1")),
                             likelihood=8)
    # the javascript: "profile" is dropped; PDL's name, emails and phone are never taken
    assert "javascript" not in str(got.to_json()) and "someone" not in str(got.to_json())
    (req,) = pdl.named("enrich")
    assert req.query == {"email": DANA} and req.headers["X-Api-Key"] == pdl.key


def test_pdl_no_match_is_a_result_and_its_errors_are_ours(pdl: PdlServer):
    client = PeopleDataLabs(pdl.key, base_url=pdl.base_url)
    assert client.ask(NOBODY, timeout=2) == Enrichment("peopledatalabs", False)
    pdl.credits = 0
    with pytest.raises(PermanentDeliveryError, match="402 out of credits: You have hit"):
        client.ask(DANA, timeout=2)
    pdl.fail_next("enrich", 429, retry_after=30, body={"status": 429, "error": {
        "type": "rate_limit_error", "message": "rate limit exceeded"}})
    before = datetime.now(UTC)
    with pytest.raises(TransientDeliveryError) as caught:
        client.ask(DANA, timeout=2)
    assert caught.value.retry_after is not None
    assert before + timedelta(seconds=29) <= caught.value.retry_after <= before + timedelta(seconds=32)
    with pytest.raises(PermanentDeliveryError, match="401"):
        PeopleDataLabs("wrong-key", base_url=pdl.base_url).ask(DANA, timeout=2)
    pdl.fail_next("enrich", 200, body={"status": 200, "likelihood": 3, "data": {}}, hang=1.0)
    with pytest.raises(TransientDeliveryError, match="no answer within"):
        client.ask(DANA, timeout=0.2)


def test_the_generic_shape_is_parsed_with_its_bearer_key_and_404_is_no_match():
    with PersonServer(key="k3y") as server:
        client = PersonHttp(server.url, api_key="k3y")
        got = client.ask("SAM@example.com", timeout=2)
        assert (got.found, got.company, got.title, got.profiles, got.likelihood) == (
            True, "Acme Robotics", "VP Engineering",
            (Profile("linkedin", "https://linkedin.com/in/sam-rivera"),), 6)
        assert client.ask(NOBODY, timeout=2).found is False
        with pytest.raises(PermanentDeliveryError, match="401") as caught:
            PersonHttp(server.url, api_key="bad").ask(DANA, timeout=2)
        assert "@" not in str(caught.value)  # the error names the endpoint, not the email


def test_providers_are_chosen_by_name_and_say_what_they_need():
    assert set(ENRICHERS) == {"generic", "peopledatalabs"}
    assert build_enricher(Settings().enrichment) is None
    with pytest.raises(ConfigError, match="valid providers: generic, peopledatalabs"):
        build_enricher(ProviderSettings(provider="clearbit"))
    with pytest.raises(ConfigError, match=r"enrichment\.api_key"):
        build_enricher(ProviderSettings(provider="peopledatalabs"))
    with pytest.raises(ConfigError, match=r"enrichment\.base_url"):
        build_enricher(ProviderSettings(provider="generic"))


# -- asking without stalling -------------------------------------------------------------------

def test_a_person_asked_once_is_answered_from_the_cache_which_keeps_no_email(db: Database,
                                                                            pdl: PdlServer):
    e = make_enriching(db, pdl)
    first_id, first = store(db, e, lead_of(DANA, 1))
    again = e.inline(lead_of("  Dana@Example.COM", 2))
    assert (first.how, again.how, pdl.calls) == ("asked", "cache", 1)
    assert again.lead.enrichment == stored(db, first_id).enrichment
    assert stored(db, first_id).to_json()["enrichment"] == {
        "provider": "peopledatalabs", "company": "compass", "title": "broker associate",
        "profiles": [{"network": "linkedin", "url": "https://linkedin.com/in/dana-lee"},
                     {"network": "twitter", "url": "https://twitter.com/danalee"},
                     {"network": "facebook", "url": "https://facebook.com/dana.lee.1"}],
        "likelihood": 8}
    with db.session() as s:
        (row,) = s.query(EnrichmentRow).all()
        assert row.email_key == email_key(DANA) and "dana" not in row.email_key


def test_an_enrichment_never_changes_the_leads_name_email_or_phone(db: Database, pdl: PdlServer):
    lead = lead_of(DANA)
    lead_id, inline = store(db, make_enriching(db, pdl), lead)
    after = stored(db, lead_id)
    assert inline.lead.enrichment is not None
    assert (after.full_name, after.first_name, after.last_name, after.email, after.phone) == (
        lead.full_name, lead.first_name, lead.last_name, lead.email, lead.phone)


def test_no_match_is_cached_as_no_match_and_the_lead_keeps_no_enrichment(db: Database,
                                                                         pdl: PdlServer):
    e = make_enriching(db, pdl)
    lead_id, inline = store(db, e, lead_of(NOBODY))
    assert (inline.how, inline.deferred, e.inline(lead_of(NOBODY, 2)).how) == ("asked", False, "cache")
    assert pdl.calls == 1
    assert stored(db, lead_id).to_json()["enrichment"] is None


def test_out_of_credits_is_permanent_alerted_once_and_leads_go_on(db: Database, pdl: PdlServer):
    pdl.credits = 0
    alerts = Alerts(db, to_slack=True)
    e = make_enriching(db, pdl, alerts=alerts)
    results = [store(db, e, lead_of(f"p{n}@example.com" if n else DANA, n), router=Router(db, TEAM))
               for n in range(3)]
    assert [r[1].how for r in results][1:] == ["held", "held"]
    assert results[0][1].how.startswith("asked: peopledatalabs: 402 out of credits")
    assert pdl.calls == 1 and e.gate.held_for() > 800  # not asked again for 15 minutes
    (alert,) = alerts_sent(db, "provider_refused:peopledatalabs:")
    assert "402 out of credits" in alert and "enrichment.api_key" in alert
    assert len(jobs(db, "enrichment")) == 3
    with db.session() as s:
        assert {leads.get(s, i).status for i, _ in results} == {"assigned"}  # type: ignore[union-attr]


def test_a_429_defers_the_lead_and_the_answer_is_filled_in_after_retry_after(db: Database,
                                                                             pdl: PdlServer):
    pdl.fail_next("enrich", 429, retry_after=1, body={"status": 429, "error": {
        "type": "rate_limit_error", "message": "rate limit exceeded"}})
    e = make_enriching(db, pdl)
    lead_id, inline = store(db, e, lead_of(DANA), router=Router(db, TEAM))
    assert inline.deferred and "429" in inline.how
    assert 0.5 < e.gate.held_for() <= 1.0
    assert stored(db, lead_id).enrichment is None
    e.drain(deadline=time.monotonic() + 5)
    assert stored(db, lead_id).enrichment is not None
    assert pdl.statuses("enrich") == [429, 200]
    (job,) = jobs(db, "enrichment")
    assert job.status == "done"


def test_a_slow_provider_is_not_waited_for_and_its_answer_reaches_the_lead_later(db: Database,
                                                                                 pdl: PdlServer):
    pdl.fail_next("enrich", 200, hang=1.0, body={"status": 200, "likelihood": 1, "data": {}})
    e = make_enriching(db, pdl, budget=0.2)
    started = time.monotonic()
    lead_id, inline = store(db, e, lead_of(DANA), router=Router(db, TEAM))
    assert time.monotonic() - started < 0.6
    assert inline.deferred and "no answer within" in inline.how
    e.drain(deadline=time.monotonic() + 5)
    assert stored(db, lead_id).enrichment is not None
    assert stored(db, lead_id).enrichment.company == "compass"  # type: ignore[union-attr]


def test_the_daily_quota_is_shared_with_the_database_and_over_it_leads_wait(db: Database,
                                                                            pdl: PdlServer):
    e = make_enriching(db, pdl, daily_quota=1, rate=10_000)
    _, first = store(db, e, lead_of(DANA, 1))
    _, second = store(db, e, lead_of("sam@example.com", 2))
    assert (first.how, second.how, pdl.calls) == ("asked", "over quota", 1)
    (done,) = e.run_due()
    assert (done.fate, done.error) == ("released", "over quota")
    with db.session() as s:
        assert provider_jobs.usage(s, "peopledatalabs", datetime.now(UTC).date().isoformat()) == 1


def test_with_no_enricher_configured_nothing_is_asked_and_the_lead_is_as_before(db: Database):
    assert Enriching.from_settings(db, Settings().enrichment, alerts=None) is None
    with db.session() as s:
        lead_id = leads.insert(s, make_lead(1), inbound_email_id=None)
    assert stored(db, lead_id).to_json()["enrichment"] is None
    assert jobs(db, "enrichment") == []


def test_no_email_reaches_the_log_at_info(db: Database, pdl: PdlServer, caplog: pytest.LogCaptureFixture):
    pdl.fail_next("enrich", 503)
    e = make_enriching(db, pdl)
    with caplog.at_level(logging.INFO):
        store(db, e, lead_of(DANA))
        e.drain(deadline=time.monotonic() + 5)
    assert "enriched by peopledatalabs" in caplog.text
    assert "@" not in caplog.text


# -- a late answer reaches the destinations ---------------------------------------------------

def test_a_late_enrichment_reaches_the_webhook_and_hubspot_as_updates(db: Database, pdl: PdlServer):
    pdl.down = True
    with WebhookReceiver() as hook, HubSpotServer() as hs:
        dests = {"webhook": Webhook, "hubspot": HubSpot}
        router = Router(db, TEAM, destinations=dests)
        dispatcher = Dispatcher(db, {"webhook": Webhook(hook.url, "s3cret-s3cret", timeout=2),
                                     "hubspot": HubSpot("tok", base_url=hs.base_url, timeout=2)})
        e = make_enriching(db, pdl, destinations=dests)
        lead_id, inline = store(db, e, lead_of(DANA), router=router)
        dispatcher.drain()
        assert inline.deferred
        (first,) = hook.requests
        assert first.body["enrichment"] is None
        (note,) = hs.notes
        assert "About them" not in str(note)

        pdl.down = False
        e.drain(deadline=time.monotonic() + 5)
        dispatcher.drain()

        _, update = hook.requests
        second = hs.notes[1]
    assert update.headers.get(EVENT_HEADER) == "lead.updated"
    assert update.headers["Idempotency-Key"] == f"lead:{lead_id}:webhook:lead_update:enrichment"
    assert update.body["enrichment"]["company"] == "compass"
    assert (update.body["full_name"], update.body["email"]) == (first.body["full_name"], DANA)
    body = second["properties"]["hs_note_body"]
    assert "About them" in body and "broker associate at compass" in body
    assert "https://linkedin.com/in/dana-lee" in body
