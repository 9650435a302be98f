"""The IMAP watcher against real servers on loopback (pymap and Dovecot).

Each test names the promise to the brokerage that breaks if it fails: every email that
reaches the lead mailbox is stored exactly once, whatever happens to the server, the
network or the daemon; and a mailbox that cannot be used says why, and keeps trying.
"""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import sqlite3
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from imapservers import (  # the fixtures are imported to be used by name
    DovecotServer,
    ImapServer,
    TokenIntrospection,
    dovecot_oauth2,
    dovecot_tls,
    free_port,
    imap_server,
    make_email,
    spawn_child,
    start_server,
    wait_for,
)
from pydantic import ValidationError
from sqlalchemy import func, select

from daemon.config import MailboxSettings
from daemon.errors import MailboxError
from daemon.intake import inbox
from daemon.intake.imap import Backoff, MailboxWatcher, check
from daemon.lead import RawEmail
from storage import mailboxes
from storage.db import Database
from storage.inbound import Stored
from storage.models import InboundEmail

__all__ = ["dovecot_oauth2", "dovecot_tls", "imap_server"]  # fixtures, used by parameter name

FAST = Backoff(base=0.05, cap=0.3)


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()


def stored(db: Database) -> list[tuple[str | None, int | None, int | None]]:
    """(Message-ID, UIDVALIDITY, UID) of every stored email."""
    with db.session() as s:
        return list(
            s.execute(
                select(InboundEmail.message_id, InboundEmail.uidvalidity, InboundEmail.uid)
            )
        )


def count(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count(InboundEmail.id))) or 0)


def state(db: Database, folder: str = "INBOX") -> mailboxes.MailboxState | None:
    with db.session() as s:
        return mailboxes.get(s, "leads", folder)


def assert_each_once(db: Database, expected: int) -> None:
    rows = stored(db)
    ids = [r[0] for r in rows]
    assert len(rows) == expected, f"{len(rows)} stored, expected {expected}"
    assert len(set(ids)) == expected, "an email was stored twice"


@contextlib.contextmanager
def watching(watcher: MailboxWatcher) -> Iterator[threading.Event]:
    """Run ``watcher`` in a thread; on exit, stop it and check it stopped promptly."""
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        started = time.monotonic()
        thread.join(10)
        assert not thread.is_alive(), "the watcher did not stop within 10 s"
        assert time.monotonic() - started < 3, "the watcher took more than 3 s to stop"


def settled(db: Database, folder: str = "INBOX") -> bool:
    st = state(db, folder)
    return st is not None and st.settled


def test_append_while_idling_is_stored_then_moved(
    imap_server: ImapServer, sqlite_db: Database
) -> None:
    """A lead that arrives while the daemon idles is stored within seconds (IDLE, not the
    30 s poll), and only then moved out of the inbox."""
    watcher = MailboxWatcher(imap_server.settings(poll_interval="30s"), sqlite_db, backoff=FAST)
    with watching(watcher):
        wait_for(lambda: settled(sqlite_db), 10, "the first run")
        time.sleep(0.3)  # let it enter IDLE
        started = time.monotonic()
        imap_server.append([make_email(i) for i in range(3)])
        wait_for(lambda: count(sqlite_db) == 3, 5, "3 stored emails")
        took = time.monotonic() - started
        wait_for(lambda: len(imap_server.uids("Processed")) == 3, 5, "3 moved emails")
    assert took < 5
    assert imap_server.uids("INBOX") == []
    assert_each_once(sqlite_db, 3)
    st = state(sqlite_db)
    assert st is not None and st.last_contact_at is not None and st.down_since is None


def test_start_from_new_leaves_old_mail_and_marks_with_keyword(
    imap_server: ImapServer, sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """First run with start_from: new takes in only what arrives afterwards, and says so;
    without a processed folder the emails are marked with a keyword where the server keeps
    keywords (Dovecot), and tracked by UID where it does not (pymap)."""
    caplog.set_level(logging.INFO, logger="daemon.intake.imap")
    imap_server.append([make_email(i, "old") for i in range(4)])
    settings = imap_server.settings(processed_folder=None, poll_interval="30s")
    with watching(MailboxWatcher(settings, sqlite_db, backoff=FAST)):
        wait_for(lambda: settled(sqlite_db), 10, "the first run")
        imap_server.append([make_email(i, "new") for i in range(2)])
        wait_for(lambda: count(sqlite_db) == 2, 5, "2 stored emails")
        time.sleep(0.3)
    assert sorted(r[0] or "" for r in stored(sqlite_db)) == ["<new-0@zillow.example>", "<new-1@zillow.example>"]
    assert "start_from: new: the 4 messages already there are left alone" in caplog.text
    marked = imap_server.with_keyword("LeadpipeProcessed")
    if isinstance(imap_server, DovecotServer):
        assert marked == imap_server.uids()[-2:]
    else:
        assert marked == []
        assert "does not keep custom keywords" in caplog.text


@pytest.mark.slow
def test_backlog_of_500_is_stored_exactly_once(
    imap_server: ImapServer, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """start_from: all on a box with 500 emails stores exactly 500, each once, with
    progress lines in the log; on SQLite and on PostgreSQL."""
    caplog.set_level(logging.INFO, logger="daemon.intake.imap")
    with imap_server.session() as c:
        for i in range(500):
            c.append("INBOX", make_email(i, "bl", size=1500))
    settings = imap_server.settings(start_from="all", fetch_batch=100)
    with watching(MailboxWatcher(settings, db, backoff=FAST)):
        wait_for(lambda: count(db) == 500, 60, "500 stored emails", interval=0.2)
        wait_for(lambda: settled(db) and state(db).last_uid == max(imap_server.uids("Processed")), 10, "position saved")  # type: ignore[union-attr]
    assert_each_once(db, 500)
    assert len(imap_server.uids("Processed")) == 500
    assert imap_server.uids("INBOX") == []
    assert "start_from: all: taking in all 500 messages" in caplog.text
    assert "backlog: 500 emails handled (500 new, 0 already stored)" in caplog.text


def test_server_restart_while_idling_loses_nothing(
    imap_server: ImapServer, sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The mail server restarts: the daemon logs the outage once and the recovery once,
    reconnects by itself, and every email from before and after is stored once.
    (pymap keeps mail in memory, so there it also comes back with a new UIDVALIDITY.)"""
    caplog.set_level(logging.INFO, logger="daemon.intake.imap")
    settings = imap_server.settings(poll_interval="30s")
    with watching(MailboxWatcher(settings, sqlite_db, backoff=FAST)):
        wait_for(lambda: settled(sqlite_db), 10, "the first run")
        imap_server.append([make_email(i, "before") for i in range(5)])
        wait_for(lambda: count(sqlite_db) == 5, 5, "5 stored emails")
        imap_server.stop()
        wait_for(lambda: "retrying with backoff" in caplog.text, 10, "the outage to be noticed")
        time.sleep(0.5)  # several failed attempts
        imap_server.start()
        imap_server.append([make_email(i, "after") for i in range(5)])
        wait_for(lambda: count(sqlite_db) == 10, 15, "10 stored emails")
    assert_each_once(sqlite_db, 10)
    outages = [r for r in caplog.records if "retrying with backoff" in r.getMessage()]
    recoveries = [r for r in caplog.records if "reachable again" in r.getMessage()]
    assert len(outages) == 1 and outages[0].levelno == logging.WARNING
    assert len(recoveries) == 1
    st = state(sqlite_db)
    assert st is not None and st.down_since is None and st.last_error is not None


def test_server_killed_mid_backlog_loses_nothing(sqlite_db: Database) -> None:
    """The server dies in the middle of a backlog — between storing a batch and moving
    it — and comes back: the rest is taken in, nothing twice. (Dovecot only: it keeps its
    mail across a restart.)"""
    stored_40 = threading.Event()
    server_down = threading.Event()

    def store(db: Database, raws: Sequence[RawEmail]) -> list[Stored]:
        # Hold the watcher once, right after the batch that reaches 40 is committed and
        # before it is moved, until the server is gone: the kill lands mid-backlog every
        # time, however fast the backlog runs.
        results = inbox.accept_many(db, raws)
        if not stored_40.is_set() and count(db) >= 40:
            stored_40.set()
            server_down.wait(30)
        return results

    with start_server("dovecot") as server:
        server.append([make_email(i, "bk", size=20000) for i in range(300)])
        settings = server.settings(start_from="all", fetch_batch=20)
        with watching(MailboxWatcher(settings, sqlite_db, backoff=FAST, store=store)):
            assert stored_40.wait(30), "40 emails were not stored within 30 s"
            # SIGTERM: Dovecot's processes die mid-command, but cleanly. (A SIGKILL can
            # leave Dovecot's own dovecot-uidlist.lock behind, stale for 2 minutes.)
            server.stop(signal.SIGTERM)
            server_down.set()
            assert count(sqlite_db) == 40
            server.start()
            wait_for(lambda: count(sqlite_db) == 300, 60, "300 stored emails", interval=0.1)
            wait_for(lambda: len(server.uids("Processed")) == 300, 10, "300 moved")
        assert_each_once(sqlite_db, 300)
        assert server.uids("INBOX") == []


def big_email(n: int, size: int) -> bytes:
    """A plain email of about ``size`` bytes (a lead with a big attachment, as far as the
    server's RFC822.SIZE is concerned)."""
    line = "QmlnIGF0dGFjaG1lbnQgYnl0ZXMgZm9yIHRoZSBmZXRjaCBiYXRjaCB0ZXN0Lg==\r\n"
    head = make_email(n, "big", size=100)
    return head + (line * (size // len(line))).encode()


def test_big_emails_are_fetched_fewer_at_a_time(
    imap_server: ImapServer, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch stops growing before ``fetch_batch_bytes`` (by RFC822.SIZE), so a backlog of
    emails with attachments is not held in memory ``fetch_batch`` at a time; one email
    bigger than the cap comes alone, and small ones still share a batch."""
    sizes = [300_000, 300_000, 300_000, 900_000, 2_000, 2_000, 2_000, 300_000]
    imap_server.append([big_email(i, size) for i, size in enumerate(sizes)])
    bodies: list[int] = []
    real_fetch = IMAPClient.fetch

    def fetch(self: IMAPClient, messages: Any, data: Any, modifiers: Any = None) -> Any:
        if b"BODY.PEEK[]" in data:
            bodies.append(len(messages))
        return real_fetch(self, messages, data, modifiers)

    monkeypatch.setattr(IMAPClient, "fetch", fetch)
    settings = imap_server.settings(start_from="all", fetch_batch=20, fetch_batch_bytes=700_000)
    with watching(MailboxWatcher(settings, sqlite_db, backoff=FAST)):
        wait_for(lambda: len(imap_server.uids("Processed")) == 8, 30, "8 moved emails")
    # 300+300 | 300 (+900 would pass 700) | 900 alone | 2+2+2+300
    assert bodies == [2, 1, 1, 4]
    assert_each_once(sqlite_db, 8)


def test_fetch_batch_bytes_reads_sizes_and_refuses_tiny_caps() -> None:
    base = {"name": "leads", "host": "127.0.0.1", "username": "u", "password": "p"}
    assert MailboxSettings(**base).fetch_batch_bytes == 25_000_000
    assert MailboxSettings(**base, fetch_batch_bytes="2MB").fetch_batch_bytes == 2_000_000
    with pytest.raises(ValidationError, match="fetch_batch_bytes"):
        MailboxSettings(**base, fetch_batch_bytes="10KB")  # one email per batch for most mail


def test_sigkill_between_storing_and_marking_makes_no_duplicate(
    imap_server: ImapServer, sqlite_db: Database, sqlite_url: str, tmp_path: Path
) -> None:
    """The daemon is SIGKILLed right after committing an email and before marking it on
    the server: after a restart every email is stored once and all are marked."""
    imap_server.append([make_email(i, "k") for i in range(25)])
    values = imap_server.settings_values(start_from="all", fetch_batch=10)
    # Batches of 10: the first is stored and moved; the child dies right after the
    # second is committed, before it is moved.
    child = spawn_child(values, sqlite_url, die_after=20, log=tmp_path / "child.log")
    assert child.wait(30) == -signal.SIGKILL, (tmp_path / "child.log").read_text()
    assert count(sqlite_db) == 20
    assert len(imap_server.uids("Processed")) == 10
    assert len(imap_server.uids("INBOX")) == 15
    with watching(MailboxWatcher(imap_server.settings(**values), sqlite_db, backoff=FAST)):
        wait_for(lambda: len(imap_server.uids("Processed")) == 25, 15, "25 moved emails")
    assert_each_once(sqlite_db, 25)
    assert imap_server.uids("INBOX") == []


@pytest.mark.slow
def test_sigkill_at_random_moments_makes_no_duplicate(
    imap_server: ImapServer, sqlite_db: Database, sqlite_url: str, tmp_path: Path
) -> None:
    """Killed with SIGKILL at random moments of a backlog, three times in a row: the
    emails are still stored exactly once, and all end up marked."""
    rng = random.Random(1234)
    total = 300
    imap_server.append([make_email(i, "r", size=4000) for i in range(total)])
    values = imap_server.settings_values(start_from="all", fetch_batch=10)
    # Read with the stdlib driver: the Database's sessions take SQLite's write lock
    # (BEGIN IMMEDIATE), and polling with them would hold the child back.
    path = sqlite_url.removeprefix("sqlite:///")
    sqlite_db.upgrade()

    def progress() -> int:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return int(conn.execute("SELECT count(*) FROM inbound_emails").fetchone()[0])

    unfinished = 0
    for _ in range(3):
        target = progress() + rng.randint(5, 60)
        child = spawn_child(values, sqlite_url, log=tmp_path / "child.log")

        def reached(t: int = target, c: subprocess.Popen[bytes] = child) -> bool:
            return progress() >= t or c.poll() is not None

        wait_for(reached, 30, "the child to make progress", interval=0.002)
        child.kill()
        child.wait(10)
        unfinished += count(sqlite_db) < total
    assert unfinished == 3, "a kill came after the backlog was done: nothing was tested"
    with watching(MailboxWatcher(imap_server.settings(**values), sqlite_db, backoff=FAST)):
        wait_for(lambda: len(imap_server.uids("Processed")) == total, 30, "all moved")
    assert_each_once(sqlite_db, total)


def test_uidvalidity_change_no_duplicates_no_skips(
    imap_server: ImapServer, sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The folder is recreated (new UIDVALIDITY, UIDs restart below the old last UID) and
    the old emails come back beside new ones: the old are not stored again, and the new
    are not skipped although their UIDs look 'already seen'."""
    caplog.set_level(logging.INFO, logger="daemon.intake.imap")
    imap_server.create_folder("Leads")
    old = [make_email(i, "old") for i in range(10)]
    imap_server.append(old, "Leads")
    settings = imap_server.settings(
        folder="Leads", processed_folder=None, start_from="all", poll_interval="1s"
    )
    with watching(MailboxWatcher(settings, sqlite_db, backoff=FAST)):
        wait_for(lambda: count(sqlite_db) == 10, 10, "10 stored emails")
        wait_for(lambda: (st := state(sqlite_db, "Leads")) and st.last_uid >= max(imap_server.uids("Leads")), 10, "the position")
        before = imap_server.uidvalidity("Leads")
        imap_server.recreate_folder("Leads")
        imap_server.append([*old[:5], *(make_email(i, "new") for i in range(3))], "Leads")
        assert imap_server.uidvalidity("Leads") != before
        wait_for(lambda: count(sqlite_db) == 13, 15, "13 stored emails")
        wait_for(lambda: "resync done" in caplog.text, 10, "the resync to finish")
        time.sleep(1.5)  # a further poll must not store anything again
    assert_each_once(sqlite_db, 13)
    assert "UIDVALIDITY of 'Leads' changed" in caplog.text
    st = state(sqlite_db, "Leads")
    assert st is not None and st.uidvalidity == imap_server.uidvalidity("Leads")


def test_wrong_password_is_clear_and_retried(
    imap_server: ImapServer, sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong password says so (and which user), is logged once, recorded as an outage,
    alerted once after alert_after, and retried until stopped."""
    settings = imap_server.settings(password="wrong", alert_after="0.2s")
    with pytest.raises(MailboxError, match=r"refused the login of 'leads'.*check the password"):
        check(settings)
    alerts: list[tuple[str, str]] = []
    caplog.set_level(logging.DEBUG, logger="daemon.intake.imap")
    watcher = MailboxWatcher(settings, sqlite_db, backoff=FAST, on_alert=lambda n, m: alerts.append((n, m)))
    with watching(watcher):
        wait_for(lambda: sum("attempt" in r.getMessage() for r in caplog.records) >= 3, 10, "3 retries")
        wait_for(lambda: alerts, 5, "the alert")
        time.sleep(0.3)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "refused the login" in warnings[0].getMessage()
    assert len(alerts) == 1 and "unreachable for" in alerts[0][1]
    st = state(sqlite_db)
    assert st is not None and st.down_since is not None and st.alerted_at is not None
    assert "refused the login" in (st.last_error or "")


def test_missing_folder_is_clear_and_recovers_when_created(
    imap_server: ImapServer, sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A folder that does not exist is named, with the folders that do; once it is
    created the watcher gets in by itself and takes in mail."""
    caplog.set_level(logging.INFO, logger="daemon.intake.imap")
    settings = imap_server.settings(folder="Leads", processed_folder=None)
    with pytest.raises(MailboxError, match=r"folder 'Leads' does not exist.*'INBOX'"):
        check(settings)
    with watching(MailboxWatcher(settings, sqlite_db, backoff=FAST)):
        wait_for(lambda: "does not exist" in caplog.text, 5, "the error")
        time.sleep(0.4)
        imap_server.create_folder("Leads")
        wait_for(lambda: settled(sqlite_db, "Leads"), 10, "the first run")
        imap_server.append([make_email(1)], "Leads")
        wait_for(lambda: count(sqlite_db) == 1, 5, "1 stored email")
    assert sum("does not exist" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING) == 1
    assert sum("reachable again" in r.getMessage() for r in caplog.records) == 1


def test_unreachable_host_is_clear_and_retried(sqlite_db: Database, caplog: pytest.LogCaptureFixture) -> None:
    """Nothing listening, or a host name that does not resolve: the message says which,
    and the watcher keeps trying without logging every attempt."""
    base = {"name": "leads", "username": "u", "password": "p", "timeout": "2s"}
    refused = no_server_settings(port=free_port(), security="none", **base)
    with pytest.raises(MailboxError, match=r"connection refused by 127\.0\.0\.1:\d+"):
        check(refused)
    nodns = no_server_settings(host="no-such-host.invalid", security="ssl", **base)
    with pytest.raises(MailboxError, match=r"cannot resolve host 'no-such-host\.invalid'"):
        check(nodns)
    caplog.set_level(logging.DEBUG, logger="daemon.intake.imap")
    with watching(MailboxWatcher(refused, sqlite_db, backoff=FAST)):
        wait_for(lambda: sum("attempt" in r.getMessage() for r in caplog.records) >= 3, 10, "3 retries")
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 1


def no_server_settings(**values: Any) -> MailboxSettings:
    return MailboxSettings(**{"host": "127.0.0.1", **values})


def test_check_reports_what_doctor_shows(imap_server: ImapServer) -> None:
    """`leadpipe doctor` can tell the capabilities, the message count and IDLE support."""
    imap_server.append([make_email(i) for i in range(2)])
    report = check(imap_server.settings())
    assert report.messages == 2
    assert report.idle is True
    assert "IDLE" in report.capabilities
    assert report.uidvalidity is not None
    assert "2 messages; IDLE yes" in report.summary()


def test_tls_and_starttls_with_a_trusted_certificate(dovecot_tls: DovecotServer, sqlite_db: Database) -> None:
    """TLS on the ssl port and STARTTLS on the plain one work with a trusted certificate;
    an untrusted one is refused with a message that says so."""
    trusted = ssl.create_default_context(cafile=str(dovecot_tls.cafile))
    over_ssl = dovecot_tls.settings(security="ssl", port=dovecot_tls.ssl_port)
    over_starttls = dovecot_tls.settings(security="starttls")
    assert check(over_ssl, ssl_context=trusted).idle
    assert check(over_starttls, ssl_context=trusted).messages == 0
    with pytest.raises(MailboxError, match=r"TLS certificate of 127\.0\.0\.1 is not trusted"):
        check(over_ssl)
    with pytest.raises(MailboxError, match=r"TLS with 127\.0\.0\.1:\d+ failed"):
        check(dovecot_tls.settings(security="ssl"), ssl_context=trusted)  # plain port
    watcher = MailboxWatcher(over_ssl, sqlite_db, ssl_context=trusted, backoff=FAST)
    with watching(watcher):
        wait_for(lambda: settled(sqlite_db), 10, "the first run")
        dovecot_tls.append([make_email(1)])
        wait_for(lambda: count(sqlite_db) == 1, 5, "1 stored email over TLS")


def test_xoauth2_with_a_token_from_a_command(
    dovecot_oauth2: tuple[DovecotServer, TokenIntrospection], sqlite_db: Database, tmp_path: Path
) -> None:
    """Gmail / Microsoft 365 style: the access token comes from a command (fresh at each
    login), is sent with XOAUTH2, and mail is taken in; a failing command or a rejected
    token says which."""
    server, tokens = dovecot_oauth2
    (tmp_path / "token").write_text(tokens.token)
    settings = server.settings(password=None, oauth2_token_command=f"cat {tmp_path / 'token'}")
    assert check(settings).messages == 0
    with watching(MailboxWatcher(settings, sqlite_db, backoff=FAST)):
        wait_for(lambda: settled(sqlite_db), 10, "the first run")
        server.append([make_email(1)])
        wait_for(lambda: count(sqlite_db) == 1, 5, "1 stored email")
    assert tokens.requests >= 2
    broken = server.settings(password=None, oauth2_token_command="echo 'token expired' >&2; exit 3")
    with pytest.raises(MailboxError, match=r"oauth2_token_command exited with status 3.*token expired"):
        check(broken)
    wrong = server.settings(password=None, oauth2_token="not-a-valid-token")
    with pytest.raises(MailboxError, match=r"refused the login of 'leads'.*check the OAuth2 token"):
        check(wrong)



@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_one_replica_watches_a_mailbox_and_another_takes_over(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Two daemons share PostgreSQL: only one watches the mailbox (an advisory lock), the
    other stands by and takes over when the first stops; every email is stored once."""
    caplog.set_level(logging.INFO, logger="daemon.intake.imap")
    with start_server("pymap") as server:
        settings = server.settings()
        first = MailboxWatcher(settings, db, backoff=FAST, standby_poll=0.2)
        second = MailboxWatcher(settings, db, backoff=FAST, standby_poll=0.2)
        with contextlib.ExitStack() as stack:
            stop_first = stack.enter_context(watching(first))
            wait_for(lambda: settled(db), 10, "the first run")
            stack.enter_context(watching(second))
            wait_for(lambda: "another replica watches it" in caplog.text, 5, "the standby")
            server.append([make_email(i, "a") for i in range(3)])
            wait_for(lambda: count(db) == 3, 5, "3 stored emails")
            stop_first.set()
            wait_for(lambda: caplog.text.count("connected to") >= 2, 10, "the takeover")
            server.append([make_email(i, "b") for i in range(3)])
            wait_for(lambda: count(db) == 6, 10, "6 stored emails")
    assert_each_once(db, 6)


def test_start_from_since_takes_only_mail_from_that_date(
    imap_server: ImapServer, sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """start_from: since:DATE takes in what arrived on or after DATE, leaves older mail
    alone, says so once, and then watches for new mail as usual."""
    caplog.set_level(logging.INFO, logger="daemon.intake.imap")
    with imap_server.session() as c:
        for i in range(3):
            c.append("INBOX", make_email(i, "old"), msg_time=datetime(2020, 5, 1, 12, tzinfo=UTC))
        for i in range(2):
            c.append("INBOX", make_email(i, "recent"), msg_time=datetime(2026, 2, 1, 12, tzinfo=UTC))
    settings = imap_server.settings(start_from="since:2026-01-15", poll_interval="1s")
    with watching(MailboxWatcher(settings, sqlite_db, backoff=FAST)):
        wait_for(lambda: settled(sqlite_db), 10, "the first run")
        imap_server.append([make_email(1, "new")])
        wait_for(lambda: count(sqlite_db) == 3, 5, "3 stored emails")
        time.sleep(1.5)  # a poll cycle
    assert sorted(r[0] or "" for r in stored(sqlite_db)) == [
        "<new-1@zillow.example>", "<recent-0@zillow.example>", "<recent-1@zillow.example>"
    ]
    assert len(imap_server.uids("INBOX")) == 3  # the old ones, left alone
    assert caplog.text.count("first run") == 1
    assert "start_from: since:2026-01-15: taking in the messages that arrived on or after" in caplog.text


def test_start_from_all_on_an_empty_box_settles(
    imap_server: ImapServer, sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """start_from: all with nothing in the box: the first run ends at once (logged once)
    and later mail is taken in."""
    caplog.set_level(logging.INFO, logger="daemon.intake.imap")
    settings = imap_server.settings(start_from="all", poll_interval="1s")
    with watching(MailboxWatcher(settings, sqlite_db, backoff=FAST)):
        wait_for(lambda: settled(sqlite_db), 10, "the first run")
        imap_server.append([make_email(1)])
        wait_for(lambda: count(sqlite_db) == 1, 5, "1 stored email")
        time.sleep(1.2)
    assert caplog.text.count("first run") == 1
