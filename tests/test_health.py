"""Readiness (daemon/health.py): ``GET /readyz`` on a real uvicorn, and ``leadpipe status``.

When these fail, an orchestrator keeps sending traffic to a daemon whose database is gone,
or a mailbox silently out of contact or a stuck outbox goes unnoticed until an agent
asks where the leads are.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from daemon.cli import main
from daemon.config import Settings
from daemon.health import readiness
from daemon.service import Service
from daemon.web import WebServer, make_app
from storage import mailboxes, outbox

REPO = Path(__file__).resolve().parent.parent


def settings_for(database_url: str, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(database_url=database_url, rules_dir=REPO / "rules", inbox_dir=tmp_path / "inbox",
                    mailboxes=[{"name": "leads", "host": "127.0.0.1", "port": 9, "security": "none",
                                "username": "u", "password": "p", "alert_after": "10m"}], **extra)


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[Service, WebServer]]:
    service = Service(settings_for(database_url, tmp_path))
    with service.db.session() as s:
        mailboxes.record_contact(s, "leads", "INBOX", datetime.now(UTC))
    server = WebServer(make_app(service.router, None, routers=service.web_routers()), "127.0.0.1", 0).start()
    try:
        yield service, server
    finally:
        server.stop()
        service.db.dispose()


def get(server: WebServer, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{server.url}{path}", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_healthz_answers_and_readyz_lists_every_check(served):
    _, server = served
    assert get(server, "/healthz") == (200, {"status": "ok"})
    status, body = get(server, "/readyz")
    assert status == 200 and body["status"] == "ready" and body["failed"] == []
    assert [c["name"] for c in body["checks"]] == ["database", "mailbox leads", "outbox"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_readyz_is_unready_while_the_sqlite_file_is_gone_and_ready_after(served, database_url: str):
    """The daemon's pool still holds the old file open: only a new connection notices."""
    _, server = served
    path = Path(make_url(database_url).database or "")
    away = path.with_name(path.name + ".away")
    os.rename(path, away)
    try:
        status, body = get(server, "/readyz")
        assert status == 503 and body["status"] == "not ready"
        assert body["failed"][0] == "database"
        assert "unable to open database file" in body["checks"][0]["detail"]
    finally:
        os.rename(away, path)
    assert get(server, "/readyz")[0] == 200


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_readyz_is_unready_while_the_postgresql_database_is_gone_and_ready_after(
        served, database_url: str, postgres_server: Any):
    _, server = served
    name = make_url(database_url).database or ""
    admin = postgres_server._conn

    def rename(old: str, new: str) -> None:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (old,))
        admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
            sql.Identifier(old), sql.Identifier(new)))

    rename(name, name + "_away")
    try:
        status, body = get(server, "/readyz")
        assert status == 503 and body["failed"][0] == "database"
        assert "does not exist" in body["checks"][0]["detail"]
    finally:
        rename(name + "_away", name)
    assert get(server, "/readyz")[0] == 200


def test_readyz_is_unready_while_a_mailbox_is_out_of_contact_and_ready_after(served):
    service, server = served
    with service.db.session() as s:
        mailboxes.record_contact(s, "leads", "INBOX", datetime.now(UTC) - timedelta(minutes=30))
    status, body = get(server, "/readyz")
    assert status == 503 and body["failed"] == ["mailbox leads"]
    assert "alert_after 10m" in body["checks"][1]["detail"]
    with service.db.session() as s:
        mailboxes.record_contact(s, "leads", "INBOX", datetime.now(UTC))
    assert get(server, "/readyz")[0] == 200


def test_readyz_is_unready_while_the_outbox_is_stuck(served):
    service, server = served
    due = datetime.now(UTC) - timedelta(hours=1)
    with service.db.session() as s:
        row = outbox.enqueue(s, notifier="slack", action="alert", idempotency_key="alert:stuck",
                             payload={"text": "x"}, at=due)
    status, body = get(server, "/readyz")
    assert status == 503 and body["failed"] == ["outbox"]
    assert "is the dispatcher running?" in body["checks"][2]["detail"]
    with service.db.session() as s:
        outbox.retry(s, [row.id], at=datetime.now(UTC) + timedelta(minutes=1))
    assert get(server, "/readyz")[0] == 200


def test_leadpipe_status_reports_the_same_checks(database_url: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]):
    settings = settings_for(database_url, tmp_path)
    config = tmp_path / "leadpipe.yaml"
    config.write_text(json.dumps({**json.loads(settings.model_dump_json(include={"database_url"})),
                                  "rules_dir": str(REPO / "rules"),
                                  "mailboxes": [{"name": "leads", "host": "127.0.0.1", "port": 9,
                                                 "security": "none", "username": "u",
                                                 "password": "p", "alert_after": "10m"}]}),
                      encoding="utf-8")
    assert main(["status", "--json", "--config", str(config)]) == 1  # never reached: not healthy
    report = json.loads(capsys.readouterr().out)
    assert report["failed"] == ["mailbox leads"] and report["healthy"] is False
    service = Service(settings)
    with service.db.session() as s:
        mailboxes.record_contact(s, "leads", "INBOX", datetime.now(UTC))
    assert readiness(service.db, settings).ready
    service.db.dispose()
    assert main(["status", "--json", "--config", str(config)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["healthy"] is True and report["outbox"] == "nothing due"
