"""The IMAP source: watch one mailbox folder and hand every email to the inbox exactly once.

``MailboxWatcher(settings, db).run(stop)`` connects (TLS, STARTTLS or, on loopback,
plain), logs in with a password or XOAUTH2, and then loops until ``stop`` is set:

1. catch up: every message whose UID is above the stored ``last_uid`` is fetched with
   ``BODY.PEEK[]`` in batches of ``fetch_batch`` (fewer when they are big: a batch stays
   under ``fetch_batch_bytes`` by RFC822.SIZE), handed to ``inbox.accept`` (which
   commits it), *then* marked on the server (MOVE to ``processed_folder``, or
   COPY + ``\\Deleted`` + UID EXPUNGE, or the ``processed_keyword``), and only then is
   ``last_uid`` moved forward. A crash anywhere in between refetches the batch; the
   inbox recognises what it already stored, so nothing is processed twice.
2. wait: IDLE where the server offers it, ended after ``min(poll_interval,
   idle_timeout)`` so a catch-up also runs on a timer (the safety net for anything
   IDLE missed, and well inside the 29 minutes of RFC 2177); plain polling every
   ``poll_interval`` where it does not.

A changed UIDVALIDITY (folder recreated, server migrated) starts a resync: the folder's
messages are fetched again and ``accept`` recognises the ones already stored by
Message-ID plus content hash. Any network or server error closes the connection and
reconnects with capped exponential backoff and full jitter; each outage is logged once
when it starts and once when it ends, and is recorded in ``mailbox_state`` (with the
last contact, for ``leadpipe status``); an outage longer than ``alert_after`` is alerted
once. ``check(settings)`` is the ``doctor`` probe.
"""

from __future__ import annotations

import contextlib
import logging
import random
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from sqlalchemy.exc import SQLAlchemyError

from daemon.config import MailboxSettings
from daemon.errors import LeadpipeError, MailboxError
from daemon.intake import inbox
from daemon.lead import Origin, RawEmail
from storage import mailboxes
from storage.db import Database
from storage.inbound import Stored

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
#: stores one fetch batch and commits it; see ``inbox.accept_many``
StoreBatch = Callable[[Database, Sequence[RawEmail]], list[Stored]]
#: called once per outage longer than ``alert_after``: (mailbox name, message)
AlertHook = Callable[[str, str], None]

_DELETED = b"\\Deleted"
#: how often a wait checks ``stop``; a stop is honoured within about this long
_STOP_CHECK = 0.5
#: liveness is written at most this often when nothing else changes
_CONTACT_EVERY = timedelta(seconds=10)
#: progress lines for a backlog at most this often
_PROGRESS_EVERY = 2.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter: attempt n waits U(0, min(cap, base·2ⁿ))."""

    base: float = 1.0
    cap: float = 60.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap, self.base * (2 ** min(attempt, 30))))


@dataclass(frozen=True)
class MailboxReport:
    """What ``check`` found: enough for ``leadpipe doctor`` to print."""

    name: str
    host: str
    port: int
    security: str
    folder: str
    capabilities: tuple[str, ...]
    messages: int
    uidvalidity: int | None
    uidnext: int | None
    idle: bool
    move: bool
    uidplus: bool
    keywords: bool
    processed_folder: str | None
    processed_folder_exists: bool | None

    def summary(self) -> str:
        marking = (
            f"moved to {self.processed_folder!r}"
            + ("" if self.processed_folder_exists else " (will be created)")
            if self.processed_folder
            else "marked with a keyword" if self.keywords else "tracked by UID only"
        )
        return (
            f"{self.name}: {self.host}:{self.port} ({self.security}), folder {self.folder!r}: "
            f"{self.messages} messages; IDLE {'yes' if self.idle else 'no (polling)'}; "
            f"processed emails {marking}"
        )


@dataclass(frozen=True)
class _Folder:
    """The selected folder as the server reported it."""

    uidvalidity: int
    uidnext: int | None
    exists: int
    keywords: bool  # custom keywords are kept (PERMANENTFLAGS has \* )


@dataclass(frozen=True)
class _Plan:
    """Which UIDs a catch-up fetches, and how the position moves."""

    label: str
    criteria: list[Any]
    after: int
    #: save ``last_uid`` after every batch (only when ``criteria`` skip nothing above it)
    per_batch: bool
    #: a first run or resync: once all are done, the position is at least this UID
    settle_at: int | None = None


def connect(settings: MailboxSettings, *, ssl_context: ssl.SSLContext | None = None) -> IMAPClient:
    """A logged-in ``IMAPClient`` for ``settings``. Raises ``MailboxError`` saying what failed."""
    stage = "connecting"
    client: IMAPClient | None = None
    try:
        context = ssl_context or ssl.create_default_context()
        client = IMAPClient(
            settings.host,
            port=settings.effective_port,
            ssl=settings.security == "ssl",
            ssl_context=context,
            timeout=settings.timeout.total_seconds(),
        )
        client.normalise_times = False
        sock = client.socket()
        # Our commands are small and latency matters more than packet count.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if settings.security == "starttls":
            stage = "starting TLS"
            if not client.has_capability("STARTTLS"):
                raise MailboxError(
                    f"mailbox {settings.name}: {settings.host} does not offer STARTTLS; "
                    "use security: ssl (usually port 993)"
                )
            client.starttls(context)
        stage = "logging in"
        if settings.password:
            client.login(settings.username, settings.password)
        else:
            stage = "logging in with XOAUTH2"
            client.oauth2_login(settings.username, _oauth2_token(settings))
        return client
    except BaseException as exc:
        if client is not None:
            _close(client)
        if isinstance(exc, IMAPClientError | OSError):
            raise describe(settings, exc, stage) from exc
        raise


def check(settings: MailboxSettings, *, ssl_context: ssl.SSLContext | None = None) -> MailboxReport:
    """Log in, examine the folder read-only, and report. Raises ``MailboxError``."""
    client = connect(settings, ssl_context=ssl_context)
    try:
        folder = select_folder(client, settings, readonly=True)
        stage = "listing folders"
        try:
            caps = tuple(c.decode("ascii", "replace") for c in client.capabilities())
            pf_exists = (
                client.folder_exists(settings.processed_folder)
                if settings.processed_folder
                else None
            )
        except (IMAPClientError, OSError) as exc:
            raise describe(settings, exc, stage) from exc
    finally:
        _close(client)
    return MailboxReport(
        name=settings.name,
        host=settings.host,
        port=settings.effective_port,
        security=settings.security,
        folder=settings.folder,
        capabilities=caps,
        messages=folder.exists,
        uidvalidity=folder.uidvalidity,
        uidnext=folder.uidnext,
        idle="IDLE" in caps,
        move="MOVE" in caps,
        uidplus="UIDPLUS" in caps,
        keywords=folder.keywords,
        processed_folder=settings.processed_folder,
        processed_folder_exists=pf_exists,
    )


def select_folder(client: IMAPClient, settings: MailboxSettings, *, readonly: bool = False) -> _Folder:
    """Select (or examine) the watched folder; a missing one is a ``MailboxError`` naming
    the folders that do exist."""
    try:
        resp = client.select_folder(settings.folder, readonly=readonly)
    except IMAPClientError as exc:
        try:
            names = [f[2] for f in client.list_folders()]
        except (IMAPClientError, OSError):
            names = None
        if names is not None and settings.folder not in names:
            shown = ", ".join(repr(n) for n in names[:20]) + (" …" if len(names) > 20 else "")
            raise MailboxError(
                f"mailbox {settings.name}: folder {settings.folder!r} does not exist on "
                f"{settings.host}; the folders there are {shown}; check `folder`"
            ) from exc
        raise describe(settings, exc, f"selecting {settings.folder!r}") from exc
    except OSError as exc:
        raise describe(settings, exc, f"selecting {settings.folder!r}") from exc
    permanent = resp.get(b"PERMANENTFLAGS", ())
    uidnext = resp.get(b"UIDNEXT")
    return _Folder(
        uidvalidity=int(resp[b"UIDVALIDITY"]),
        uidnext=int(uidnext) if uidnext is not None else None,
        exists=int(resp.get(b"EXISTS", 0)),
        keywords=b"\\*" in permanent
        or settings.processed_keyword.encode() in permanent,
    )


def describe(settings: MailboxSettings, exc: BaseException, stage: str) -> MailboxError:
    """Translate a socket, TLS or IMAP exception into a ``MailboxError`` that says what to do."""
    if isinstance(exc, MailboxError):
        return exc
    host, where = settings.host, f"{settings.host}:{settings.effective_port}"
    if isinstance(exc, socket.gaierror):
        what = f"cannot resolve host {host!r} ({exc.strerror}); check `host` and DNS"
    elif isinstance(exc, ConnectionRefusedError):
        what = f"connection refused by {where}; is the server up, and is `port` right?"
    elif isinstance(exc, TimeoutError):
        what = f"no answer from {where} within {settings.timeout.total_seconds():g}s while {stage}"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        what = f"the TLS certificate of {host} is not trusted: {exc.verify_message}"
    elif isinstance(exc, ssl.SSLError):
        what = (
            f"TLS with {where} failed while {stage} ({exc.reason or exc}); does port "
            f"{settings.effective_port} speak security: {settings.security}? "
            "(993 is usually ssl, 143 starttls)"
        )
    elif isinstance(exc, LoginError):
        secret = "password" if settings.password else "OAuth2 token"
        what = (
            f"{host} refused the login of {settings.username!r}: {_text(exc)}; "
            f"check the {secret}"
        )
    elif isinstance(exc, IMAPClientAbortError | OSError):
        what = f"connection to {where} lost while {stage}: {_text(exc) or type(exc).__name__}"
    else:
        what = f"{host} answered an error while {stage}: {_text(exc)}"
    return MailboxError(f"mailbox {settings.name}: {what}")


def _text(exc: BaseException) -> str:
    parts = []
    for a in exc.args:
        parts.append(a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a))
    text = " ".join(parts).strip()
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text


def _oauth2_token(settings: MailboxSettings) -> str:
    if settings.oauth2_token:
        return settings.oauth2_token
    command = settings.oauth2_token_command or ""
    try:
        done = subprocess.run(
            command,
            shell=True,  # the command line comes from the operator's own configuration
            capture_output=True,
            text=True,
            timeout=settings.timeout.total_seconds(),
        )
    except subprocess.TimeoutExpired as exc:
        raise MailboxError(
            f"mailbox {settings.name}: oauth2_token_command did not finish within "
            f"{settings.timeout.total_seconds():g}s"
        ) from exc
    except OSError as exc:
        raise MailboxError(
            f"mailbox {settings.name}: cannot run oauth2_token_command: {exc.strerror}"
        ) from exc
    token = done.stdout.strip()
    if done.returncode != 0 or not token:
        err = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MailboxError(
            f"mailbox {settings.name}: oauth2_token_command exited with status "
            f"{done.returncode} and gave no token: {err}"
        )
    return token


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # isolation boundary: a broken connection is dropped either way
        with contextlib.suppress(Exception):  # isolation boundary: nothing left to close
            client.shutdown()


class MailboxWatcher:
    """Watches one mailbox folder; see the module docstring for the guarantees.

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
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._ssl_context = ssl_context
        self._store = store
        self._on_alert = on_alert
        self._progress_bar = progress_bar
        self._standby_poll = standby_poll
        self._name = settings.name
        self._failures = 0
        self._last_error: str | None = None
        self._connected_once = False
        self._last_contact_write: datetime | None = None
        self._warned: set[str] = set()

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
                    stop.wait(self._failed(str(exc)))
                except (LeadpipeError, SQLAlchemyError) as exc:
                    stop.wait(self._failed(f"mailbox {self._name}: database trouble: {exc}"))
                except Exception as exc:  # isolation boundary: one mailbox's watcher never dies
                    log.exception("mailbox %s: unexpected error; reconnecting", self._name)
                    stop.wait(self._failed(f"mailbox {self._name}: unexpected {type(exc).__name__}: {exc}"))
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
            _close(client)

    def _session(self, stop: threading.Event, lock: mailboxes.WatchLock) -> None:
        client = connect(self.settings, ssl_context=self._ssl_context)
        try:
            self._guarded(lambda: self._prepare(client), "preparing the folders")
            select_folder(client, self.settings)  # reachable means: the folder too
            self._recovered()
            self._guarded(lambda: self._catch_up_fully(client, stop), "catching up")
            idle = client.has_capability("IDLE")
            period = min(self.settings.poll_interval, self.settings.idle_timeout).total_seconds()
            while not stop.is_set():
                if not lock.held():
                    log.warning("mailbox %s: lost the replica lock; reconnecting", self._name)
                    return
                if idle:
                    self._guarded(lambda: self._idle(client, stop, period), "idling")
                else:
                    stop.wait(self.settings.poll_interval.total_seconds())
                if not stop.is_set():
                    self._guarded(lambda: self._catch_up_fully(client, stop), "catching up")
        finally:
            _close(client)

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

    # -- waiting ----------------------------------------------------------------------

    def _idle(self, client: IMAPClient, stop: threading.Event, seconds: float) -> None:
        """IDLE until the server says anything, ``seconds`` pass, or ``stop`` is set.

        The responses themselves are not parsed: any of them means "catch up by UID".
        Waiting is select() on the socket and the reply to DONE is read with blocking
        reads, never imapclient's non-blocking ``idle_check`` (it can fail on a response
        that arrives in pieces: ``unterminated line``).
        """
        if _start_idle(client):
            _wait_readable(client, stop, seconds)
        client.idle_done()

    # -- catching up ------------------------------------------------------------------

    def _catch_up_fully(self, client: IMAPClient, stop: threading.Event) -> None:
        # Mail that arrives while we fetch is announced in replies we do not read for
        # it (and IDLE does not announce it again): look until a pass finds nothing.
        while self._catch_up(client, stop) and not stop.is_set():
            pass

    def _catch_up(self, client: IMAPClient, stop: threading.Event) -> int:
        folder = select_folder(client, self.settings)
        now = self._clock()
        with self.db.session() as s:
            state = mailboxes.get(s, self._name, self.settings.folder)
        if state is None or not state.settled:
            plan = self._first_run(client, folder)
        elif state.uidvalidity != folder.uidvalidity:
            plan = self._resync(client, state, folder)
        else:
            if folder.uidnext is not None and folder.uidnext - 1 <= state.last_uid:
                self._touch(now)
                return 0
            plan = _Plan("new mail", ["UID", f"{state.last_uid + 1}:*"], state.last_uid, True)
        if plan is None:
            return 0
        uids = sorted(u for u in client.search(plan.criteria) if u > plan.after)
        taken = self._take(client, folder, plan, uids, stop)
        if plan.settle_at is not None and taken == len(uids):
            last = max(plan.settle_at, uids[-1] if uids else 0)
            with self.db.session() as s:
                mailboxes.save_position(
                    s, self._name, self.settings.folder,
                    uidvalidity=folder.uidvalidity, last_uid=last, at=self._clock(),
                )
            if plan.label == "resync":
                log.info("mailbox %s: resync done; watching for new mail", self._name)
        self._touch(self._clock())
        return taken

    def _first_run(self, client: IMAPClient, folder: _Folder) -> _Plan | None:
        start = self.settings.start_from
        top = self._top_uid(client, folder)
        where = f"mailbox {self._name}: first run on {self.settings.folder!r}"
        if start == "new":
            log.info(
                "%s, start_from: new: the %d messages already there are left alone; "
                "taking in mail that arrives from now on (UID > %d)",
                where, folder.exists, top,
            )
            with self.db.session() as s:
                mailboxes.save_position(
                    s, self._name, self.settings.folder,
                    uidvalidity=folder.uidvalidity, last_uid=top, at=self._clock(),
                )
            return None
        if start == "all":
            log.info(
                "%s, start_from: all: taking in all %d messages already there",
                where, folder.exists,
            )
            return _Plan("backlog", ["ALL", *self._unmarked()], 0, True, top)
        since = date.fromisoformat(start.removeprefix("since:"))
        log.info(
            "%s, start_from: %s: taking in the messages that arrived on or after %s "
            "(of %d there); older ones are left alone",
            where, start, since.isoformat(), folder.exists,
        )
        return _Plan("backlog", ["SINCE", since, *self._unmarked()], 0, False, top)

    def _resync(
        self, client: IMAPClient, state: mailboxes.MailboxState, folder: _Folder
    ) -> _Plan:
        start = self.settings.start_from
        cutoff: date | None
        if start == "all":
            cutoff = None
        elif start.startswith("since:"):
            cutoff = date.fromisoformat(start.removeprefix("since:"))
        else:
            # start_from: new — what was there before leadpipe began stays left alone;
            # everything since the last contact (a day of margin) is looked at again.
            seen = state.last_contact_at or self._clock()
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
        return _Plan("resync", [*criteria, *self._unmarked()], 0, False, top)

    def _unmarked(self) -> list[Any]:
        # With a processed folder, the watched one holds only unprocessed mail anyway.
        if self.settings.processed_folder:
            return []
        return ["UNKEYWORD", self.settings.processed_keyword]

    @staticmethod
    def _top_uid(client: IMAPClient, folder: _Folder) -> int:
        if folder.uidnext is not None:
            return folder.uidnext - 1
        return max(client.search(["ALL"]), default=0)

    def _take(
        self, client: IMAPClient, folder: _Folder, plan: _Plan, uids: Sequence[int],
        stop: threading.Event,
    ) -> int:
        """Fetch, store, mark, advance — batch by batch. Returns how many were handled."""
        if not uids:
            return 0
        batch = self.settings.fetch_batch
        backlog = len(uids) > batch
        progress = _Progress(self._name, plan.label, len(uids), self._bar(len(uids)))
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

    def _take_batch(self, client: IMAPClient, folder: _Folder, plan: _Plan, uids: list[int],
                    backlog: bool) -> int:
        """Fetch, store, mark and advance past one batch; returns how many were new."""
        resp = client.fetch(uids, [b"BODY.PEEK[]", b"INTERNALDATE"])
        # A UID missing from the reply was expunged by someone else meanwhile.
        done = [u for u in uids if b"BODY[]" in resp.get(u, {})]
        raws = [self._raw(folder, u, resp[u]) for u in done]
        results = self._store(self.db, raws)
        for raw, r in zip(raws, results, strict=True):
            log.log(
                logging.DEBUG if backlog else logging.INFO,
                "mailbox %s: uid %s %s email #%s", self._name, raw.uid,
                "stored as" if r.created else "was already stored as", r.id,
            )
        self._mark(client, folder, done)
        if plan.per_batch:
            with self.db.session() as s:
                mailboxes.save_position(
                    s, self._name, self.settings.folder,
                    uidvalidity=folder.uidvalidity, last_uid=uids[-1], at=self._clock(),
                )
        return sum(r.created for r in results)

    def _raw(self, folder: _Folder, uid: int, item: dict[bytes, Any]) -> RawEmail:
        when = item.get(b"INTERNALDATE")
        if isinstance(when, datetime):
            when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
        else:
            when = self._clock()
        return RawEmail(
            data=bytes(item[b"BODY[]"]),
            origin=Origin.IMAP,
            received_at=when,
            mailbox=self._name,
            folder=self.settings.folder,
            uidvalidity=folder.uidvalidity,
            uid=uid,
        )

    def _mark(self, client: IMAPClient, folder: _Folder, uids: list[int]) -> None:
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

    # -- health -----------------------------------------------------------------------

    def _touch(self, now: datetime) -> None:
        last = self._last_contact_write
        if last is not None and now - last < _CONTACT_EVERY:
            return
        with self.db.session() as s:
            mailboxes.record_contact(s, self._name, self.settings.folder, now)
        self._last_contact_write = now

    def _recovered(self) -> None:
        now = self._clock()
        with self.db.session() as s:
            before = mailboxes.record_contact(s, self._name, self.settings.folder, now)
        self._last_contact_write = now
        if self._failures or before.down_since is not None:
            since = before.down_since
            took = f" after {_human(now - since)}" if since else ""
            log.warning(
                "mailbox %s: reachable again%s (%d failed attempts)",
                self._name, took, self._failures,
            )
        self._failures = 0
        self._last_error = None

    def _failed(self, message: str) -> float:
        """Record a failed attempt; log the outage once; alert once. Returns the delay."""
        now = self._clock()
        first = self._failures == 0
        self._failures += 1
        if first:
            log.warning("%s; retrying with backoff (at most %gs apart)", message, self._backoff.cap)
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
        return self._backoff.delay(self._failures - 1, self._rng)

    def _alert(self, message: str, down_for: timedelta) -> None:
        text = f"mailbox {self._name} has been unreachable for {_human(down_for)}: {message}"
        log.error("%s", text)
        if self._on_alert is not None:
            try:
                self._on_alert(self._name, text)
            except Exception:  # isolation boundary: a failing alert must not stop the watcher
                log.exception("mailbox %s: the unreachable alert could not be sent", self._name)

    def _warn_once(self, key: str, msg: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(msg, *args)

    def _bar(self, total: int) -> bool:
        if total <= self.settings.fetch_batch:
            return False
        if self._progress_bar is not None:
            return self._progress_bar
        return sys.stderr.isatty()


def _start_idle(client: IMAPClient) -> bool:
    """Send IDLE and read up to its continuation. False if the server already reported
    a change before it (imapclient's ``idle()`` would raise on that)."""
    imap = client._imap  # imaplib underneath: only its documented-in-source command helpers
    tag = imap._command("IDLE")
    client._idle_tag = tag
    quiet = True
    while True:
        resp = imap._get_response()
        if resp is None:
            return quiet  # the continuation: IDLE is on
        if imap.tagged_commands.get(tag):
            typ, data = imap.tagged_commands.pop(tag)
            raise IMAPClientError(f"IDLE refused: {typ} {data}")
        quiet = False


def _wait_readable(client: IMAPClient, stop: threading.Event, seconds: float) -> bool:
    """True as soon as the server has sent something; False on timeout or ``stop``."""
    deadline = time.monotonic() + seconds
    sock = client.socket()
    while not stop.is_set():
        if _buffered(client, sock):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([sock], [], [], min(_STOP_CHECK, left))
        if ready:
            return True
    return False


def _buffered(client: IMAPClient, sock: socket.socket) -> bool:
    """Whether bytes already wait in TLS or imaplib's read buffer (select cannot see them)."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    # imaplib's buffered reader (private): a reply that arrived together with IDLE's
    # continuation line sits here, not on the socket.
    peek = getattr(getattr(client._imap, "file", None), "peek", None)
    if peek is None:
        return False
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        return bool(peek(1))
    except (BlockingIOError, ssl.SSLWantReadError, InterruptedError):
        return False
    finally:
        sock.settimeout(timeout)


def _human(delta: timedelta) -> str:
    s = int(delta.total_seconds())
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class _Progress:
    """Progress of one catch-up: log lines for a backlog, a rich bar on a terminal."""

    def __init__(self, name: str, label: str, total: int, bar: bool):
        self._name, self._label, self._total = name, label, total
        self._done = self._new = 0
        self._started = self._logged = time.monotonic()
        self._backlog = bar or total > 1
        self._bar: Any = None
        if bar:
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(f"{name}: {label}", total=total)
        if total > 1:
            log.info("mailbox %s: %s: %d emails to take in", name, label, total)

    def advance(self, n: int, new: int) -> None:
        self._done += n
        self._new += new
        if self._bar is not None:
            self._bar.update(self._task, advance=n)
        now = time.monotonic()
        if self._total > 1 and now - self._logged >= _PROGRESS_EVERY and self._done < self._total:
            self._logged = now
            log.info(
                "mailbox %s: %s: %d/%d (%d%%), %.0f emails/s",
                self._name, self._label, self._done, self._total,
                100 * self._done // self._total, self._done / max(now - self._started, 1e-6),
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        took = time.monotonic() - self._started
        log.info(
            "mailbox %s: %s: %d emails handled (%d new, %d already stored) in %.1fs",
            self._name, self._label, self._done, self._new, self._done - self._new, took,
        )
