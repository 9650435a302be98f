"""Alerts for people: logged, and posted to the tech channel through the outbox.

An alert is an outbox row for the Slack notifier's ``alert`` action, so it survives a
restart and a Slack outage like any other delivery. Without Slack it is only logged.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from daemon.logs import redact
from notifiers.slack import ALERT, Slack
from storage import outbox
from storage.db import Database

log = logging.getLogger(__name__)


class Alerts:
    """``alerts(text)`` in its own transaction, ``alerts.within(session, text)`` in the caller's.

    ``key`` makes an alert once-only (``dead_letter:12`` alerts once however often the
    email is processed); without one every call alerts.
    """

    def __init__(self, db: Database, *, to_slack: bool,
                 clock: Callable[[], datetime] | None = None,
                 wake: Callable[[], None] | None = None):
        self.db = db
        self.to_slack = to_slack
        self.clock = clock or (lambda: datetime.now(UTC))
        self.wake = wake

    def __call__(self, text: str, *, key: str | None = None) -> None:
        log.error("ALERT %s", redact(text))
        if not self.to_slack:
            return
        with self.db.session() as s:
            self._enqueue(s, text, key)
        if self.wake is not None:
            self.wake()

    def within(self, session: Session, text: str, *, key: str | None = None) -> None:
        """The alert is written (and sent) only if the caller's transaction commits."""
        log.error("ALERT %s", redact(text))
        if self.to_slack:
            self._enqueue(session, text, key)

    def _enqueue(self, session: Session, text: str, key: str | None) -> None:
        outbox.enqueue(session, notifier=Slack.name, action=ALERT,
                       idempotency_key=f"alert:{key or uuid.uuid4().hex}",
                       payload={"text": text}, at=self.clock())
