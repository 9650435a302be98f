"""The daemon's periodic checks (daemon/service.py).

When these fail, a mailbox watcher can die or go quiet while the daemon looks alive,
and nobody hears about it until an agent asks where the leads went.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.config import Settings
from daemon.service import Service
from storage import mailboxes

REPO = Path(__file__).resolve().parent.parent


def service(database_url: str, tmp_path: Path) -> Service:
    settings = Settings(
        database_url=database_url,
        rules_dir=REPO / "rules",
        inbox_dir=tmp_path / "inbox",
        mailboxes=[{
            "name": "leads", "host": "127.0.0.1", "port": 9, "security": "none",
            "username": "u", "password": "p", "alert_after": "10m",
        }],
    )
    return Service(settings)


def test_a_mailbox_that_went_quiet_without_an_error_is_alerted_once(database_url: str, tmp_path: Path):
    svc = service(database_url, tmp_path)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    with svc.db.session() as s:
        mailboxes.record_contact(s, "leads", "INBOX", long_ago)

    first = svc.check_watchers()
    second = svc.check_watchers()

    assert len(first) == 1 and "no contact with the server" in first[0] and "leads" in first[0]
    assert second == []  # one alert per silence, not one every 30 s
    with svc.db.session() as s:
        mailboxes.record_contact(s, "leads", "INBOX", datetime.now(UTC))
    assert svc.check_watchers() == []  # contact again: healthy, and the next silence alerts anew


def test_a_mailbox_in_recent_contact_raises_no_alert(database_url: str, tmp_path: Path):
    svc = service(database_url, tmp_path)
    with svc.db.session() as s:
        mailboxes.record_contact(s, "leads", "INBOX", datetime.now(UTC) - timedelta(minutes=2))
    assert svc.check_watchers() == []


def test_a_watcher_thread_that_died_is_restarted_and_reported(database_url: str, tmp_path: Path):
    svc = service(database_url, tmp_path)
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    svc._threads["leads"] = dead

    alerts = svc.check_watchers()

    try:
        assert any("watcher stopped unexpectedly; restarted" in a for a in alerts)
        assert svc._threads["leads"] is not dead and svc._threads["leads"].is_alive()
    finally:
        svc.stop.set()
        svc._threads["leads"].join(timeout=10)
    assert not svc._threads["leads"].is_alive()
