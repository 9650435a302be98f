"""Is the daemon ready? The checks behind ``GET /readyz`` and ``leadpipe status``.

- ``database``: the database answers on a new connection (``Database.probe``);
- ``mailbox <name>``: each watched mailbox was contacted within its ``alert_after``;
- ``outbox``: the oldest outbox row due for sending has waited less than
  ``health.outbox_stuck_after`` (the dispatcher is keeping up).

``GET /healthz`` (daemon/web.py) only says the process answers; ``/readyz`` answers 503
with the failing checks named when any of these fails.
"""

from __future__ import annotations

import contextlib
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
from storage import dead_letters, inbound, mailboxes, outbox
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
    now = now or datetime.now(UTC)
    try:
        revision = db.probe()
    except StorageError as exc:
        down = [Check("database", False, str(exc))]
        down += [Check(f"mailbox {m.name}", False, "unknown: the database cannot be read")
                 for m in settings.mailboxes]
        down.append(Check("outbox", False, "unknown: the database cannot be read"))
        return Readiness(tuple(down))
    checks = [Check("database", True, f"{db.describe()} at revision {revision}")]
    try:
        with db.session() as s:
            states = mailboxes.all_states(s)
            due = outbox.next_due(s)
    except (StorageError, SQLAlchemyError) as exc:
        checks.append(Check("outbox", False, f"cannot read: {str(exc).splitlines()[0]}"))
        return Readiness(tuple(checks))
    for m in settings.mailboxes:
        state = next((x for x in states if x.mailbox == m.name and x.folder == m.folder), None)
        checks.append(_mailbox(m.name, state, m.alert_after, now))
    checks.append(_outbox(due, settings.health.outbox_stuck_after, now))
    return Readiness(tuple(checks))


def _mailbox(name: str, state: mailboxes.MailboxState | None, limit: timedelta,
             now: datetime) -> Check:
    line = mailbox_line(state, now)
    contact = state.last_contact_at if state else None
    ok = contact is not None and now - contact <= limit
    if not ok:
        line += f" (alert_after {_span(limit)})"
    return Check(f"mailbox {name}", ok, line)


def _outbox(due: datetime | None, limit: timedelta, now: datetime) -> Check:
    if due is None or due > now:
        return Check("outbox", True, "nothing due")
    waited = now - due
    if waited > limit:
        return Check("outbox", False, f"the oldest due delivery has waited {_span(waited)} "
                                      f"(outbox_stuck_after {_span(limit)}): is the dispatcher running?")
    return Check("outbox", True, f"the oldest due delivery has waited {_span(waited)}")


def mailbox_line(state: mailboxes.MailboxState | None, now: datetime) -> str:
    """One mailbox's state for people: last contact, position, outage."""
    if state is None or state.last_contact_at is None:
        return "never reached" + (f" (last error: {state.last_error})" if state and state.last_error else "")
    ago = int((now - state.last_contact_at).total_seconds())
    line = f"last contact {ago}s ago, UID {state.last_uid}"
    if state.down_since is not None:
        line += f"; unreachable since {state.down_since:%Y-%m-%d %H:%M} UTC: {state.last_error}"
    return line


def _span(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def status(settings: Settings) -> dict[str, Any]:
    """What ``leadpipe status`` shows: the readiness checks, and counts of what is stored.
    ``healthy`` is the readiness verdict."""
    report: dict[str, Any] = {"database": None, "healthy": False}
    db = Database(settings.database_url)
    try:
        with contextlib.suppress(StorageError):  # the database check below says why
            db.upgrade()
        ready = readiness(db, settings)
        by_name = {c.name: c for c in ready.checks}
        database = by_name["database"]
        report["database"] = ("ok (" + database.detail + ")") if database.ok else \
            f"unreachable: {database.detail}"
        if database.ok:
            with db.session() as s:
                counts = inbound.count_by_status(s)
                report.update(emails=counts, pending=counts.get("pending", 0),
                              open_dead_letters=dead_letters.count_open(s),
                              deliveries=outbox.count_by_status(s))
        for c in ready.checks:
            if c.name.startswith("mailbox ") or c.name == "outbox":
                report[c.name] = c.detail if c.ok else f"FAILING: {c.detail}"
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
