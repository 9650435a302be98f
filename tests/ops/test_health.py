"""Readiness (daemon/ops/health.py): ``GET /readyz`` on a real uvicorn, and ``leadpipe status``.

When these fail, an orchestrator keeps sending traffic to a daemon whose database is gone,
or a mailbox silently out of contact or a stuck outbox goes unnoticed until an agent
asks where the leads are.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import daemonkit
import pytest
import yaml
from fastapi import FastAPI
from psycopg import sql
from sqlalchemy.engine import make_url

from daemon.cli import main
from daemon.config import Settings, load_settings
from daemon.errors import ConfigError
from daemon.intake.inbox import accept
from daemon.lead import Origin, RawEmail
from daemon.ops.health import health_router, readiness
from daemon.service import Service
from daemon.web.app import WebServer, make_app
from storage import heartbeats, mailboxes, outbox
from storage.db import Database

REPO = Path(__file__).resolve().parents[2]


def settings_for(database_url: str, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(database_url=database_url, rules_dir=REPO / "rules", inbox_dir=tmp_path / "inbox",
                    mailboxes=[{"name": "leads", "host": "127.0.0.1", "port": 9, "security": "none",
                                "username": "u", "password": "p", "alert_after": "10m"}], **extra)


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[Service, WebServer]]:
    service = Service(settings_for(database_url, tmp_path))
    service.heartbeat.start()  # as run_forever does: the daemon check sees a daemon running
    with service.db.session() as s:
        mailboxes.record_contact(s, "leads", "INBOX", datetime.now(UTC))
    server = WebServer(make_app(service.router, None, routers=service.web_routers()), "127.0.0.1", 0).start()
    try:
        yield service, server
    finally:
        server.stop()
        service.db.dispose()


def check(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in body["checks"] if c["name"] == name)


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
    assert [c["name"] for c in body["checks"]] == ["database", "daemon", "mailbox leads", "inbox",
                                                   "outbox"]


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
    assert "alert_after 10m" in check(body, "mailbox leads")["detail"]
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
    assert "is the dispatcher running?" in check(body, "outbox")["detail"]
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
    service = Service(settings)
    service.heartbeat.start()
    assert main(["status", "--json", "--config", str(config)]) == 1  # never reached: not healthy
    report = json.loads(capsys.readouterr().out)
    assert report["failed"] == ["mailbox leads"] and report["healthy"] is False
    with service.db.session() as s:
        mailboxes.record_contact(s, "leads", "INBOX", datetime.now(UTC))
    assert readiness(service.db, settings).ready
    service.db.dispose()
    assert main(["status", "--json", "--config", str(config)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["healthy"] is True and report["outbox"] == "nothing due"


# -- the daemon's heartbeat ---------------------------------------------------------------


def run_status(workdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADPIPE_")}
    return subprocess.run([sys.executable, "-m", "daemon.cli", "status", "--config", "leadpipe.yaml",
                           *extra], cwd=workdir, capture_output=True, text=True, env=env, timeout=120)


def assert_readable(text: str) -> None:
    """People read it at 2 a.m.: no Python reprs (dicts, lists, True/False/None, quotes)."""
    for repr_bit in ("{", "}", "[", "]", "True", "False", "None", "'"):
        assert repr_bit not in text, f"{repr_bit!r} in the status output:\n{text}"


def test_a_stopped_daemon_makes_status_exit_non_zero_and_readyz_503(database_url: str, tmp_path: Path):
    """With the daemon stopped, ``status`` once said ``healthy: True`` and exited 0 while
    emails and deliveries piled up; and ``/readyz`` (served by anything still up on the
    database) said ready."""
    workdir = tmp_path / "run"
    workdir.mkdir()
    shutil.copytree(REPO / "rules", workdir / "rules")
    (workdir / "leadpipe.yaml").write_text(yaml.safe_dump({
        "database_url": database_url, "web": {"host": "127.0.0.1", "port": 0},
        "health": {"heartbeat_interval": "1s", "heartbeat_stale_after": "5s"}}), encoding="utf-8")
    daemon = daemonkit.start(workdir)
    proc = daemon.proc
    try:
        daemon_url = daemon.wait_for_log(r"web server listening on (http://[\d.:]+)").group(1)
        running = run_status(workdir)
        assert running.returncode == 0, running.stdout + running.stderr
        assert re.search(rf"running +\S+ pid {proc.pid}, version \S+, started .+ UTC, last beat \d+s ago",
                         running.stdout), running.stdout
        assert_readable(running.stdout)
        with urllib.request.urlopen(f"{daemon_url}/readyz", timeout=10) as resp:
            assert resp.status == 200
        assert daemon.stop() == 0
    finally:
        daemon.stop()

    stopped = run_status(workdir)
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    assert "healthy: NO (failing: daemon)" in stopped.stdout
    assert f"pid {proc.pid}) stopped" in stopped.stdout
    assert re.search(rf"stopped +\S+ pid {proc.pid}, ", stopped.stdout), stopped.stdout
    assert_readable(stopped.stdout)
    as_json = run_status(workdir, "--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["healthy"] is False and report["failed"] == ["daemon"]
    assert [(d["pid"], d["state"]) for d in report["daemons"]] == [(proc.pid, "stopped")]

    # /readyz of whatever still serves this database (another replica's web server)
    settings = Settings(database_url=database_url)
    db = Database(database_url)
    app = FastAPI()
    app.include_router(health_router(db, settings))
    server = WebServer(app, "127.0.0.1", 0).start()
    try:
        status, body = get(server, "/readyz")
    finally:
        server.stop()
        db.dispose()
    assert status == 503 and body["failed"] == ["daemon"]
    assert "no daemon running" in check(body, "daemon")["detail"]


def test_a_daemon_that_died_without_stopping_fails_readiness_once_its_beat_is_stale(served):
    """A SIGKILL, an OOM kill or a hang leaves the row as it was: its age tells."""
    service, _ = served
    settings = service.settings
    now = datetime.now(UTC)
    assert readiness(service.db, settings, now).ready
    later = now + settings.health.heartbeat_stale_after + timedelta(seconds=1)
    ready = readiness(service.db, settings, later)
    assert ready.failed == ["daemon"]
    detail = next(c.detail for c in ready.checks if c.name == "daemon")
    assert f"pid {os.getpid()}" in detail and "did it die or hang?" in detail
    service.heartbeat.beat()  # as its next beat would
    assert readiness(service.db, settings, now + timedelta(seconds=1)).ready


def test_readyz_fails_when_the_oldest_waiting_email_is_older_than_email_stuck_after(served):
    """A worker that stopped taking emails (stuck, or its loop dead) while the scheduler still
    beats: the emails waiting tell."""
    service, _ = served
    settings = service.settings
    accept(service.db, RawEmail(data=b"Subject: waiting\n\nhello\n", origin=Origin.CLI,
                                received_at=datetime.now(UTC)))
    now = datetime.now(UTC)
    assert readiness(service.db, settings, now).ready
    later = now + settings.health.email_stuck_after + timedelta(minutes=1)
    service.heartbeat.beat()
    with service.db.session() as s:  # the daemon still beats, and reaches its mailbox, at `later`
        heartbeats.beat(s, service.heartbeat.id or 0, at=later)
        mailboxes.record_contact(s, "leads", "INBOX", later)
    ready = readiness(service.db, settings, later)
    assert ready.failed == ["inbox"]
    assert "is the worker running?" in next(c.detail for c in ready.checks if c.name == "inbox")


def test_heartbeat_stale_after_must_be_longer_than_the_interval(tmp_path: Path):
    config = tmp_path / "leadpipe.yaml"
    config.write_text("health:\n  heartbeat_interval: 10s\n  heartbeat_stale_after: 5s\n")
    with pytest.raises(ConfigError, match="heartbeat_stale_after"):
        load_settings(config)
