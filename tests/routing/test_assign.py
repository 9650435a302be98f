"""Routing against the database (daemon/routing/assign.py, storage/routing.py), on SQLite and PostgreSQL.

When these fail, agents get unfair shares, two replicas give the same turn twice, a
restart starts the rotation over, a returning client goes to a stranger, or a hot lead
nobody claimed sits in the channel forever.
"""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from routingkit import ANA, BEN, CHO, START, Clock, add_lead, make_lead, make_router
from sqlalchemy import event, select

from daemon.intake import inbox
from daemon.lead import Origin, RawEmail
from daemon.pipeline import Engine, Worker
from daemon.routing.decide import Roster
from notifiers.followupboss import FollowUpBoss
from notifiers.hubspot import HubSpot
from notifiers.webhook import Webhook
from storage import leads, outbox
from storage import routing as store
from storage.db import Database
from storage.models import LeadRow, OutboxRow


def agents_of(db: Database) -> Counter[str | None]:
    with db.session() as s:
        return Counter(r.agent for r in leads.newest(s, limit=10_000))


def test_60_standard_leads_over_3_agents_give_20_each(db: Database):
    router = make_router(db)
    for n in range(60):
        add_lead(db, router, make_lead(n))
    assert agents_of(db) == {"Ana Ruiz": 20, "Ben Okafor": 20, "Cho Park": 20}
    with db.session() as s:
        turns = [e.turn for e in store.history(s, kind="assigned")]
        assert turns == list(range(60))
        assert {r.status for r in leads.newest(s, limit=100)} == {"assigned"}


def test_an_inactive_agent_is_skipped_30_30(db: Database):
    router = make_router(db, Roster((ANA, replace(BEN, active=False), CHO)))
    for n in range(60):
        add_lead(db, router, make_lead(n))
    assert agents_of(db) == {"Ana Ruiz": 30, "Cho Park": 30}


def test_weights_give_extra_turns(db: Database):
    router = make_router(db, Roster((replace(ANA, weight=2), BEN, CHO)))
    for n in range(40):
        add_lead(db, router, make_lead(n))
    assert agents_of(db) == {"Ana Ruiz": 20, "Ben Okafor": 10, "Cho Park": 10}


def test_a_restart_resumes_the_rotation_where_it_left_off(db: Database):
    add_lead(db, make_router(db), make_lead(1))  # Ana
    add_lead(db, make_router(db), make_lead(2))  # Ben
    db.dispose()
    again = Database(str(db.url.render_as_string(hide_password=False)))
    try:
        add_lead(again, make_router(again), make_lead(3))
        with again.session() as s:
            assert [r.agent for r in reversed(leads.newest(s))] == ["Ana Ruiz", "Ben Okafor", "Cho Park"]
            assert store.pointer_position(s) == 3
    finally:
        again.dispose()


def test_a_turn_is_only_taken_when_the_transaction_commits(db: Database):
    router = make_router(db)
    with pytest.raises(RuntimeError), db.session() as s:
        lead_id = leads.insert(s, make_lead(1), inbound_email_id=None)
        router.route(s, lead_id, make_lead(1))
        raise RuntimeError("the email's transaction fails after routing")
    add_lead(db, router, make_lead(2))
    assert agents_of(db) == {"Ana Ruiz": 1}  # Ana's turn was not lost with the rollback


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_8_threads_routing_400_leads_at_once_never_give_a_turn_twice(db: Database):
    router = make_router(db, Roster((ANA, BEN, CHO, replace(ANA, name="Dee", slack_user_id="U0DEE"))))
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(k: int) -> None:
        try:
            start.wait()
            for n in range(k * 50, k * 50 + 50):
                add_lead(db, router, make_lead(n))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with db.session() as s:
        turns = sorted(e.turn for e in store.history(s, kind="assigned") if e.turn is not None)
        assert store.pointer_position(s) == 400
    assert turns == list(range(400))
    assert agents_of(db) == {"Ana Ruiz": 100, "Ben Okafor": 100, "Cho Park": 100, "Dee": 100}


def test_a_repeat_inquiry_keeps_its_agent_and_takes_no_turn(db: Database):
    clock = Clock()
    router = make_router(db, clock=clock)
    first = add_lead(db, router, make_lead(1, phone="+13055550100"))  # Ana
    clock.advance(days=3)
    again = add_lead(db, router, make_lead(2, phone="+13055550100", email="other@example.com"))
    by_email = add_lead(db, router, make_lead(3, phone="+13055559999", email="DANA1@example.com"))
    hot = add_lead(db, router, make_lead(4, "hot", phone="+13055550100"))
    nxt = add_lead(db, router, make_lead(5))
    with db.session() as s:
        rows = {i: leads.get(s, i) for i in (first, again, by_email, hot, nxt)}
        assert rows[first].agent == "Ana Ruiz"
        # each keeps the agent of the newest earlier lead of the same person
        for i, of in ((again, first), (by_email, first), (hot, again)):
            assert (rows[i].agent, rows[i].status, rows[i].repeat_of) == ("Ana Ruiz", "assigned", of)
        assert rows[nxt].agent == "Ben Okafor"  # the repeats took no turn
        assert [e.kind for e in store.history(s, again)] == ["repeat"]
        assert store.pointer_position(s) == 2


def test_an_inquiry_older_than_the_repeat_window_takes_a_turn(db: Database):
    clock = Clock()
    router = make_router(db, clock=clock)
    router.repeat_window = timedelta(days=30)
    add_lead(db, router, make_lead(1, phone="+13055550100"))
    clock.advance(days=31)
    with db.session() as s:  # created_at is the database's clock: age the first lead by hand
        for row in s.scalars(select(LeadRow)):
            row.created_at = START - timedelta(days=31)
    later = add_lead(db, router, make_lead(2, phone="+13055550100"))
    with db.session() as s:
        assert leads.get(s, later).agent == "Ben Okafor"


def test_low_tier_leads_go_to_drip_and_are_counted(db: Database):
    router = make_router(db)
    ids = [add_lead(db, router, make_lead(n, "low")) for n in range(3)]
    with db.session() as s:
        assert {leads.get(s, i).status for i in ids} == {"drip"}
        assert {leads.get(s, i).agent for i in ids} == {None}
        assert store.counts_since(s, START - timedelta(days=1))[None] == {"drip": 3}
        assert store.pointer_position(s) == 0
        assert outbox.listing(s) == []  # nothing for Slack; the CRM carries the drip tag


def test_a_hot_lead_is_offered_with_a_deadline_and_one_claim_message(db: Database):
    router = make_router(db)
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    with db.session() as s:
        row = leads.get(s, lead_id)
        (offer,) = outbox.listing(s)
    assert row.status == "offered" and row.agent is None
    assert row.claim_deadline == START + timedelta(minutes=5)
    assert (offer.notifier, offer.action, offer.idempotency_key) == (
        "slack", "claim_offer", f"lead:{lead_id}:slack:claim_offer")


def test_an_assigned_lead_is_sent_to_its_agent_by_dm(db: Database):
    router = make_router(db)
    lead_id = add_lead(db, router, make_lead(1))
    with db.session() as s:
        (dm,) = outbox.listing(s)
    assert (dm.action, dm.payload["user"], dm.payload["why"]) == ("dm_agent", "U0ANA", "round_robin")
    assert dm.lead_id == lead_id


def test_routing_the_same_lead_twice_writes_each_outbox_row_once(db: Database):
    router = make_router(db)
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    with db.session() as s:
        router.route(s, lead_id, make_lead(1, "hot"))  # e.g. a re-run after a crash
        assert len(s.scalars(select(OutboxRow)).all()) == 1


def test_claim_timeout_falls_back_to_round_robin_and_records_it(db: Database):
    clock = Clock()
    router = make_router(db, clock=clock)
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    clock.advance(minutes=4, seconds=59)
    assert router.expire_offers() == []
    clock.advance(seconds=2)
    assert router.expire_offers() == [lead_id]
    assert router.expire_offers() == []
    with db.session() as s:
        row = leads.get(s, lead_id)
        kinds = [e.kind for e in store.history(s, lead_id)]
        actions = sorted(d.action for d in outbox.listing(s, lead_id=lead_id))
        (update,) = [d for d in outbox.listing(s, lead_id=lead_id) if d.action == "claim_update"]
    assert (row.status, row.agent, row.claimed_by) == ("assigned", "Ana Ruiz", None)
    assert kinds == ["offered", "timeout", "assigned"]
    assert actions == ["claim_offer", "claim_update", "dm_agent"]
    assert update.payload["kind"] == "timeout" and update.payload["agent"] == "Ana Ruiz"
    assert update.payload["seconds"] == pytest.approx(301)


def test_a_claim_beats_the_timeout_that_comes_after_it(db: Database):
    clock = Clock()
    router = make_router(db, clock=clock)
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    clock.advance(seconds=42)
    assert router.claim(lead_id, "U0CHO").verdict == "won"
    clock.advance(minutes=10)
    assert router.expire_offers() == []
    with db.session() as s:
        row = leads.get(s, lead_id)
        assert (row.status, row.agent, row.claimed_by) == ("claimed", "Cho Park", "Cho Park")
        assert store.pointer_position(s) == 0  # a claim takes no round-robin turn


def test_claims_race_one_winner_the_rest_told_who_won(db: Database):
    router = make_router(db)
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    results = []
    start = threading.Barrier(3)

    def click(user: str) -> None:
        start.wait()
        results.append(router.claim(lead_id, user))

    threads = [threading.Thread(target=click, args=(u,)) for u in ("U0ANA", "U0BEN", "U0CHO")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdicts = Counter(r.verdict for r in results)
    assert verdicts == {"won": 1, "taken": 2}
    winner = next(r.agent for r in results if r.verdict == "won")
    assert {r.agent for r in results} == {winner}
    with db.session() as s:
        taken = [d for d in outbox.listing(s, lead_id=lead_id) if d.action == "claim_taken"]
        assert len(taken) == 2 and all("Already claimed by" in d.payload["text"] for d in taken)
        assert Counter(e.kind for e in store.history(s, lead_id)) == {
            "offered": 1, "claimed": 1, "claim_lost": 2}


def test_a_slack_user_who_is_not_an_agent_cannot_claim(db: Database):
    router = make_router(db)
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    assert router.claim(lead_id, "U0STRANGER").verdict == "not_an_agent"
    with db.session() as s:
        assert leads.get(s, lead_id).status == "offered"


def test_with_no_active_agent_a_lead_is_unassigned_and_alerted(db: Database):
    router = make_router(db, Roster((replace(ANA, active=False),)))
    lead_id = add_lead(db, router, make_lead(1))
    with db.session() as s:
        assert leads.get(s, lead_id).status == "unassigned"
        (alert,) = outbox.listing(s)
    assert alert.action == "alert" and f"Lead #{lead_id} has no agent" in alert.payload["text"]


# -- through the worker ------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
RULE = """\
source: portal
version: 1
match:
  from: ["*@portal.example"]
fields:
  full_name: [{label: Name}]
  phone: [{label: Phone}]
  email: [{label: Email}]
  message: [{label: Message}]
required: [full_name, phone]
"""


def portal_email(n: int, message: str = "Hello") -> bytes:
    return (f"From: Portal <leads@portal.example>\r\nSubject: Lead {n}\r\n"
            f"Message-ID: <p.{n}@portal.example>\r\n\r\n"
            f"Name: Dana Lee\r\nPhone: (305) 555-{n:04d}\r\nEmail: d{n}@example.com\r\n"
            f"Message: {message}\r\n").encode()


def test_the_worker_routes_each_lead_in_the_transaction_that_stores_it(db: Database, tmp_path: Path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "portal.yaml").write_text(RULE)
    shutil.copy(REPO / "rules" / "scoring.yaml", tmp_path / "rules")
    engine = Engine.load(tmp_path / "rules")
    worker = Worker(db, lambda: engine, router=make_router(db))
    for n in range(3):
        inbox.accept(db, RawEmail(portal_email(n), Origin.CLI, START))
    results = worker.run_pending()
    assert len(results) == 3
    assert agents_of(db) == {"Ana Ruiz": 1, "Ben Okafor": 1, "Cho Park": 1}
    with db.session() as s:
        assert sorted(d.action for d in outbox.listing(s)) == ["dm_agent"] * 3


def test_a_dead_letter_alerts_the_tech_channel_once(db: Database, tmp_path: Path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "portal.yaml").write_text(RULE)
    shutil.copy(REPO / "rules" / "scoring.yaml", tmp_path / "rules")
    engine = Engine.load(tmp_path / "rules")
    worker = Worker(db, lambda: engine, router=make_router(db))
    inbox.accept(db, RawEmail(b"From: leads@else.example\r\nSubject: New lead from Ana Ruiz\r\n\r\n"
                              b"Ana Ruiz is interested in 12 Elm St and would like a tour.\r\n",
                              Origin.CLI, START))
    inbox.accept(db, RawEmail(b"From: someone@else.example\r\nSubject: hi\r\n\r\nhello\r\n",
                              Origin.CLI, START))
    (result, ignored) = worker.run_pending()
    assert ignored.dead_letter_id is None  # a stray note is no dead letter and pages nobody
    with db.session() as s:
        (alert,) = outbox.listing(s)
    assert alert.idempotency_key == f"alert:dead_letter:{result.dead_letter_id}"
    text = alert.payload["text"]
    assert "no_matching_rule" in text
    # a sender no rule knows: the alert says how to draft its rule, and to replay after that
    assert f"leadpipe rules new else.example --dlq {result.dead_letter_id}" in text
    assert f"once the rule is promoted, `leadpipe dlq replay {result.dead_letter_id}`" in text


# -- the CRMs and webhooks (destinations) ----------------------------------------------------

DESTINATIONS = {"followupboss": FollowUpBoss, "hubspot": HubSpot, "webhook": Webhook}


def crm_rows(db: Database, lead_id: int) -> list[tuple[str, str, str, dict[str, object]]]:
    with db.session() as s:
        return sorted((d.notifier, d.action, d.idempotency_key, dict(d.payload))
                      for d in outbox.listing(s, lead_id=lead_id) if d.notifier != "slack")


def test_every_routed_lead_reaches_each_crm_once_with_its_agent_in_the_routing_transaction(db: Database):
    router = make_router(db, slack=False)
    router.destinations = DESTINATIONS
    assigned = add_lead(db, router, make_lead(1))
    drip = add_lead(db, router, make_lead(2, "low"))
    repeat = add_lead(db, router, replace(make_lead(1), message_id="<again@x>"))
    with db.session() as s:
        router.route(s, assigned, make_lead(1))  # a re-run writes nothing twice

    ana = {"status": "assigned", "why": "round_robin", "agent": "Ana Ruiz",
           "agent_email": "ana@example.com", "crm_user_id": "17"}
    assert crm_rows(db, assigned) == [
        ("followupboss", "event", f"lead:{assigned}:followupboss:event", ana),
        ("hubspot", "contact", f"lead:{assigned}:hubspot:contact", ana),
        ("hubspot", "note", f"lead:{assigned}:hubspot:note", ana),
        ("hubspot", "task", f"lead:{assigned}:hubspot:task", ana),
        ("webhook", "lead", f"lead:{assigned}:webhook:lead", ana),
    ]
    nobody = {"status": "drip", "why": "drip", "agent": None, "agent_email": None, "crm_user_id": None}
    assert [(n, a, p) for n, a, _, p in crm_rows(db, drip)] == [
        ("followupboss", "event", nobody), ("hubspot", "contact", nobody), ("hubspot", "note", nobody),
        ("webhook", "lead", nobody)]  # no follow-up task for a drip lead
    assert {p["why"] for *_, p in crm_rows(db, repeat)} == {"repeat"}
    assert {p["agent"] for *_, p in crm_rows(db, repeat)} == {"Ana Ruiz"}


def test_crm_rows_are_written_only_if_the_routing_commits(db: Database):
    router = make_router(db, slack=False)
    router.destinations = DESTINATIONS
    with pytest.raises(RuntimeError), db.session() as s:
        lead_id = leads.insert(s, make_lead(1), inbound_email_id=None)
        router.route(s, lead_id, make_lead(1))
        raise RuntimeError("the worker died before the commit")
    with db.session() as s:
        assert outbox.listing(s) == []


def test_an_offered_hot_lead_reaches_the_crm_at_its_claim_with_the_agent_who_claimed_it(db: Database):
    router = make_router(db)
    router.destinations = DESTINATIONS
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    assert crm_rows(db, lead_id) == []  # not while nobody has it
    assert router.claim(lead_id, "U0BEN").verdict == "won"
    assert {(p["status"], p["agent"], p["crm_user_id"]) for *_, p in crm_rows(db, lead_id)} == {
        ("claimed", "Ben Okafor", "18")}
    assert len(crm_rows(db, lead_id)) == 5


def test_an_unclaimed_hot_lead_reaches_the_crm_at_its_timeout_with_its_round_robin_agent(db: Database):
    clock = Clock()
    router = make_router(db, clock=clock)
    router.destinations = {"followupboss": FollowUpBoss}
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    clock.advance(minutes=6)
    assert router.expire_offers() == [lead_id]
    ((_, _, _, routed),) = crm_rows(db, lead_id)
    assert (routed["status"], routed["why"], routed["agent"]) == ("assigned", "timeout", "Ana Ruiz")


def test_unassigned_leads_and_leads_with_routing_off_still_reach_the_crm(db: Database):
    router = make_router(db, Roster((replace(ANA, active=False),)), slack=False)
    router.destinations = {"followupboss": FollowUpBoss}
    unassigned = add_lead(db, router, make_lead(1))
    off = make_router(db, Roster(()), slack=False)
    off.destinations = {"followupboss": FollowUpBoss}
    new = add_lead(db, off, make_lead(2))
    assert [p["status"] for *_, p in crm_rows(db, unassigned)] == ["unassigned"]
    assert [(p["status"], p["why"]) for *_, p in crm_rows(db, new)] == [("new", "routing_off")]


def test_a_repeat_lookup_reads_the_phone_and_email_indexes_not_the_whole_window(sqlite_url: str):
    """The lookup runs under the routing lock for every lead: comparing ``lower(email)``
    made SQLite read every lead of the 30-day window (~20 ms at 60,000 leads), so routing
    slowed down as the database grew."""
    db = Database(sqlite_url)
    db.upgrade()
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "FROM leads" in statement:
            seen.append((statement, params))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        with db.session() as s:
            store.previous_owner(s, phone="+13055550100", email="Dana1@Example.com",
                                 since=START - timedelta(days=30), exclude_lead_id=0)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert len(seen) == 1
    statement, params = seen[0]
    with db.engine.connect() as conn:
        plan = " | ".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params))
    db.dispose()
    assert "USING INDEX ix_leads_phone" in plan and "USING INDEX ix_leads_email" in plan, plan
    assert "SCAN leads" not in plan and "ix_leads_created_at" not in plan, plan


def test_a_repeat_inquiry_is_found_by_email_whatever_its_case(db: Database):
    router = make_router(db)
    first = add_lead(db, router, make_lead(1, email="Dana.Lee@Example.COM"))
    again = add_lead(db, router, make_lead(2, phone="+13055559999", email="dana.lee@example.com"))
    with db.session() as s:
        assert leads.get(s, first).lead.email == "dana.lee@example.com"
        assert (leads.get(s, again).agent, leads.get(s, again).repeat_of) == ("Ana Ruiz", first)
