"""Is the daemon ready? The checks behind ``GET /readyz`` and ``leadpipe status``.

- ``database``: the database answers on a new connection (``Database.probe``);
- ``daemon``: some daemon wrote its heartbeat within ``health.heartbeat_stale_after`` and
  has not stopped (daemon/ops/heartbeat.py) — a stopped, killed or hung daemon fails it;
- ``mailbox <name>``: each watched mailbox was contacted within its ``alert_after``;
- ``inbox``: the oldest stored email still waiting for the pipeline has waited less than
  ``health.email_stuck_after`` (the worker is keeping up);
- ``outbox``: the oldest outbox row due for sending has waited less than
  ``health.outbox_stuck_after`` (the dispatcher is keeping up).

``GET /healthz`` (daemon/web/app.py) only says the process answers; ``/readyz`` answers 503
with the failing checks named when any of these fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from daemon.config import Settings
from daemon.errors import StorageError
from daemon.terminal import duration
from storage import dead_letters, heartbeats, inbound, mailboxes, outbox
from storage.db import Database


@dataclass(frozen=True)
class Check:
    """One readiness check: its name, whether it passed, and what was seen."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Readiness:
    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if not c.ok]

    def to_json(self) -> dict[str, Any]:
        return {"status": "ready" if self.ready else "not ready", "failed": self.failed,
                "checks": [asdict(c) for c in self.checks]}


def readiness(db: Database, settings: Settings, now: datetime | None = None) -> Readiness:
    """Run every check; never raises."""
    return _observe(db, settings, now or datetime.now(UTC))[0]


def _observe(db: Database, settings: Settings,
             now: datetime) -> tuple[Readiness, list[heartbeats.Heartbeat]]:
    """The checks, and the daemons seen beating within a day (for ``status``)."""
    names = ["daemon", *(f"mailbox {m.name}" for m in settings.mailboxes), "inbox", "outbox"]
    try:
        revision = db.probe()
    except StorageError as exc:
        down = [Check("database", False, str(exc))]
        down += [Check(n, False, "unknown: the database cannot be read") for n in names]
        return Readiness(tuple(down)), []
    checks = [Check("database", True, f"{db.describe()} at revision {revision}")]
    h = settings.health
    try:
        with db.session() as s:
            daemons = heartbeats.since(s, now - timedelta(days=1))
            last = daemons[0] if daemons else heartbeats.latest(s)
            states = mailboxes.all_states(s)
            waiting = inbound.oldest_pending_since(s)
            due = outbox.next_due(s)
    except (StorageError, SQLAlchemyError) as exc:
        why = f"cannot read: {str(exc).splitlines()[0]}"
        checks += [Check(n, False, why) for n in names]
        return Readiness(tuple(checks)), []
    checks.append(_daemon(daemons, last, h.heartbeat_stale_after, now))
    for m in settings.mailboxes:
        state = next((x for x in states if x.mailbox == m.name and x.folder == m.folder), None)
        checks.append(_mailbox(m.name, state, m.alert_after, now))
    checks.append(_inbox(waiting, h.email_stuck_after, now))
    checks.append(_outbox(due, h.outbox_stuck_after, now))
    return Readiness(tuple(checks)), daemons


def beating(daemons: list[heartbeats.Heartbeat], limit: timedelta,
            now: datetime) -> list[heartbeats.Heartbeat]:
    """The daemons running now: not stopped, and beaten within ``limit``."""
    return [d for d in daemons if d.stopped_at is None and now - d.beat_at <= limit]


def _daemon(daemons: list[heartbeats.Heartbeat], last: heartbeats.Heartbeat | None,
            limit: timedelta, now: datetime) -> Check:
    alive = beating(daemons, limit, now)
    if alive:
        newest = alive[0]
        return Check("daemon", True, f"{len(alive)} running; the newest beat {_ago(newest.beat_at, now)} "
                                     f"ago ({newest.host} pid {newest.pid})")
    if last is None:
        return Check("daemon", False, "no daemon has ever run on this database: start leadpipe run")
    who = f"{last.host} pid {last.pid}"
    if last.stopped_at is not None:
        return Check("daemon", False, f"no daemon running: the last one ({who}) stopped "
                                      f"{_ago(last.stopped_at, now)} ago")
    return Check("daemon", False, f"no daemon running: the last heartbeat ({who}) was "
                                  f"{_ago(last.beat_at, now)} ago (heartbeat_stale_after "
                                  f"{duration(limit)}): did it die or hang?")


def _inbox(waiting: datetime | None, limit: timedelta, now: datetime) -> Check:
    if waiting is None:
        return Check("inbox", True, "no email waiting")
    waited = max(now - waiting, timedelta(0))
    if waited > limit:
        return Check("inbox", False, f"the oldest waiting email has waited {duration(waited)} "
                                     f"(email_stuck_after {duration(limit)}): is the worker running?")
    return Check("inbox", True, f"the oldest waiting email has waited {duration(waited)}")


def _mailbox(name: str, state: mailboxes.MailboxState | None, limit: timedelta,
             now: datetime) -> Check:
    line = mailbox_line(state, now)
    contact = state.last_contact_at if state else None
    ok = contact is not None and now - contact <= limit
    if not ok:
        line += f" (alert_after {duration(limit)})"
    return Check(f"mailbox {name}", ok, line)


def _outbox(due: datetime | None, limit: timedelta, now: datetime) -> Check:
    if due is None or due > now:
        return Check("outbox", True, "nothing due")
    waited = now - due
    if waited > limit:
        return Check("outbox", False, f"the oldest due delivery has waited {duration(waited)} "
                                      f"(outbox_stuck_after {duration(limit)}): is the dispatcher running?")
    return Check("outbox", True, f"the oldest due delivery has waited {duration(waited)}")


def mailbox_line(state: mailboxes.MailboxState | None, now: datetime) -> str:
    """One mailbox's state for people: last contact, position, outage."""
    if state is None or state.last_contact_at is None:
        return "never reached" + (f" (last error: {state.last_error})" if state and state.last_error else "")
    ago = int((now - state.last_contact_at).total_seconds())
    line = f"last contact {ago}s ago, UID {state.last_uid}"
    if state.down_since is not None:
        line += f"; unreachable since {state.down_since:%Y-%m-%d %H:%M} UTC: {state.last_error}"
    return line


def _ago(when: datetime, now: datetime) -> str:
    return duration(max(now - when, timedelta(0)))


def status(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """What ``leadpipe status`` shows: the readiness checks, the daemons and their last
    beat, and counts of what is stored. ``healthy`` is the readiness verdict. Only reads:
    a database that is missing or behind is reported, never created or migrated."""
    now = now or datetime.now(UTC)
    report: dict[str, Any] = {"healthy": False, "failed": ["database"], "database": None}
    try:
        db = Database.existing(settings.database_url)
    except StorageError as exc:
        report["database"] = f"FAILING: {exc}"
        report["checks"] = [asdict(Check("database", False, str(exc)))]
        return report
    try:
        ready, daemons = _observe(db, settings, now)
        checks = {c.name: c for c in ready.checks}
        for c in ready.checks:
            report[c.name] = c.detail if c.ok else f"FAILING: {c.detail}"
        report["checks"] = [asdict(c) for c in ready.checks]
        if checks["database"].ok:
            with db.session() as s:
                counts = inbound.count_by_status(s)
                report.update(emails=counts, pending=counts.get("pending", 0),
                              open_dead_letters=dead_letters.count_open(s),
                              deliveries=outbox.count_by_status(s))
        alive = {d.id for d in beating(daemons, settings.health.heartbeat_stale_after, now)}
        report["daemons"] = [
            {"host": d.host, "pid": d.pid, "version": d.version,
             "started_at": d.started_at.isoformat(timespec="seconds"),
             "last_beat_at": d.beat_at.isoformat(timespec="seconds"),
             "last_beat_seconds_ago": int(max(now - d.beat_at, timedelta(0)).total_seconds()),
             "state": "running" if d.id in alive else "stopped" if d.stopped_at else "silent"}
            for d in daemons]
        report["failed"] = ready.failed
        report["healthy"] = ready.ready
    finally:
        db.dispose()
    return report


class CheckModel(BaseModel):
    name: str
    ok: bool
    detail: str


class ReadinessModel(BaseModel):
    status: str
    failed: list[str]
    checks: list[CheckModel]


def health_router(db: Database, settings: Settings,
                  clock: Callable[[], datetime] | None = None) -> APIRouter:
    """``GET /readyz``: 200 when every check passes, else 503; the body names each check."""
    router = APIRouter()
    now = clock or (lambda: datetime.now(UTC))

    @router.get("/readyz", response_model=ReadinessModel, tags=["health"],
                responses={503: {"model": ReadinessModel, "description": "a check failed"}})
    async def readyz() -> JSONResponse:
        result = await anyio.to_thread.run_sync(lambda: readiness(db, settings, now()))
        return JSONResponse(result.to_json(), status_code=200 if result.ready else 503)

    return router
