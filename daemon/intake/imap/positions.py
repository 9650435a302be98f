"""Where the watcher stands in the folder: the UIDVALIDITY and last UID it keeps in the
``mailboxes`` table, and the plan of which UIDs a catch-up fetches from there (new mail,
a first run by ``start_from``, or a resync after UIDVALIDITY changed)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from imapclient import IMAPClient

from daemon.config import MailboxSettings
from daemon.intake.imap.connection import Folder
from storage import mailboxes
from storage.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """Which UIDs a catch-up fetches, and how the position moves."""

    label: str
    criteria: list[Any]
    after: int
    #: save ``last_uid`` after every batch (only when ``criteria`` skip nothing above it)
    per_batch: bool
    #: a first run or resync: once all are done, the position is at least this UID
    settle_at: int | None = None


def new_mail(state: mailboxes.MailboxState) -> Plan:
    """Every UID above the stored position; the position moves with each batch."""
    return Plan("new mail", ["UID", f"{state.last_uid + 1}:*"], state.last_uid, True)


@dataclass(eq=False)
class Positions:
    """The stored position of one mailbox folder, read, planned from and saved."""

    settings: MailboxSettings
    db: Database
    clock: Callable[[], datetime]

    @property
    def _name(self) -> str:
        return self.settings.name

    def state(self) -> mailboxes.MailboxState | None:
        with self.db.session() as s:
            return mailboxes.get(s, self._name, self.settings.folder)

    def save(self, folder: Folder, last_uid: int) -> None:
        with self.db.session() as s:
            mailboxes.save_position(
                s, self._name, self.settings.folder,
                uidvalidity=folder.uidvalidity, last_uid=last_uid, at=self.clock(),
            )

    def settle(self, folder: Folder, plan: Plan, uids: list[int], taken: int) -> None:
        """After a first run or resync that took every UID it planned, save the position
        it reached (at least ``settle_at``); after anything else, nothing."""
        if plan.settle_at is None or taken != len(uids):
            return
        last = max(plan.settle_at, uids[-1] if uids else 0)
        self.save(folder, last)
        if plan.label == "resync":
            log.info("mailbox %s: resync done; watching for new mail", self._name)

    def first_run(self, client: IMAPClient, folder: Folder) -> Plan | None:
        """The plan of the first catch-up by ``start_from``; None for ``new``, whose
        position is saved at the top right away."""
        start = self.settings.start_from
        top = self._top_uid(client, folder)
        where = f"mailbox {self._name}: first run on {self.settings.folder!r}"
        if start == "new":
            log.info(
                "%s, start_from: new: the %d messages already there are left alone; "
                "taking in mail that arrives from now on (UID > %d)",
                where, folder.exists, top,
            )
            self.save(folder, top)
            return None
        if start == "all":
            log.info(
                "%s, start_from: all: taking in all %d messages already there",
                where, folder.exists,
            )
            return Plan("backlog", ["ALL", *self._unmarked()], 0, True, top)
        since = date.fromisoformat(start.removeprefix("since:"))
        log.info(
            "%s, start_from: %s: taking in the messages that arrived on or after %s "
            "(of %d there); older ones are left alone",
            where, start, since.isoformat(), folder.exists,
        )
        return Plan("backlog", ["SINCE", since, *self._unmarked()], 0, False, top)

    def resync(
        self, client: IMAPClient, state: mailboxes.MailboxState, folder: Folder
    ) -> Plan:
        """The plan after UIDVALIDITY changed: the folder again, from ``start_from``'s cutoff."""
        start = self.settings.start_from
        cutoff: date | None
        if start == "all":
            cutoff = None
        elif start.startswith("since:"):
            cutoff = date.fromisoformat(start.removeprefix("since:"))
        else:
            # start_from: new — what was there before leadpipe began stays left alone;
            # everything since the last contact (a day of margin) is looked at again.
            seen = state.last_contact_at or self.clock()
            cutoff = seen.date() - timedelta(days=1)
        log.warning(
            "mailbox %s: UIDVALIDITY of %r changed from %s to %s (folder recreated or "
            "server migrated); resyncing %s: emails already stored are recognised by "
            "Message-ID and content and are not processed again",
            self._name, self.settings.folder, state.uidvalidity, folder.uidvalidity,
            "every message" if cutoff is None else f"messages since {cutoff.isoformat()}",
        )
        criteria: list[Any] = ["ALL"] if cutoff is None else ["SINCE", cutoff]
        top = self._top_uid(client, folder)
        return Plan("resync", [*criteria, *self._unmarked()], 0, False, top)

    def _unmarked(self) -> list[Any]:
        # With a processed folder, the watched one holds only unprocessed mail anyway.
        if self.settings.processed_folder:
            return []
        return ["UNKEYWORD", self.settings.processed_keyword]

    @staticmethod
    def _top_uid(client: IMAPClient, folder: Folder) -> int:
        if folder.uidnext is not None:
            return folder.uidnext - 1
        return max(client.search(["ALL"]), default=0)
