"""``MailboxWatcher``: the loop that connects, catches up, waits, and reconnects on trouble."""

from __future__ import annotations

import logging
import random
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy.exc import SQLAlchemyError

from daemon.config import MailboxSettings
from daemon.errors import LeadpipeError, MailboxError
from daemon.intake import inbox
from daemon.intake.imap.connection import close, connect, describe, select_folder
from daemon.intake.imap.fetch import Batches, StoreBatch
from daemon.intake.imap.idle import idle
from daemon.intake.imap.outages import AlertHook, Backoff, Outages
from daemon.intake.imap.positions import Positions, new_mail
from storage import mailboxes
from storage.db import Database

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MailboxWatcher:
    """Watches one mailbox folder; see the package docstring for the guarantees.

    ``clock`` gives aware UTC datetimes; ``store`` commits a fetch batch (``inbox.accept_many``);
    ``on_alert(name, message)`` hears of long outages (the log always does);
    ``ssl_context`` replaces the system trust store (tests, private CAs);
    ``progress_bar`` forces the terminal progress bar on or off (default: when stderr
    is a terminal).
    """

    def __init__(
        self,
        settings: MailboxSettings,
        db: Database,
        *,
        clock: Clock = _utcnow,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        ssl_context: ssl.SSLContext | None = None,
        store: StoreBatch = inbox.accept_many,
        on_alert: AlertHook | None = None,
        progress_bar: bool | None = None,
        standby_poll: float = 5.0,
    ):
        self.settings = settings
        self.db = db
        self._clock = clock
        self._ssl_context = ssl_context
        self._standby_poll = standby_poll
        self._name = settings.name
        self._connected_once = False
        self._outages = Outages(settings, db, clock, backoff=backoff or Backoff(),
                                rng=rng or random.Random(), on_alert=on_alert)
        self._positions = Positions(settings, db, clock)
        self._batches = Batches(settings, db, self._positions, clock, store=store,
                                progress_bar=progress_bar)

    # -- the loop ---------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Watch until ``stop`` is set; never raises for a server or network problem."""
        lock = mailboxes.WatchLock(self.db, self._name)
        standby_logged = False
        try:
            while not stop.is_set():
                try:
                    if not lock.acquire():
                        if not standby_logged:
                            log.info("mailbox %s: another replica watches it; standing by", self._name)
                            standby_logged = True
                        stop.wait(self._standby_poll)
                        continue
                    standby_logged = False
                    self._session(stop, lock)
                except MailboxError as exc:
                    stop.wait(self._outages.failed(str(exc)))
                except (LeadpipeError, SQLAlchemyError) as exc:
                    stop.wait(self._outages.failed(f"mailbox {self._name}: database trouble: {exc}"))
                except Exception as exc:  # isolation boundary: one mailbox's watcher never dies
                    log.exception("mailbox %s: unexpected error; reconnecting", self._name)
                    stop.wait(self._outages.failed(f"mailbox {self._name}: unexpected {type(exc).__name__}: {exc}"))
        finally:
            lock.release()
            log.info("mailbox %s: watcher stopped", self._name)

    def run_once(self) -> int:
        """Connect, catch up once, disconnect; returns how many emails were taken in.

        Raises ``MailboxError`` (for ``leadpipe run --once`` and benchmarks).
        """
        client = connect(self.settings, ssl_context=self._ssl_context)
        try:
            self._guarded(lambda: self._prepare(client), "preparing the folders")
            taken = 0
            while n := self._guarded(lambda: self._catch_up(client, threading.Event()), "catching up"):
                taken += n
            return taken
        finally:
            close(client)

    def _session(self, stop: threading.Event, lock: mailboxes.WatchLock) -> None:
        client = connect(self.settings, ssl_context=self._ssl_context)
        try:
            self._guarded(lambda: self._prepare(client), "preparing the folders")
            select_folder(client, self.settings)  # reachable means: the folder too
            self._outages.recovered()
            self._guarded(lambda: self._catch_up_fully(client, stop), "catching up")
            can_idle = client.has_capability("IDLE")
            period = min(self.settings.poll_interval, self.settings.idle_timeout).total_seconds()
            while not stop.is_set():
                if not lock.held():
                    log.warning("mailbox %s: lost the replica lock; reconnecting", self._name)
                    return
                if can_idle:
                    self._guarded(lambda: idle(client, stop, period), "idling")
                else:
                    stop.wait(self.settings.poll_interval.total_seconds())
                if not stop.is_set():
                    self._guarded(lambda: self._catch_up_fully(client, stop), "catching up")
        finally:
            close(client)

    def _guarded(self, step: Callable[[], Any], stage: str) -> Any:
        try:
            return step()
        except (IMAPClientError, OSError) as exc:
            raise describe(self.settings, exc, stage) from exc

    def _prepare(self, client: IMAPClient) -> None:
        pf = self.settings.processed_folder
        if pf and not client.folder_exists(pf):
            client.create_folder(pf)
            log.info("mailbox %s: created folder %r for processed emails", self._name, pf)
        if not self._connected_once:
            self._connected_once = True
            log.info(
                "mailbox %s: connected to %s:%s (%s); watching %r with %s",
                self._name, self.settings.host, self.settings.effective_port,
                self.settings.security, self.settings.folder,
                "IDLE" if client.has_capability("IDLE")
                else f"polling every {self.settings.poll_interval.total_seconds():g}s",
            )

    # -- catching up ------------------------------------------------------------------

    def _catch_up_fully(self, client: IMAPClient, stop: threading.Event) -> None:
        # Mail that arrives while we fetch is announced in replies we do not read for
        # it (and IDLE does not announce it again): look until a pass finds nothing.
        while self._catch_up(client, stop) and not stop.is_set():
            pass

    def _catch_up(self, client: IMAPClient, stop: threading.Event) -> int:
        folder = select_folder(client, self.settings)
        now = self._clock()
        state = self._positions.state()
        if state is None or not state.settled:
            plan = self._positions.first_run(client, folder)
        elif state.uidvalidity != folder.uidvalidity:
            plan = self._positions.resync(client, state, folder)
        else:
            if folder.uidnext is not None and folder.uidnext - 1 <= state.last_uid:
                self._outages.touch(now)
                return 0
            plan = new_mail(state)
        if plan is None:
            return 0
        uids = sorted(u for u in client.search(plan.criteria) if u > plan.after)
        taken = self._batches.take(client, folder, plan, uids, stop)
        self._positions.settle(folder, plan, uids, taken)
        self._outages.touch(self._clock())
        return taken
