"""The storage layer's promises, checked on SQLite and on PostgreSQL alike.

Each test's name says what a user would lose if it failed: a lead dropped as a duplicate,
an email stored twice, a field that comes back different from what was stored.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from daemon.lead import (
    DeadLetter,
    DeadLetterReason,
    Inquiry,
    Lead,
    Origin,
    Property,
    RawEmail,
    ScoreLine,
)
from storage import dead_letters, inbound, leads
from storage.db import Database, alembic_config
from storage.models import Base, InboundEmail

WHEN = datetime(2026, 3, 14, 9, 26, 53, tzinfo=timezone(timedelta(hours=-5)))


def email_bytes(
    message_id: str | None = "<lead-1@mail.zillow.com>",
    body: str = "Ana wants to see 12 Palm Ave.",
) -> bytes:
    head = f"Message-ID: {message_id}\r\n" if message_id else ""
    return (
        f"{head}From: Zillow <leads@zillow.com>\r\nSubject: New lead\r\n\r\n{body}\r\n"
    ).encode()


def raw_email(data: bytes, **where: object) -> RawEmail:
    fields: dict[str, object] = {"origin": Origin.DIRECTORY, "received_at": WHEN, **where}
    return RawEmail(data=data, **fields)  # type: ignore[arg-type]


def imap_email(data: bytes, uid: int, uidvalidity: int = 7, mailbox: str = "leads") -> RawEmail:
    return raw_email(
        data,
        origin=Origin.IMAP,
        mailbox=mailbox,
        folder="INBOX",
        uidvalidity=uidvalidity,
        uid=uid,
    )


def headers(message_id: str | None = "<lead-1@mail.zillow.com>") -> inbound.InboundHeaders:
    return inbound.InboundHeaders(message_id=message_id, subject="New lead", sender="Zillow")


def store(db: Database, raw: RawEmail, message_id: str | None = None) -> inbound.Stored:
    mid = message_id if message_id is not None else _message_id_of(raw.data)
    with db.session() as s:
        return inbound.store(s, raw, headers(mid))


def _message_id_of(data: bytes) -> str | None:
    for line in data.decode().split("\r\n"):
        if line.startswith("Message-ID: "):
            return line.removeprefix("Message-ID: ")
    return None


def count_inbound(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(InboundEmail)) or 0


def head_revision(db: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()


# --- migrations -------------------------------------------------------------------------


def test_migrations_build_the_whole_schema_on_an_empty_database(database_url: str) -> None:
    """A new install (`leadpipe run` on an empty database) gets every table."""
    database = Database(database_url)
    try:
        assert database.current_revision() is None
        database.upgrade()
        assert database.current_revision() == head_revision(database)
        with database.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        database.dispose()


def test_upgrading_an_up_to_date_database_again_changes_nothing(db: Database) -> None:
    """Every daemon start runs the migrations; a restart must not touch stored emails."""
    stored = store(db, raw_email(email_bytes()))
    db.upgrade()
    db.upgrade()
    assert db.current_revision() == head_revision(db)
    assert count_inbound(db) == 1
    with db.session() as s:
        assert inbound.get_raw(s, stored.id) == raw_email(email_bytes())


def test_models_agree_with_the_migrations(db: Database) -> None:
    """A model change without a migration would break on a real database at runtime."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_migration_0004_lower_cases_the_emails_of_leads_stored_before_it(database_url: str) -> None:
    """Repeat inquiries are looked up by the indexed ``email = ?``: a lead stored with a
    capital letter in its address by an older version would never be found again."""
    from alembic import command

    database = Database(database_url)
    try:
        with database.engine.connect() as conn:
            cfg = alembic_config(database)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0003")
            conn.execute(text(
                "INSERT INTO leads (source, rule_version, email, score, tier, warnings, score_breakdown,"
                " status, created_at) VALUES ('zillow', '1', :e, 0, 'standard', '[]', '[]', 'new', :at)"
            ), [{"e": "Ana.Ruiz@Example.COM", "at": WHEN}, {"e": None, "at": WHEN}])
            conn.commit()
        database.upgrade()
        with database.engine.connect() as conn:
            emails = conn.execute(text("SELECT email FROM leads ORDER BY id")).scalars().all()
        assert emails == ["ana.ruiz@example.com", None]
    finally:
        database.dispose()


# --- inbound emails ---------------------------------------------------------------------


def test_the_same_email_stored_twice_is_one_row(db: Database) -> None:
    """An email fetched again (a restart, another folder, a copied file) is not a new lead."""
    first = store(db, raw_email(email_bytes(), path="/inbox/a.eml"))
    again = store(db, imap_email(email_bytes(), uid=41))
    assert first.created
    assert not again.created
    assert again.id == first.id
    assert again.status == "pending"
    assert count_inbound(db) == 1


def test_a_reused_message_id_with_another_body_is_not_dropped(db: Database) -> None:
    """Providers reuse Message-IDs; trusting them alone would silently lose leads."""
    first = store(db, raw_email(email_bytes(body="Ana wants 12 Palm Ave.")))
    second = store(db, raw_email(email_bytes(body="Bo wants 9 Bay Rd.")))
    assert first.created and second.created
    assert first.id != second.id
    assert count_inbound(db) == 2


def test_emails_without_message_id_are_deduplicated_by_content(db: Database) -> None:
    a = store(db, raw_email(email_bytes(message_id=None, body="one")))
    a_again = store(db, raw_email(email_bytes(message_id=None, body="one")))
    b = store(db, raw_email(email_bytes(message_id=None, body="two")))
    assert a_again.id == a.id and not a_again.created
    assert b.created and b.id != a.id
    assert count_inbound(db) == 2


def test_an_imap_uid_seen_again_is_not_stored_again(db: Database) -> None:
    """The watcher may refetch a UID after a crash; it must not become a second lead."""
    first = store(db, imap_email(email_bytes(body="first"), uid=100))
    refetched = store(db, imap_email(email_bytes(body="rewritten by the server"), uid=100))
    assert not refetched.created
    assert refetched.id == first.id
    assert count_inbound(db) == 1


def test_a_new_uidvalidity_makes_the_same_uid_a_new_email(db: Database) -> None:
    """After the server resets UIDVALIDITY, old UID numbers name different emails."""
    store(db, imap_email(email_bytes(body="before reset"), uid=1, uidvalidity=7))
    after = store(db, imap_email(email_bytes(body="after reset"), uid=1, uidvalidity=8))
    elsewhere = store(db, imap_email(email_bytes(body="other box"), uid=1, mailbox="rentals"))
    assert after.created and elsewhere.created
    assert count_inbound(db) == 3


def test_the_database_itself_refuses_a_duplicate_uid(db: Database) -> None:
    """The unique constraint, not only the look-up, keeps two replicas from racing."""

    def row(body: str) -> InboundEmail:
        data = email_bytes(body=body)
        return InboundEmail(
            origin="imap", mailbox="leads", folder="INBOX", uidvalidity=7, uid=5,
            content_hash=inbound.content_hash(data), dedup_key=f"test:{body}", raw=data,
            size=len(data), received_at=WHEN, status="pending", attempts=0, created_at=WHEN,
        )  # fmt: skip

    with db.session() as s:
        s.add(row("one"))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(row("two"))
        s.flush()
    assert count_inbound(db) == 1


def test_files_without_uids_are_all_kept(db: Database) -> None:
    """NULL UIDs (directory inbox, webhook) must not collide in the UID constraint."""
    for n in range(3):
        assert store(db, raw_email(email_bytes(body=f"file {n}"), path=f"/inbox/{n}.eml")).created
    assert count_inbound(db) == 3


def test_two_workers_storing_the_same_email_at_once_keep_one_row(db: Database) -> None:
    """The insert race (both look up, both insert) ends with one row and no error."""
    raw = imap_email(email_bytes(), uid=9)
    results: list[inbound.Stored] = []
    errors: list[BaseException] = []

    def other_worker() -> None:
        try:
            results.append(store(db, raw))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    with db.session() as s:
        mine = inbound.store(s, raw, headers())
        worker = threading.Thread(target=other_worker)
        worker.start()
        _wait_until_blocked(db, worker)
    worker.join(timeout=30)
    assert not errors, errors
    assert mine.created
    assert [(r.id, r.created) for r in results] == [(mine.id, False)]
    assert count_inbound(db) == 1


def _wait_until_blocked(db: Database, worker: threading.Thread) -> None:
    """Return once ``worker`` waits on our uncommitted row (PostgreSQL) or write lock."""
    if not db.is_postgres:
        time.sleep(0.2)  # SQLite: it queues on BEGIN IMMEDIATE, which we cannot observe
        return
    deadline = time.monotonic() + 10
    with db.engine.connect() as conn:
        while time.monotonic() < deadline and worker.is_alive():
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.01)
    pytest.fail("the second worker never waited for the first one's insert")


def test_received_at_comes_back_aware_and_equal(db: Database) -> None:
    """A time zone lost on the way would shift every lead's arrival time."""
    kolkata = datetime(2026, 1, 2, 23, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    stored = store(db, raw_email(email_bytes(), received_at=kolkata))
    with db.session() as s:
        back = inbound.get_raw(s, stored.id)
    assert back is not None
    assert back.received_at == kolkata
    assert back.received_at.utcoffset() == timedelta(0)


def test_a_naive_datetime_is_refused(db: Database) -> None:
    """A naive time would be read back as UTC whatever zone the caller meant."""
    with pytest.raises(StatementError, match="naive datetime"), db.session() as s:
        inbound.store(s, raw_email(email_bytes(), received_at=datetime(2026, 1, 2)), headers())


def test_claim_pending_gives_pending_emails_oldest_first(db: Database) -> None:
    ids = [store(db, raw_email(email_bytes(body=f"lead {n}"))).id for n in range(4)]
    with db.session() as s:
        inbound.mark(s, ids[1], "done")
    with db.session() as s:
        assert inbound.claim_pending(s, limit=2) == [ids[0], ids[2]]
        assert inbound.claim_pending(s) == [ids[0], ids[2], ids[3]]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_replicas_never_claim_the_same_email(db: Database) -> None:
    """With FOR UPDATE SKIP LOCKED, a second replica skips what the first holds."""
    ids = [store(db, raw_email(email_bytes(body=f"lead {n}"))).id for n in range(5)]
    with db.session() as first, db.session() as second:
        mine = inbound.claim_pending(first, limit=3)
        theirs = inbound.claim_pending(second, limit=3)
    assert mine == ids[:3]
    assert theirs == ids[3:]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_racing_replicas_process_every_email_exactly_once(db: Database) -> None:
    """Four workers claim and finish batches at once: no email twice, none left out."""
    total = 60
    with db.session() as s:
        for n in range(total):
            inbound.store(s, raw_email(email_bytes(body=f"lead {n}")), headers())
    claimed: list[list[int]] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(claimed))

    def worker(mine: list[int]) -> None:
        try:
            start.wait(timeout=10)
            while True:
                with db.session() as s:
                    batch = inbound.claim_pending(s, limit=3)
                    for inbound_id in batch:
                        inbound.mark(s, inbound_id, "done")
                if not batch:
                    return
                mine.extend(batch)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(c,)) for c in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    every = [i for c in claimed for i in c]
    assert len(every) == len(set(every)) == total
    with db.session() as s:
        assert inbound.count_by_status(s) == {"done": total}


# --- leads ------------------------------------------------------------------------------


def full_lead() -> Lead:
    return Lead(
        source="zillow",
        rule_version="2026-03-01",
        message_id="<lead-1@mail.zillow.com>",
        received_at=WHEN,
        full_name="José Ñúñez-Łukasiewicz",
        first_name="José",
        last_name="Ñúñez-Łukasiewicz",
        email="jose.nunez@example.com",
        phone="+13055550142",
        property=Property(
            address="1200 Brickell Bay Dr #3107",
            city="Miami",
            state="FL",
            postal_code="33131",
            price=1_249_999.99,
            mls_id="A11512345",
            url="https://www.zillow.com/homedetails/1200-Brickell/43859302_zpid/",
            address_verified=True,
            address_check="ZIP 33131 is in Miami, FL",
            address_usps="1200 BRICKELL BAY DR # 3107",
        ),
        budget_min=850_000.0,
        budget_max=1_300_000.5,
        intent="buy",
        inquiry=Inquiry(intent="buy_and_sell", urgency="now", pre_approved=False, cash=None,
                        investor=True, timeline_days=29, evidence=("urgency now: 'this weekend'",)),
        message="¿Sigue disponible? 🏠\nCall after 5pm — 谢谢",
        score=87,
        tier="hot",
        warnings=("phone: added country code +1", "name: split from full_name"),
        score_breakdown=(ScoreLine("has_phone", 30), ScoreLine("price_over_1m", 40)),
    )


def test_a_lead_round_trips_with_every_contract_field(db: Database) -> None:
    """What `leads list --json` prints must be exactly what the parser produced."""
    lead = full_lead()
    with db.session() as s:
        email_id = inbound.store(s, raw_email(email_bytes()), headers()).id
        lead_id = leads.insert(s, lead, inbound_email_id=email_id)
    with db.session() as s:
        stored = leads.get(s, lead_id)
        by_email = leads.by_inbound(s, email_id)
    assert stored is not None
    assert stored.lead == lead
    assert stored.lead.received_at is not None and stored.lead.received_at.tzinfo is not None
    assert stored.lead.property.price == 1_249_999.99
    assert (stored.id, stored.status, stored.agent, stored.claimed_by) == (
        lead_id,
        "new",
        None,
        None,
    )
    assert stored.inbound_email_id == email_id
    assert stored.created_at is not None and stored.created_at.tzinfo is not None
    assert by_email == stored
    assert stored.to_json()["property"]["price"] == 1_249_999.99


def test_absent_lead_values_come_back_as_none(db: Database) -> None:
    """The contract says absent is null, never an empty string."""
    lead = Lead(source="website", rule_version="1", tier="low")
    with db.session() as s:
        lead_id = leads.insert(s, lead, inbound_email_id=None)
    with db.session() as s:
        stored = leads.get(s, lead_id)
        missing = leads.get(s, lead_id + 1000)
    assert stored is not None
    assert stored.lead == lead
    assert stored.lead.property.is_empty()
    assert missing is None


def test_newest_leads_come_first(db: Database) -> None:
    with db.session() as s:
        first = leads.insert(s, Lead(source="zillow", rule_version="1"), inbound_email_id=None)
        second = leads.insert(s, Lead(source="redfin", rule_version="1"), inbound_email_id=None)
    with db.session() as s:
        assert [x.id for x in leads.newest(s)] == [second, first]
        assert [x.id for x in leads.newest(s, source="zillow")] == [first]


# --- dead letters -----------------------------------------------------------------------


def dead(detail: str = "no rule matched From: leads@unknown.example") -> DeadLetter:
    return DeadLetter(
        reason=DeadLetterReason.MISSING_REQUIRED_FIELD,
        detail=detail,
        rule="zillow",
        fields_found={"full_name": "Zoë Ångström", "price": "$450,000"},
        fields_missing=("email", "phone"),
    )


def test_dead_letters_keep_everything_needed_to_fix_and_replay(db: Database) -> None:
    """`dlq list`/`show` must say why, with what was found, for the right email."""
    with db.session() as s:
        first_email = inbound.store(s, raw_email(email_bytes(body="one")), headers()).id
        second_email = inbound.store(s, raw_email(email_bytes(body="two")), headers()).id
        first = dead_letters.insert(
            s, dead("first"), inbound_email_id=first_email, source_hint="zillow"
        )
        second = dead_letters.insert(
            s, dead("second"), inbound_email_id=second_email, source_hint=None
        )
    with db.session() as s:
        listed = dead_letters.listing(s)
        shown = dead_letters.get(s, first)
        assert [d.id for d in dead_letters.listing(s, source="zillow")] == [first]
        assert dead_letters.open_for_inbound(s, first_email) == first
        assert dead_letters.count_open(s) == 2
    assert [d.id for d in listed] == [second, first]
    assert shown is not None
    assert shown.dead_letter == dead("first")
    assert (shown.inbound_email_id, shown.status, shown.source_hint) == (
        first_email,
        "open",
        "zillow",
    )
    assert shown.message_id == "<lead-1@mail.zillow.com>"
    assert shown.subject == "New lead"
    assert shown.replay_count == 0 and shown.resolved_lead_id is None
    assert shown.created_at.tzinfo is not None


def test_replaying_a_dead_letter_counts_and_resolves_it(db: Database) -> None:
    """A replay that still fails keeps it open; one that makes a lead closes it."""
    with db.session() as s:
        email_id = inbound.store(s, raw_email(email_bytes()), headers()).id
        dl = dead_letters.insert(s, dead(), inbound_email_id=email_id, source_hint="zillow")
    with db.session() as s:
        dead_letters.record_replay(s, dl, resolved_lead_id=None)
    with db.session() as s:
        still = dead_letters.get(s, dl)
        assert still is not None and (still.status, still.replay_count) == ("open", 1)
        lead_id = leads.insert(s, full_lead(), inbound_email_id=email_id)
        dead_letters.record_replay(s, dl, resolved_lead_id=lead_id)
    with db.session() as s:
        done = dead_letters.get(s, dl)
        assert dead_letters.listing(s) == []
        assert [d.id for d in dead_letters.listing(s, status="resolved")] == [dl]
        assert dead_letters.open_for_inbound(s, email_id) is None
    assert done is not None
    assert (done.status, done.replay_count, done.resolved_lead_id) == ("resolved", 2, lead_id)


def test_a_replay_that_finds_no_lead_can_close_it_as_ignored(db: Database) -> None:
    with db.session() as s:
        email_id = inbound.store(s, raw_email(email_bytes()), headers()).id
        dl = dead_letters.insert(s, dead(), inbound_email_id=email_id, source_hint=None)
        dead_letters.record_replay(s, dl, resolved_lead_id=None, status="ignored")
    with db.session() as s:
        ignored = dead_letters.get(s, dl)
        assert dead_letters.count_open(s) == 0
    assert ignored is not None
    assert (ignored.status, ignored.replay_count, ignored.resolved_lead_id) == ("ignored", 1, None)


def test_a_failed_replay_records_the_newest_reason(db: Database) -> None:
    with db.session() as s:
        email_id = inbound.store(s, raw_email(email_bytes()), headers()).id
        dl = dead_letters.insert(s, dead(), inbound_email_id=email_id, source_hint=None)
    newer = DeadLetter(reason=DeadLetterReason.NO_MATCHING_RULE, detail="rule zillow removed")
    with db.session() as s:
        dead_letters.update_reason(s, dl, newer, source_hint="zillow")
    with db.session() as s:
        got = dead_letters.get(s, dl)
    assert got is not None
    assert got.dead_letter == newer
    assert got.source_hint == "zillow"
