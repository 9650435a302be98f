"""The whole daemon as a brokerage runs it: ``leadpipe run --config leadpipe.yaml``.

Each test starts ``python -m daemon.cli run`` in a subprocess, in a folder holding a copy
of the shipped ``rules/`` and a configuration whose mailbox is a real IMAP server on
loopback (pymap; Dovecot too where noted), on SQLite and on PostgreSQL. The tests look only
at what the brokerage sees: the rows in the database, the exit status and the log. The
emails are the real fixture emails (``fixtures/emails``) with fresh Message-IDs, and
what the daemon makes of each must be what its golden file says.

Each test's name is the promise that breaks if it fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from imapservers import (  # the fixture is imported to be used by name
    ImapServer,
    imap_server,
    start_server,
)
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from storage.models import DeadLetterRow, InboundEmail, LeadRow

__all__ = ["imap_server"]  # a fixture, used by parameter name

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "emails"
#: the issue's promise: SIGTERM / SIGINT end the daemon within this many seconds
STOP_WITHIN = 10.0


# -- the emails -------------------------------------------------------------------------


@dataclass(frozen=True)
class FixtureEmail:
    """A fixture email with a fresh Message-ID, and what its golden file expects."""

    name: str
    data: bytes
    message_id: str
    expected: dict[str, Any]

    @property
    def kind(self) -> str:
        """``lead``, ``dead_letter`` or ``ignored``."""
        return next(k for k in ("lead", "dead_letter", "ignored") if k in self.expected)


def fixture_email(relpath: str, tag: str) -> FixtureEmail:
    """``fixtures/emails/<relpath>`` with its (outer) Message-ID replaced by a unique one,
    so the same fixture can go in again without being recognised as a duplicate."""
    eml = FIXTURES / relpath
    data = eml.read_bytes()
    expected = yaml.safe_load(eml.with_name(eml.stem + ".expected.yaml").read_text(encoding="utf-8"))
    message_id = f"<{tag}.{eml.parent.name}.{eml.stem}@daemon-test.example>"
    end = min((i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0), default=len(data))
    head, body = data[:end], data[end:]
    # the header and its folded continuation lines; the first one is the outer email's
    head, n = re.subn(rb"(?im)^Message-ID:[^\n]*\n?(?:[ \t][^\n]*\n?)*",
                      b"Message-ID: " + message_id.encode() + b"\r\n", head, count=1)
    if n == 0:
        head = b"Message-ID: " + message_id.encode() + b"\r\n" + head
    return FixtureEmail(relpath, head.rstrip(b"\r\n") + body, message_id, expected)


def all_fixture_emails(tag: str) -> list[FixtureEmail]:
    return [fixture_email(str(p.relative_to(FIXTURES)), tag) for p in sorted(FIXTURES.rglob("*.eml"))]


def not_a_lead(tag: str) -> bytes:
    """A personal email from a sender no rule knows: no rule reads it, and it is no lead."""
    return (
        "From: Dana Whitfield <dana.whitfield@example.org>\r\n"
        "To: leads@harborpine-realty.example\r\n"
        "Subject: lunch on thursday?\r\n"
        "Date: Tue, 03 Nov 2026 09:12:00 -0500\r\n"
        f"Message-ID: <{tag}@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Hi! Are we still on for lunch on Thursday? The usual place at noon.\r\n\r\nDana\r\n"
    ).encode()


# -- what the daemon stored -------------------------------------------------------------


@dataclass
class Seen:
    """Everything stored for one Message-ID."""

    statuses: list[str] = field(default_factory=list)
    leads: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[str] = field(default_factory=list)


class Rows:
    """Reads the daemon's database from outside, as ``leadpipe leads list`` would.

    A plain engine, not ``storage.db.Database``: that one begins every SQLite transaction
    with BEGIN IMMEDIATE (the write lock), and polling with it would hold the daemon back.
    """

    def __init__(self, database_url: str):
        url = make_url(database_url)
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        self.engine: Engine = create_engine(url, poolclass=NullPool)

    def by_message_id(self) -> dict[str, Seen]:
        with self.engine.connect() as conn:
            inbound = {r.id: r for r in conn.execute(
                select(InboundEmail.id, InboundEmail.message_id, InboundEmail.status))}
            leads = list(conn.execute(select(
                LeadRow.inbound_email_id, LeadRow.source, LeadRow.full_name, LeadRow.email, LeadRow.phone)))
            dead = list(conn.execute(select(DeadLetterRow.inbound_email_id, DeadLetterRow.reason)))
        seen: dict[str, Seen] = {}
        for row in inbound.values():
            seen.setdefault(row.message_id or f"#{row.id}", Seen()).statuses.append(row.status)
        for lead in leads:
            key = inbound[lead.inbound_email_id].message_id
            seen[key].leads.append({"source": lead.source, "full_name": lead.full_name,
                                    "email": lead.email, "phone": lead.phone})
        for d in dead:
            seen[inbound[d.inbound_email_id].message_id].dead_letters.append(d.reason)
        return seen

    def done(self, message_id: str) -> Seen | None:
        """What was stored for ``message_id`` once the pipeline finished it, else ``None``."""
        got = self.by_message_id().get(message_id)
        return got if got is not None and "pending" not in got.statuses else None

    def processed(self) -> int:
        """How many Message-IDs the pipeline has finished."""
        return sum("pending" not in s.statuses for s in self.by_message_id().values())

    def close(self) -> None:
        self.engine.dispose()


def assert_outcome(seen: Seen, email: FixtureEmail) -> None:
    """Stored once, and turned into exactly what the golden file says."""
    assert len(seen.statuses) == 1, f"{email.name}: stored {len(seen.statuses)} times"
    if email.kind == "lead":
        want = email.expected["lead"]
        assert seen.leads == [{k: want[k] for k in ("source", "full_name", "email", "phone")}], email.name
        assert seen.dead_letters == [], email.name
    elif email.kind == "dead_letter":
        assert seen.leads == [], email.name
        assert seen.dead_letters == [email.expected["dead_letter"]["reason"]], email.name
    else:
        assert (seen.leads, seen.dead_letters, seen.statuses) == ([], [], ["ignored"]), email.name


# -- the daemon -------------------------------------------------------------------------


class Daemon:
    """``leadpipe run --config leadpipe.yaml`` in ``workdir``; stdout and stderr in a log."""

    def __init__(self, workdir: Path, name: str = "daemon"):
        self.workdir = workdir
        self.log = workdir / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADPIPE_")}
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "run", "--config", "leadpipe.yaml"],
                cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,  # a Ctrl-C in the terminal is not meant for it
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def eventually(self, predicate: Callable[[], Any], timeout: float, what: str,
                   interval: float = 0.1) -> Any:
        """Poll until ``predicate`` gives something truthy; fail with the daemon's log if
        ``timeout`` passes or the daemon exits first."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if self.proc.poll() is not None:
                self.fail(f"the daemon exited with status {self.proc.returncode} while waiting for {what}")
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(interval)

    def logged(self, text: str, timeout: float = 15) -> None:
        self.eventually(lambda: text in self.text(), timeout, f"{text!r} in the log")

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n--- daemon log ---\n{self.text()[-6000:]}", pytrace=False)

    def send(self, sig: int) -> tuple[int | None, float]:
        """Send ``sig``; return the exit status (``None`` if still running after 20 s)
        and the seconds it took to exit."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            status: int | None = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            status = None
        return status, time.monotonic() - started

    def stop(self, sig: int = signal.SIGTERM) -> float:
        """Stop with ``sig``, asserting the promise: exit status 0 within 10 s."""
        status, took = self.send(sig)
        if status != 0 or took > STOP_WITHIN:
            self.fail(f"{signal.Signals(sig).name}: exit status {status} after {took:.1f}s "
                      f"(promised: 0 within {STOP_WITHIN:g}s)")
        return took

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class Setup:
    """A folder to run the daemon in: ``rules/`` copied from the repo and ``leadpipe.yaml``."""

    workdir: Path
    database_url: str
    rows: Rows

    def configure(self, mailbox: dict[str, Any]) -> None:
        config = {"database_url": self.database_url, "mailboxes": [mailbox],
                  "web": {"host": "127.0.0.1", "port": 0}}
        (self.workdir / "leadpipe.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")

    @contextlib.contextmanager
    def daemon(self, name: str = "daemon", *, stop: bool = True) -> Iterator[Daemon]:
        """A running daemon; on leaving, stopped with SIGTERM (exit 0 within 10 s checked)
        or, after a failure, killed."""
        d = Daemon(self.workdir, name)
        try:
            d.logged("leadpipe running", timeout=30)
            yield d
            if stop and d.proc.poll() is None:
                d.stop()
        except AssertionError:
            print(f"--- {name} log ---\n{d.text()[-6000:]}")  # shown with the failure
            raise
        finally:
            d.kill()


def mailbox(server: ImapServer, **overrides: Any) -> dict[str, Any]:
    """The ``mailboxes:`` entry for ``server``, as a user would write it."""
    values: dict[str, Any] = {
        "name": "leads",
        "host": server.host,
        "port": server.port,
        "security": "none",
        "username": server.username,
        "password": server.password,
        "start_from": "all",
        "poll_interval": "2s",
        "timeout": "5s",
    }
    values.update(overrides)
    return values


@pytest.fixture
def setup(tmp_path: Path, database_url: str) -> Iterator[Setup]:
    workdir = tmp_path / "run"
    workdir.mkdir()
    shutil.copytree(REPO / "rules", workdir / "rules")
    rows = Rows(database_url)
    try:
        yield Setup(workdir, database_url, rows)
    finally:
        rows.close()


@pytest.fixture
def pymap() -> Iterator[ImapServer]:
    with start_server("pymap") as server:
        yield server


def first_run_done(d: Daemon) -> None:
    d.logged("first run on 'INBOX'")
    d.logged("watching 'INBOX' with IDLE")


# -- the tests --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("imap_server", "database_url"),
    [
        pytest.param("pymap", "sqlite", id="pymap-sqlite"),
        pytest.param("pymap", "postgresql", id="pymap-postgresql", marks=pytest.mark.postgres),
        pytest.param("dovecot", "sqlite", id="dovecot-sqlite"),
    ],
    indirect=True,
)
def test_email_appended_while_running_becomes_a_lead(imap_server: ImapServer, setup: Setup) -> None:
    """A Zillow lead that lands in the mailbox while the daemon idles is a lead row, with
    the right source and name, within seconds (and is moved to the processed folder)."""
    setup.configure(mailbox(imap_server, processed_folder="Processed"))
    email = fixture_email("zillow/current_layout_multipart.eml", "idle")
    with setup.daemon() as d:
        first_run_done(d)
        time.sleep(0.5)  # into IDLE
        imap_server.append([email.data])
        seen = d.eventually(lambda: setup.rows.done(email.message_id), 15, "the lead row")
        assert_outcome(seen, email)
        assert seen.leads[0]["source"] == "zillow" and seen.leads[0]["full_name"] == "José Núñez"
        d.eventually(lambda: len(imap_server.uids("Processed")) == 1, 10, "the email to be moved")
    assert imap_server.uids("INBOX") == []


def test_mail_already_in_the_box_is_processed_once_and_not_again_after_a_restart(
    pymap: ImapServer, setup: Setup
) -> None:
    """start_from: all: every fixture email already in the box becomes exactly the lead,
    dead letter or ignored email its golden file says, once; a second start of the daemon
    (emails left in the box, tracked by their UIDs) processes none of them again."""
    emails = all_fixture_emails("backlog")
    pymap.append([e.data for e in emails])
    setup.configure(mailbox(pymap))  # no processed_folder: the emails stay in INBOX
    with setup.daemon("first") as d:
        d.eventually(lambda: setup.rows.processed() == len(emails), 30, f"{len(emails)} processed emails")
    seen = setup.rows.by_message_id()
    assert len(seen) == len(emails)
    for e in emails:
        assert_outcome(seen[e.message_id], e)
    assert len(pymap.uids("INBOX")) == len(emails)

    marker = fixture_email("zillow/legacy_layout_latin1.eml", "after-restart")
    with setup.daemon("second") as d:
        d.logged("watching 'INBOX' with IDLE")
        # A new email that comes through shows the second daemon has looked at the box.
        pymap.append([marker.data])
        assert_outcome(d.eventually(lambda: setup.rows.done(marker.message_id), 15, "the marker lead"), marker)
        time.sleep(0.5)
        log = d.text()
    again = setup.rows.by_message_id()
    assert len(again) == len(emails) + 1
    for e in emails:
        assert_outcome(again[e.message_id], e)
    # not even fetched again (the database would have recognised them, but a big box
    # downloaded on every start is one of the failures the issue names)
    assert "first run" not in log and "backlog" not in log
    handled = re.findall(r"(\d+) emails handled \((\d+) new, (\d+) already stored\)", log)
    assert handled and all(again_ == "0" for _, _, again_ in handled), handled


@pytest.mark.parametrize(
    ("sig", "database_url"),
    [
        # (every other test also ends its daemon with SIGTERM, on both databases)
        pytest.param(signal.SIGTERM, "sqlite", id="SIGTERM"),
        pytest.param(signal.SIGINT, "sqlite", id="SIGINT"),
    ],
    indirect=["database_url"],
)
def test_signal_stops_the_daemon_idling_on_imap_with_status_0_within_10s(
    pymap: ImapServer, setup: Setup, sig: int
) -> None:
    """`docker stop` (SIGTERM) or Ctrl-C (SIGINT) while the daemon idles on IMAP: it
    exits with status 0 well within 10 s, saying so in the log."""
    setup.configure(mailbox(pymap, poll_interval="60s"))
    with setup.daemon(stop=False) as d:
        first_run_done(d)
        time.sleep(0.5)  # into IDLE
        took = d.stop(sig)
    assert took < STOP_WITHIN
    assert f"received {signal.Signals(sig).name}" in d.text()
    assert "leadpipe stopped" in d.text()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sigterm_mid_backlog_exits_within_10s_and_a_restart_loses_nothing(
    pymap: ImapServer, setup: Setup
) -> None:
    """SIGTERM while a backlog is being taken in and processed: status 0 within 10 s, and
    the next start processes every email exactly once (the ones stored but not yet
    processed, and the ones still on the server)."""
    emails = [fixture_email("zillow/current_layout_all_caps.eml", f"bl{i}") for i in range(200)]
    pymap.append([e.data for e in emails])
    setup.configure(mailbox(pymap, processed_folder="Processed", fetch_batch=10))
    with setup.daemon("first", stop=False) as d:
        d.eventually(lambda: len(setup.rows.by_message_id()) >= 20, 20, "20 stored emails", interval=0.02)
        d.stop()
    assert setup.rows.processed() < len(emails), "the backlog was done before the SIGTERM"
    with setup.daemon("second") as d:
        d.eventually(lambda: setup.rows.processed() == len(emails), 30, f"{len(emails)} processed emails")
    seen = setup.rows.by_message_id()
    for e in emails:
        assert_outcome(seen[e.message_id], e)
    assert len(pymap.uids("Processed")) == len(emails)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sigterm_stops_the_daemon_within_10s_while_a_mailbox_does_not_answer(setup: Setup) -> None:
    """A mail server that accepts the connection but never answers (hung, or a middlebox
    eating the traffic) must not hold the daemon past 10 s: `docker stop` would SIGKILL
    it. The configured IMAP timeout (30 s) is longer than that on purpose."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        setup.configure({"name": "leads", "host": "127.0.0.1", "port": silent.getsockname()[1],
                         "security": "none", "username": "leads", "password": "x",
                         "timeout": "30s"})
        with setup.daemon(stop=False) as d:
            time.sleep(0.5)  # connected, waiting for the greeting
            took = d.stop()
    assert took < STOP_WITHIN


def test_daemon_keeps_running_when_the_imap_server_goes_away_and_takes_mail_after(
    pymap: ImapServer, setup: Setup
) -> None:
    """The mail server goes down and comes back: the daemon logs the outage, keeps
    running, reconnects by itself, and an email that arrives afterwards becomes a lead."""
    setup.configure(mailbox(pymap, processed_folder="Processed"))
    before = fixture_email("zillow/current_layout_html_only.eml", "before")
    after = fixture_email("zillow/current_layout_multipart.eml", "after")
    with setup.daemon() as d:
        first_run_done(d)
        pymap.append([before.data])
        d.eventually(lambda: setup.rows.done(before.message_id), 15, "the first lead")
        pymap.stop()
        d.logged("retrying with backoff")
        time.sleep(0.3)  # a few failed attempts
        assert d.proc.poll() is None
        pymap.start()  # pymap keeps mail in memory: an empty box with a new UIDVALIDITY
        pymap.append([after.data])
        # the default backoff (1 s base, full jitter) may wait a few seconds before trying
        assert_outcome(d.eventually(lambda: setup.rows.done(after.message_id), 15, "the lead after recovery"),
                       after)
        d.logged("reachable again")
    seen = setup.rows.by_message_id()
    assert sorted(seen) == sorted([before.message_id, after.message_id])
    assert_outcome(seen[before.message_id], before)


def test_a_non_lead_is_kept_as_ignored_and_the_daemon_keeps_going(
    pymap: ImapServer, setup: Setup
) -> None:
    """A personal email from a sender no rule knows is kept, marked ignored (not lost, not
    retried forever, and no dead letter paging anyone), and the lead that follows it is
    processed as usual."""
    setup.configure(mailbox(pymap, processed_folder="Processed"))
    good = fixture_email("zillow/forwarded_as_attachment.eml", "good")
    with setup.daemon() as d:
        first_run_done(d)
        pymap.append([not_a_lead("lunch")])
        bad = d.eventually(lambda: setup.rows.done("<lunch@example.org>"), 15, "the ignored email")
        assert (bad.statuses, bad.leads, bad.dead_letters) == (["ignored"], [], [])
        pymap.append([good.data])
        assert_outcome(d.eventually(lambda: setup.rows.done(good.message_id), 15, "the lead"), good)
    assert len(pymap.uids("Processed")) == 2
