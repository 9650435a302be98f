"""HubSpot (notifiers/hubspot.py) through the outbox, against a local server that keeps
contacts, answers 409 for a known email and whose search lags its writes, on SQLite and
PostgreSQL.

When these fail, the brokerage's HubSpot fills with duplicate contacts (after a race, a
lost answer or a crash), an agent's corrected contact data is overwritten, a lead arrives
without its note or follow-up task, or the task goes to the wrong owner.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from crmkit import all_delivered, crm_dispatcher, crm_router, drain_until, rows
from crmservers import HubSpotServer
from routingkit import add_lead, make_lead

from daemon.config import Settings
from daemon.delivery.dispatch import build_notifiers
from daemon.errors import ConfigError
from notifiers.hubspot import HubSpot, merge
from storage import outbox
from storage.db import Database

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def hubspot() -> Iterator[HubSpotServer]:
    with HubSpotServer() as server:
        yield server


def hs_notifier(server: HubSpotServer, **kw: object) -> HubSpot:
    options: dict[str, object] = {"access_token": "pat-test", "base_url": server.base_url,
                                  "timeout": 2, "search_lag": server.search_lag or 1, **kw}
    return HubSpot.from_config(options)


def deliver_all(db: Database, server: HubSpotServer, **kw: object) -> None:
    dispatcher = crm_dispatcher(db, {"hubspot": hs_notifier(server, **kw)})
    drain_until(dispatcher, all_delivered(db, "hubspot"))


def test_a_lead_becomes_one_contact_one_note_and_one_task_for_its_agent(db: Database, hubspot: HubSpotServer):
    router = crm_router(db, {"hubspot": HubSpot})
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    deliver_all(db, hubspot)

    (contact,) = hubspot.contacts.values()
    assert contact["properties"] == {"email": "dana1@example.com", "phone": "+13055550001",
                                     "firstname": "Dana", "lastname": "Lee1", "hubspot_owner_id": "17"}
    (note,) = hubspot.notes
    (task,) = hubspot.tasks
    for obj, type_id in ((note, 202), (task, 204)):
        (assoc,) = obj["associations"]
        assert assoc["to"]["id"] == contact["id"] and assoc["types"][0]["associationTypeId"] == type_id
    assert "Can I see it this week?" in note["properties"]["hs_note_body"]
    assert "Assigned to Ana Ruiz &lt;ana@example.com&gt;, CRM user 17 (round_robin)" in note["properties"]["hs_note_body"]
    assert task["properties"]["hubspot_owner_id"] == "17"
    assert (task["properties"]["hs_task_priority"], task["properties"]["hs_task_type"]) == ("HIGH", "CALL")
    assert [(d.action, d.status, d.idempotency_key) for d in rows(db, lead_id=lead_id)] == [
        ("contact", "delivered", f"lead:{lead_id}:hubspot:contact"),
        ("note", "delivered", f"lead:{lead_id}:hubspot:note"),
        ("task", "delivered", f"lead:{lead_id}:hubspot:task"),
    ]
    assert rows(db, lead_id=lead_id)[0].result == {"contact_id": contact["id"], "created": True}
    assert len(hubspot.named("search")) == 1 and len(hubspot.named("create")) == 1


def test_an_existing_contact_gets_a_note_not_a_duplicate_and_keeps_what_the_crm_knows(db: Database, hubspot: HubSpotServer):
    existing = hubspot.add_contact({"email": "DANA2@example.com", "firstname": "Danielle",
                                    "lastname": "Old", "phone": ""})
    router = crm_router(db, {"hubspot": HubSpot})
    add_lead(db, router, make_lead(2))
    deliver_all(db, hubspot, fields={"lastname": "lead_wins"})

    assert list(hubspot.contacts) == [existing]
    assert hubspot.contacts[existing]["properties"] == {
        "email": "DANA2@example.com",  # fill_empty: HubSpot has one
        "firstname": "Danielle",  # crm_wins (the default for names): an agent's correction stays
        "lastname": "Lee2",  # lead_wins, as configured
        "phone": "+13055550002",  # fill_empty: HubSpot had none
        "hubspot_owner_id": "17",  # fill_empty: no owner yet, so the routed agent (Ana)
    }
    assert hubspot.named("create") == []
    assert [n["associations"][0]["to"]["id"] for n in hubspot.notes] == [existing]
    assert [t["associations"][0]["to"]["id"] for t in hubspot.tasks] == [existing]


def test_a_contact_with_the_same_phone_is_found_when_the_lead_has_no_email(db: Database, hubspot: HubSpotServer):
    existing = hubspot.add_contact({"phone": "+13055550003", "firstname": "D", "hubspot_owner_id": "99"})
    router = crm_router(db, {"hubspot": HubSpot})
    add_lead(db, router, replace(make_lead(3), email=None))
    deliver_all(db, hubspot)
    assert list(hubspot.contacts) == [existing]
    assert hubspot.contacts[existing]["properties"]["hubspot_owner_id"] == "99"  # the CRM's owner stays
    assert len(hubspot.notes) == 1


def test_the_409_race_updates_the_contact_that_already_exists(db: Database):
    # The contact was created a moment ago (by an agent, another integration): the search
    # does not see it yet, the create is answered 409 with its id.
    with HubSpotServer(search_lag=30) as hubspot:
        existing = hubspot.add_contact({"email": "dana4@example.com", "firstname": "Dana"},
                                       searchable=False)
        router = crm_router(db, {"hubspot": HubSpot})
        lead_id = add_lead(db, router, make_lead(4))
        dispatcher = crm_dispatcher(db, {"hubspot": hs_notifier(hubspot, search_lag=30, lease=60,
                                                                  timeout=2)})
        drain_until(dispatcher, all_delivered(db, "hubspot"))
        assert hubspot.statuses("search") == [200] and hubspot.statuses("create") == [409]
        assert list(hubspot.contacts) == [existing]
        assert hubspot.contacts[existing]["properties"]["phone"] == "+13055550004"
        assert rows(db, lead_id=lead_id)[0].result == {
            "contact_id": existing, "created": False, "conflict": True,
            "updated": ["hubspot_owner_id", "phone"]}  # lastname is crm_wins: never written
        assert [n["associations"][0]["to"]["id"] for n in hubspot.notes] == [existing]


def test_a_create_whose_answer_is_lost_is_retried_only_once_the_search_can_see_it(db: Database):
    with HubSpotServer(search_lag=0.5) as hubspot:
        router = crm_router(db, {"hubspot": HubSpot})
        add_lead(db, router, replace(make_lead(5), email=None))  # phone only: no 409 to save us
        hubspot.fail_next("create", 504, hang=1.0, process=True)  # created, but the answer is lost
        deliver_all(db, hubspot, search_lag=0.5, timeout=0.3)
        assert len(hubspot.contacts) == 1 and len(hubspot.notes) == 1 and len(hubspot.tasks) == 1
        _, second_search = hubspot.named("search")
        (create,) = hubspot.named("create")
        assert second_search.at - create.at >= 0.5


def test_the_note_and_task_wait_for_their_contact(db: Database, hubspot: HubSpotServer):
    router = crm_router(db, {"hubspot": HubSpot})
    add_lead(db, router, make_lead(6))
    hubspot.fail_next("search", 503)
    deliver_all(db, hubspot)
    assert len(hubspot.contacts) == 1 and len(hubspot.notes) == 1 and len(hubspot.tasks) == 1


def test_a_drip_lead_gets_a_contact_and_a_note_but_no_task(db: Database, hubspot: HubSpotServer):
    router = crm_router(db, {"hubspot": HubSpot})
    lead_id = add_lead(db, router, make_lead(7, "low"))
    deliver_all(db, hubspot)
    assert [d.action for d in rows(db, lead_id=lead_id)] == ["contact", "note"]
    assert hubspot.tasks == [] and "drip" in hubspot.notes[0]["properties"]["hs_note_body"]
    assert "hubspot_owner_id" not in next(iter(hubspot.contacts.values()))["properties"]


# The child dispatcher: leases the rows for 2.5 s and blocks in the create that the server
# carries out but never answers, until it is killed.
CHILD = """
import sys
from datetime import timedelta
from daemon.delivery.dispatch import Dispatcher
from notifiers.hubspot import HubSpot
from storage.db import Database

hubspot = HubSpot("pat-test", base_url=sys.argv[2], search_lag=1.0, timeout=60)
Dispatcher(Database(sys.argv[1]), {"hubspot": hubspot}, lease=timedelta(seconds=2.5)).drain()
"""


def test_a_dispatcher_killed_mid_create_and_restarted_makes_no_second_contact(db: Database, database_url: str):
    with HubSpotServer(search_lag=1.0) as hubspot:
        router = crm_router(db, {"hubspot": HubSpot})
        add_lead(db, router, replace(make_lead(8), email=None))  # phone only: no 409 to save us
        hubspot.fail_next("create", 201, hang=60, process=True)
        child = subprocess.Popen([sys.executable, "-c", CHILD, database_url, hubspot.base_url], cwd=REPO)
        try:
            hubspot.wait_for("create", 1, timeout=30)
            time.sleep(0.1)
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=10) == -signal.SIGKILL
        finally:
            child.kill()
        assert len(hubspot.contacts) == 1  # made by the call that never got its answer

        restarted = crm_dispatcher(db, {"hubspot": HubSpot("pat-test", base_url=hubspot.base_url,
                                                           search_lag=1.0, timeout=2)}, lease=2.5)
        drain_until(restarted, all_delivered(db, "hubspot"), timeout=20)
        assert len(hubspot.contacts) == 1
        assert len(hubspot.notes) == 1 and len(hubspot.tasks) == 1
        assert len(hubspot.named("create")) == 1  # the restart found it and did not create again
        contact_row = next(d for d in rows(db, notifier="hubspot") if d.action == "contact")
        assert contact_row.result is not None and contact_row.result["created"] is False


# The child dispatcher killed between a create's two writes: httpcore sends a request's
# headers and its body in two socket writes (the GIL may pass to another thread between
# them), and a SIGKILL there leaves the server the headers and a connection closed short
# of its Content-Length — what bench/crash.py --crm hubspot's kills rarely hit.
CHILD_CUT = """
import os, signal, sys
from datetime import timedelta
from httpcore._sync.http11 import HTTP11Connection
from daemon.delivery.dispatch import Dispatcher
from notifiers.hubspot import HubSpot
from storage.db import Database

send_body = HTTP11Connection._send_request_body
def killed_before_the_body(self, request):
    if request.method == b"POST" and request.url.target == b"/crm/v3/objects/contacts":
        os.kill(os.getpid(), signal.SIGKILL)  # the headers are written, the body is not
    send_body(self, request)
HTTP11Connection._send_request_body = killed_before_the_body

hubspot = HubSpot("pat-test", base_url=sys.argv[2], search_lag=1.0, timeout=2)
Dispatcher(Database(sys.argv[1]), {"hubspot": hubspot}, lease=timedelta(seconds=2.5)).drain()
"""


def test_a_dispatcher_killed_between_a_creates_headers_and_body_makes_no_stray_contact(
        db: Database, database_url: str):
    # the local HubSpot used to carry the cut-off create out with no properties: one
    # contact with no email and no phone, which bench/crash.py counts as nobody's
    with HubSpotServer(search_lag=1.0) as hubspot:
        router = crm_router(db, {"hubspot": HubSpot})
        add_lead(db, router, make_lead(10))
        child = subprocess.run([sys.executable, "-c", CHILD_CUT, database_url, hubspot.base_url],
                               cwd=REPO, timeout=60, check=False)
        assert child.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 5
        while not hubspot.aborted and time.monotonic() < deadline:
            time.sleep(0.01)
        assert hubspot.aborted == [("POST", "/crm/v3/objects/contacts")]
        assert hubspot.contacts == {} and hubspot.named("create") == []

        restarted = crm_dispatcher(db, {"hubspot": hs_notifier(hubspot, search_lag=1, timeout=1,
                                                                 lease=2.5)}, lease=2.5)
        drain_until(restarted, all_delivered(db, "hubspot"), timeout=20)
        (contact,) = hubspot.contacts.values()
        assert (contact["properties"]["email"], contact["properties"]["phone"]) == (
            "dana10@example.com", "+13055550010")
        assert len(hubspot.notes) == 1 and len(hubspot.tasks) == 1


def test_a_request_cut_off_before_its_whole_body_is_not_carried_out(hubspot: HubSpotServer):
    body = b'{"properties": {"email": "cut@example.com", "phone": "+13055550099"}}'
    for sent in (b"", body[:20]):
        with socket.create_connection(("127.0.0.1", hubspot.port)) as sock:
            sock.sendall(b"POST /crm/v3/objects/contacts HTTP/1.1\r\nHost: hubspot\r\n"
                         b"Authorization: Bearer pat-test\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + sent)
    deadline = time.monotonic() + 5
    while len(hubspot.aborted) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hubspot.aborted == [("POST", "/crm/v3/objects/contacts")] * 2
    assert hubspot.contacts == {} and hubspot.requests == []


def test_a_note_and_task_outwait_a_contact_still_leased_by_a_killed_process(db: Database, hubspot: HubSpotServer):
    # bench/crash.py --crm hubspot: a process leased the contact row (its batch ended
    # there) and was killed; the restart finds the note and task due but the contact
    # leased for a whole lease more. Quick retries must not use up their attempts (dead)
    # before the contact is retried and delivered.
    router = crm_router(db, {"hubspot": HubSpot})
    add_lead(db, router, make_lead(9))
    with db.session() as s:
        (contact_row,) = outbox.claim_due(s, now=datetime.now(UTC), limit=1,
                                          lease_until=datetime.now(UTC) + timedelta(seconds=3))
    assert contact_row.action == "contact"
    restarted = crm_dispatcher(db, {"hubspot": hs_notifier(hubspot, lease=3, search_lag=1, timeout=1)},
                               lease=3)
    drain_until(restarted, lambda: all(d.status != "pending" and d.status != "sending"
                                       for d in rows(db, notifier="hubspot")), timeout=20)
    assert [(d.action, d.status) for d in rows(db, notifier="hubspot")] == [
        ("contact", "delivered"), ("note", "delivered"), ("task", "delivered")]
    assert len(hubspot.contacts) == 1 and len(hubspot.notes) == 1 and len(hubspot.tasks) == 1


def lagged(server: HubSpotServer) -> HubSpot:
    """The notifier as configured for a HubSpot whose search lags 30 s (the default)."""
    return hs_notifier(server, search_lag=30, lease=60, timeout=2)


def test_two_leads_of_one_person_within_the_search_lag_make_one_contact(db: Database):
    # issue 15: lead A created contact 670; lead B (same phone, new email) searched 0.84 s
    # later, found nothing (the search lags writes), got no 409 (new email) and created 673
    with HubSpotServer(search_lag=30) as hubspot:
        router = crm_router(db, {"hubspot": HubSpot})
        a = add_lead(db, router, make_lead(11, phone="+16155550166", email="dana@example.com"))
        b = add_lead(db, router, make_lead(12, phone="+16155550166", email="dana.lee@work.example"))
        dispatcher = crm_dispatcher(db, {"hubspot": lagged(hubspot)}, lease=60)
        drain_until(dispatcher, all_delivered(db, "hubspot"))

        (contact,) = hubspot.contacts.values()
        assert contact["properties"]["email"] == "dana@example.com"  # fill_empty: A's stays
        assert contact["properties"]["phone"] == "+16155550166"
        assert [n["associations"][0]["to"]["id"] for n in hubspot.notes] == [contact["id"]] * 2
        assert [t["associations"][0]["to"]["id"] for t in hubspot.tasks] == [contact["id"]] * 2
        assert rows(db, lead_id=a)[0].result == {"contact_id": contact["id"], "created": True}
        assert rows(db, lead_id=b)[0].result == {"contact_id": contact["id"], "created": False,
                                                 "reused": True, "updated": []}
        assert len(hubspot.named("create")) == 1 and len(hubspot.named("search")) == 1


def test_a_second_leads_update_does_not_overwrite_the_email_the_first_just_set(db: Database):
    # issue 15: fill_empty was decided on the lagged search result — B's PATCH overwrote
    # the email A's PATCH had just set on the person's existing contact
    with HubSpotServer(search_lag=30) as hubspot:
        existing = hubspot.add_contact({"phone": "+16155550166", "firstname": "Dana"})
        router = crm_router(db, {"hubspot": HubSpot})
        add_lead(db, router, make_lead(13, phone="+16155550166", email="dana@example.com"))
        add_lead(db, router, make_lead(14, phone="+16155550166", email="dana.lee@work.example"))
        dispatcher = crm_dispatcher(db, {"hubspot": lagged(hubspot)}, lease=60)
        drain_until(dispatcher, all_delivered(db, "hubspot"))

        assert list(hubspot.contacts) == [existing]
        assert hubspot.contacts[existing]["properties"]["email"] == "dana@example.com"
        assert [r.body["properties"] for r in hubspot.named("update")] == [
            {"email": "dana@example.com", "hubspot_owner_id": "17"}]  # B had nothing to fill


def test_a_contact_found_by_search_is_read_fresh_before_fill_empty_is_decided(db: Database):
    # an agent typed the person's email into HubSpot a moment ago: the search still shows
    # the contact without one, and fill_empty must not write the lead's over it
    with HubSpotServer(search_lag=30) as hubspot:
        existing = hubspot.add_contact({"phone": "+16155550166", "firstname": "Dana"})
        hubspot.edit_contact(existing, {"email": "dana.private@example.com"})
        router = crm_router(db, {"hubspot": HubSpot})
        add_lead(db, router, make_lead(15, phone="+16155550166", email="dana@example.com"))
        dispatcher = crm_dispatcher(db, {"hubspot": lagged(hubspot)}, lease=60)
        drain_until(dispatcher, all_delivered(db, "hubspot"))
        assert len(hubspot.named("search")) == 1 and len(hubspot.named("read")) == 1
        assert hubspot.contacts[existing]["properties"]["email"] == "dana.private@example.com"
        assert [r.body["properties"] for r in hubspot.named("update")] == [{"hubspot_owner_id": "17"}]


def test_one_persons_contact_rows_go_one_at_a_time_across_replicas(db: Database):
    # replica 1 is still creating A's contact when replica 2 takes B's row: B must wait
    # for it (and then reuse it), not search, find nothing and create a second contact
    with HubSpotServer(search_lag=30) as hubspot:
        router = crm_router(db, {"hubspot": HubSpot})
        add_lead(db, router, make_lead(16, phone="+16155550166", email="dana@example.com"))
        b = add_lead(db, router, make_lead(17, phone="+16155550166", email="dana.lee@work.example"))
        first = crm_dispatcher(db, {"hubspot": lagged(hubspot)}, lease=60)
        second = crm_dispatcher(db, {"hubspot": lagged(hubspot)}, lease=60)
        hubspot.hold("create")
        busy = threading.Thread(target=first.run_due, kwargs={"limit": 1})  # A's contact row
        busy.start()
        try:
            assert hubspot.held.wait(10)
            sent = second.run_due()
        finally:
            hubspot.release()
            busy.join(10)
        (b_contact,) = [x for x in sent if x.action == "contact"]
        assert b_contact.fate == "deferred"
        assert len(hubspot.named("search")) == 1  # A's only
        drain_until(second, all_delivered(db, "hubspot"))
        assert len(hubspot.contacts) == 1 and len(hubspot.named("create")) == 1
        assert rows(db, lead_id=b)[0].result["reused"] is True  # type: ignore[index]


def test_a_contact_deleted_in_hubspot_since_the_earlier_lead_is_looked_up_again(db: Database, hubspot: HubSpotServer):
    router = crm_router(db, {"hubspot": HubSpot})
    add_lead(db, router, make_lead(18, phone="+16155550166"))
    deliver_all(db, hubspot)
    hubspot.contacts.clear()  # merged away or deleted by an agent
    add_lead(db, router, make_lead(19, phone="+16155550166", email="dana19@example.com"))
    deliver_all(db, hubspot)
    (contact,) = hubspot.contacts.values()
    assert contact["properties"]["email"] == "dana19@example.com"
    assert [n["associations"][0]["to"]["id"] for n in hubspot.notes][-1] == contact["id"]


def test_field_policies_decide_what_an_existing_contact_gets():
    current = {"firstname": "Danielle", "lastname": "", "phone": "+1305", "email": "d@x"}
    wanted = {"firstname": "Dana", "lastname": "Lee", "phone": "+1999", "email": "d@x"}
    assert merge(current, wanted, {"firstname": "crm_wins", "lastname": "crm_wins",
                                   "phone": "fill_empty", "email": "fill_empty"}) == {}
    assert merge(current, wanted, {"firstname": "lead_wins", "lastname": "fill_empty",
                                   "phone": "lead_wins", "email": "lead_wins"}) == {
        "firstname": "Dana", "lastname": "Lee", "phone": "+1999"}


@pytest.mark.parametrize(("entry", "message"), [
    ({"type": "hubspot"}, r"notifiers\[0\]\.access_token: is required \(or `access_token_file`\)"),
    ({"type": "hubspot", "access_token": "t", "fields": {"firstname": "sometimes"}},
     r"notifiers\[0\]\.fields\.firstname: 'sometimes' is not one of crm_wins, lead_wins, fill_empty"),
    ({"type": "hubspot", "access_token": "t", "fields": {"jobtitle": "lead_wins"}},
     "leadpipe does not write 'jobtitle'"),
    ({"type": "hubspot", "access_token": "t", "search_lag": "60s"},
     "delivery.lease must be longer than search_lag"),
])
def test_a_bad_hubspot_entry_stops_the_start_naming_the_key(entry: dict[str, object], message: str):
    with pytest.raises(ConfigError, match=message):
        build_notifiers(Settings(notifiers=[entry]))


def test_the_hubspot_defaults_are_its_documented_limits(hubspot: HubSpotServer):
    built = build_notifiers(Settings(notifiers=[{"type": "hubspot", "access_token": "t",
                                                  "base_url": hubspot.base_url}]))
    notifier = built["hubspot"]
    assert {k: str(v) for k, v in notifier.rate_limits.items()} == {"requests": "100/10s", "search": "4/1s"}
    assert "can read contacts" in notifier.check()  # type: ignore[attr-defined]
