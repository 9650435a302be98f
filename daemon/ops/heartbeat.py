"""The running daemon's heartbeat: one row (host, pid, version, started, last beat).

``Service.run_forever`` starts it, beats it from the scheduler every
``health.heartbeat_interval``, and marks it stopped on the way out. A daemon killed or hung
stops beating; ``GET /readyz`` and ``leadpipe status`` fail once no daemon has beaten within
``health.heartbeat_stale_after`` (daemon/ops/health.py).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from daemon.errors import StorageError
from storage import heartbeats
from storage.db import Database

log = logging.getLogger(__name__)

#: rows of daemons gone this long are deleted, so the table holds only recent history
KEEP_GONE = timedelta(days=7)


def version() -> str:
    """leadpipe's installed version, or ``unknown`` when run from a source tree only."""
    try:
        return importlib.metadata.version("leadpipe")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Beater:
    """This process's heartbeat row. ``beat`` never raises: a database that cannot be
    written is logged once per outage, and the stale beat is what tells the world."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] | None = None):
        self.db = db
        self._now = clock or (lambda: datetime.now(UTC))
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.version = version()
        self.started_at: datetime | None = None
        self.id: int | None = None
        self._failing = False

    def start(self) -> None:
        """Write this daemon's row (raises ``StorageError`` when the database is down)."""
        self.started_at = self._now()
        try:
            with self.db.session() as s:
                self.id = heartbeats.start(s, host=self.host, pid=self.pid, version=self.version,
                                           at=self.started_at)
                heartbeats.prune(s, self.started_at - KEEP_GONE)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot write the heartbeat to {self.db.describe()}: {exc}") from exc

    def beat(self) -> None:
        """The heartbeat job: refresh the row (a new one if it vanished)."""
        now = self._now()
        try:
            with self.db.session() as s:
                if self.id is None or not heartbeats.beat(s, self.id, at=now):
                    self.id = heartbeats.start(s, host=self.host, pid=self.pid, version=self.version,
                                               at=self.started_at or now)
                    heartbeats.beat(s, self.id, at=now)
        except Exception as exc:  # isolation boundary: a scheduled job logs and runs again
            if not self._failing:
                log.error("cannot write the heartbeat (readiness will fail): %s",
                          str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self._failing = True
            return
        if self._failing:
            log.info("the heartbeat is written again")
        self._failing = False

    def stop(self) -> None:
        """Mark this daemon stopped, so readiness fails at once rather than when it goes stale."""
        if self.id is None:
            return
        try:
            with self.db.session() as s:
                heartbeats.stop(s, self.id, at=self._now())
        except Exception:  # isolation boundary: stopping goes on; the beat goes stale instead
            log.warning("could not mark the heartbeat stopped; it will go stale instead")
