"""Taking in the UIDs a catch-up planned, batch by batch: fetch with ``BODY.PEEK[]``, store
(commit) through the inbox, *then* mark on the server, and only then move the position."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient

from daemon.config import MailboxSettings
from daemon.intake.imap.connection import Folder
from daemon.intake.imap.positions import Plan, Positions
from daemon.intake.imap.progress import CatchUpProgress
from daemon.lead import Origin, RawEmail
from storage.db import Database
from storage.inbound import Stored

log = logging.getLogger(__name__)

#: stores one fetch batch and commits it; see ``inbox.accept_many``
StoreBatch = Callable[[Database, Sequence[RawEmail]], list[Stored]]

_DELETED = b"\\Deleted"


@dataclass(eq=False)
class Batches:
    """Fetches, stores and marks one mailbox's emails; ``positions`` moves as they are done."""

    settings: MailboxSettings
    db: Database
    positions: Positions
    clock: Callable[[], datetime]
    store: StoreBatch
    #: the terminal progress bar forced on or off; None: when stderr is a terminal
    progress_bar: bool | None
    _warned: set[str] = field(default_factory=set, init=False)

    @property
    def _name(self) -> str:
        return self.settings.name

    def take(
        self, client: IMAPClient, folder: Folder, plan: Plan, uids: Sequence[int],
        stop: threading.Event,
    ) -> int:
        """Fetch, store, mark, advance — batch by batch. Returns how many were handled."""
        if not uids:
            return 0
        batch = self.settings.fetch_batch
        backlog = len(uids) > batch
        progress = CatchUpProgress(self._name, plan.label, len(uids), self._bar(len(uids)))
        handled = 0
        try:
            for i in range(0, len(uids), batch):
                for group in self._by_size(client, list(uids[i : i + batch])):
                    new = self._take_batch(client, folder, plan, group, backlog)
                    handled += len(group)
                    progress.advance(len(group), new)
                    if stop.is_set():
                        return handled
        finally:
            progress.close()
        return handled

    def _by_size(self, client: IMAPClient, chunk: list[int]) -> list[list[int]]:
        """``chunk`` cut into runs of at most ``fetch_batch_bytes`` (by RFC822.SIZE), each
        at least one email: one cheap FETCH of sizes before the bodies."""
        if len(chunk) == 1:
            return [chunk]
        sizes = client.fetch(chunk, [b"RFC822.SIZE"])
        cap = self.settings.fetch_batch_bytes
        groups: list[list[int]] = []
        group: list[int] = []
        total = 0
        for uid in chunk:
            # a UID missing from the reply was expunged meanwhile: it costs nothing
            size = int(sizes.get(uid, {}).get(b"RFC822.SIZE") or 0)
            if group and total + size > cap:
                groups.append(group)
                group, total = [], 0
            group.append(uid)
            total += size
        groups.append(group)
        return groups

    def _take_batch(self, client: IMAPClient, folder: Folder, plan: Plan, uids: list[int],
                    backlog: bool) -> int:
        """Fetch, store, mark and advance past one batch; returns how many were new."""
        resp = client.fetch(uids, [b"BODY.PEEK[]", b"INTERNALDATE"])
        # A UID missing from the reply was expunged by someone else meanwhile.
        done = [u for u in uids if b"BODY[]" in resp.get(u, {})]
        raws = [self._raw(folder, u, resp[u]) for u in done]
        results = self.store(self.db, raws)
        for raw, r in zip(raws, results, strict=True):
            log.log(
                logging.DEBUG if backlog else logging.INFO,
                "mailbox %s: uid %s %s email #%s", self._name, raw.uid,
                "stored as" if r.created else "was already stored as", r.id,
            )
        self._mark(client, folder, done)
        if plan.per_batch:
            self.positions.save(folder, uids[-1])
        return sum(r.created for r in results)

    def _raw(self, folder: Folder, uid: int, item: dict[bytes, Any]) -> RawEmail:
        when = item.get(b"INTERNALDATE")
        if isinstance(when, datetime):
            when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
        else:
            when = self.clock()
        return RawEmail(
            data=bytes(item[b"BODY[]"]),
            origin=Origin.IMAP,
            received_at=when,
            mailbox=self._name,
            folder=self.settings.folder,
            uidvalidity=folder.uidvalidity,
            uid=uid,
        )

    def _mark(self, client: IMAPClient, folder: Folder, uids: list[int]) -> None:
        """Tell the server these are done. Runs only after ``accept`` committed them."""
        if not uids:
            return
        target = self.settings.processed_folder
        if target:
            if client.has_capability("MOVE"):
                client.move(uids, target)
                return
            if client.has_capability("UIDPLUS"):
                client.copy(uids, target)
                client.add_flags(uids, [_DELETED], silent=True)
                client.uid_expunge(uids)
                return
            self._warn_once(
                "nomove",
                "mailbox %s: the server has neither MOVE nor UIDPLUS, so emails cannot be "
                "moved without expunging other deleted mail; marking them with the keyword "
                "%r instead", self._name, self.settings.processed_keyword,
            )
        if folder.keywords:
            client.add_flags(uids, [self.settings.processed_keyword.encode()], silent=True)
        else:
            self._warn_once(
                "nokeyword",
                "mailbox %s: the server does not keep custom keywords, so processed emails "
                "are tracked by UID only (set processed_folder to have them moved)", self._name,
            )

    def _warn_once(self, key: str, msg: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(msg, *args)

    def _bar(self, total: int) -> bool:
        if total <= self.settings.fetch_batch:
            return False
        if self.progress_bar is not None:
            return self.progress_bar
        return sys.stderr.isatty()
