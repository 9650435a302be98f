"""Mailbox state: where each watched IMAP folder is up to, and whether it can be reached.

One ``mailbox_state`` row per ``(mailbox, folder)``. The IMAP watcher reads its position
(``uidvalidity``, ``last_uid``) before fetching and moves it forward only after the
fetched emails are stored and marked; it records every successful contact and every
outage, which ``leadpipe status`` and the unreachable-mailbox alert read back.

``WatchLock`` makes one replica watch each mailbox when several share a PostgreSQL
database (a session-level advisory lock held for as long as the watcher runs).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storage.db import Database
from storage.models import MailboxStateRow, insert_or_find


@dataclass(frozen=True)
class MailboxState:
    """A watched folder's position and health, as stored."""

    mailbox: str
    folder: str
    uidvalidity: int | None
    last_uid: int
    last_contact_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    down_since: datetime | None
    alerted_at: datetime | None

    @property
    def settled(self) -> bool:
        """True once a first run (or a resync) has finished and the position is exact."""
        return self.uidvalidity is not None


def get(session: Session, mailbox: str, folder: str) -> MailboxState | None:
    """The state of ``mailbox``/``folder``, or ``None`` before its first run."""
    row = _find(session, mailbox, folder)
    return None if row is None else _value(row)


def all_states(session: Session) -> list[MailboxState]:
    """Every mailbox folder ever watched, by mailbox name (for ``leadpipe status``)."""
    rows = session.scalars(
        select(MailboxStateRow).order_by(MailboxStateRow.mailbox, MailboxStateRow.folder)
    )
    return [_value(r) for r in rows]


def save_position(
    session: Session, mailbox: str, folder: str, *, uidvalidity: int, last_uid: int, at: datetime
) -> None:
    """Everything up to ``last_uid`` under ``uidvalidity`` is stored and marked."""
    row = _row(session, mailbox, folder)
    row.uidvalidity = uidvalidity
    row.last_uid = last_uid
    row.last_contact_at = at


def record_contact(session: Session, mailbox: str, folder: str, at: datetime) -> MailboxState:
    """The server answered at ``at``: ends an outage. Returns the state *before* this call."""
    row = _row(session, mailbox, folder)
    before = _value(row)
    row.last_contact_at = at
    row.down_since = None
    row.alerted_at = None
    return before


def record_error(session: Session, mailbox: str, folder: str, error: str, at: datetime) -> MailboxState:
    """The server could not be used at ``at``; an outage starts unless one is going on.

    Returns the state after the call (``down_since`` is when the outage began).
    """
    row = _row(session, mailbox, folder)
    row.last_error = error[:2000]
    row.last_error_at = at
    if row.down_since is None:
        row.down_since = at
    return _value(row)


def record_alert(session: Session, mailbox: str, folder: str, at: datetime) -> None:
    """The outage going on has been alerted about; not again until it ends."""
    _row(session, mailbox, folder).alerted_at = at


def _find(session: Session, mailbox: str, folder: str) -> MailboxStateRow | None:
    return session.scalars(
        select(MailboxStateRow).where(
            MailboxStateRow.mailbox == mailbox, MailboxStateRow.folder == folder
        )
    ).first()


def _row(session: Session, mailbox: str, folder: str) -> MailboxStateRow:
    row = _find(session, mailbox, folder)
    if row is not None:
        return row
    row = MailboxStateRow(mailbox=mailbox, folder=folder, uidvalidity=None, last_uid=0)
    # another process may create it between our look-up and our insert
    return insert_or_find(session, row, lambda: _find(session, mailbox, folder))[0]


def _value(row: MailboxStateRow) -> MailboxState:
    return MailboxState(
        mailbox=row.mailbox,
        folder=row.folder,
        uidvalidity=row.uidvalidity,
        last_uid=row.last_uid or 0,
        last_contact_at=row.last_contact_at,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        down_since=row.down_since,
        alerted_at=row.alerted_at,
    )


def lock_key(mailbox: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``mailbox``."""
    digest = hashlib.sha256(b"leadpipe-mailbox\0" + mailbox.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class WatchLock:
    """One watcher per mailbox across replicas sharing a PostgreSQL database.

    ``acquire()`` takes a session-level advisory lock on a connection of its own and
    returns whether it got it; the lock lasts until ``release()`` or until that
    connection dies (a replica that crashes lets another take over). ``held()`` checks
    that the connection, and so the lock, is still there. On SQLite, where only one
    process can run the daemon against the file anyway, every call succeeds.
    """

    def __init__(self, db: Database, mailbox: str):
        self._db = db
        self._key = lock_key(mailbox)
        self._conn: Connection | None = None

    def acquire(self) -> bool:
        if not self._db.is_postgres:
            return True
        if self._conn is not None:
            return True
        conn = self._db.engine.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar()
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def held(self) -> bool:
        if not self._db.is_postgres:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
        except Exception:  # isolation boundary: any failure means the lock is gone
            self._drop(invalidate=True)
            return False
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            self._conn.commit()
        except Exception:  # isolation boundary: discarding the connection frees the lock
            self._drop(invalidate=True)
            return
        self._drop(invalidate=False)

    def _drop(self, *, invalidate: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if invalidate:
                # Never hand a connection that may still hold the lock back to the pool.
                conn.invalidate()
            conn.close()
        except Exception:  # isolation boundary: a dead connection may fail to close
            pass
