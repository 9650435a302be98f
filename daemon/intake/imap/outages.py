"""Whether the mailbox is reachable: the last contact written to ``mailbox_state`` (for
``leadpipe status``), each outage logged once when it starts and once when it ends, an
outage longer than ``alert_after`` alerted once, and the backoff between attempts."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from daemon.config import MailboxSettings
from daemon.errors import LeadpipeError
from daemon.terminal import duration
from storage import mailboxes
from storage.db import Database

log = logging.getLogger(__name__)

#: called once per outage longer than ``alert_after``: (mailbox name, message)
AlertHook = Callable[[str, str], None]

#: liveness is written at most this often when nothing else changes
_CONTACT_EVERY = timedelta(seconds=10)


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter: attempt n waits U(0, min(cap, base·2ⁿ))."""

    base: float = 1.0
    cap: float = 60.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap, self.base * (2 ** min(attempt, 30))))


@dataclass(eq=False)
class Outages:
    """The reachability of one mailbox, as its watcher saw it: contact, failures, recovery."""

    settings: MailboxSettings
    db: Database
    clock: Callable[[], datetime]
    backoff: Backoff
    rng: random.Random
    on_alert: AlertHook | None
    _failures: int = field(default=0, init=False)
    _last_error: str | None = field(default=None, init=False)
    _last_contact_write: datetime | None = field(default=None, init=False)

    @property
    def _name(self) -> str:
        return self.settings.name

    def touch(self, now: datetime) -> None:
        """Write the last contact (liveness), at most every ``_CONTACT_EVERY``."""
        last = self._last_contact_write
        if last is not None and now - last < _CONTACT_EVERY:
            return
        with self.db.session() as s:
            mailboxes.record_contact(s, self._name, self.settings.folder, now)
        self._last_contact_write = now

    def recovered(self) -> None:
        """Connected and the folder selected: write the contact; end an outage, logged once."""
        now = self.clock()
        with self.db.session() as s:
            before = mailboxes.record_contact(s, self._name, self.settings.folder, now)
        self._last_contact_write = now
        if self._failures or before.down_since is not None:
            since = before.down_since
            took = f" after {duration(now - since, exact=True)}" if since else ""
            log.warning(
                "mailbox %s: reachable again%s (%d failed attempts)",
                self._name, took, self._failures,
            )
        self._failures = 0
        self._last_error = None

    def failed(self, message: str) -> float:
        """Record a failed attempt; log the outage once; alert once. Returns the delay."""
        now = self.clock()
        first = self._failures == 0
        self._failures += 1
        if first:
            log.warning("%s; retrying with backoff (at most %gs apart)", message, self.backoff.cap)
        elif message != self._last_error:
            log.info("%s (still retrying)", message)
        else:
            log.debug("%s (attempt %d)", message, self._failures)
        self._last_error = message
        try:
            with self.db.session() as s:
                state = mailboxes.record_error(s, self._name, self.settings.folder, message, now)
                down_since, alerted = state.down_since, state.alerted_at
                if (
                    down_since is not None
                    and alerted is None
                    and now - down_since >= self.settings.alert_after
                ):
                    mailboxes.record_alert(s, self._name, self.settings.folder, now)
                    self._alert(message, now - down_since)
        except (LeadpipeError, SQLAlchemyError) as exc:
            log.debug("mailbox %s: cannot record the error in the database: %s", self._name, exc)
        return self.backoff.delay(self._failures - 1, self.rng)

    def _alert(self, message: str, down_for: timedelta) -> None:
        text = f"mailbox {self._name} has been unreachable for {duration(down_for, exact=True)}: {message}"
        log.error("%s", text)
        if self.on_alert is not None:
            try:
                self.on_alert(self._name, text)
            except Exception:  # isolation boundary: a failing alert must not stop the watcher
                log.exception("mailbox %s: the unreachable alert could not be sent", self._name)
