"""The worker: runs the pipeline over stored emails and stores each outcome; and replay,
which runs a dead letter's email again with today's rules.

``Worker`` takes pending rows from ``inbound_emails``, runs ``parse_stored`` and stores the
outcome in the same transaction that marks the email done (and, with a router, routes the
lead), so a crash at any point leaves the email pending and it is simply processed again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import OperationalError

from daemon.errors import StorageError
from daemon.lead import DeadLetter, DeadLetterReason, Ignored, Lead, ParseOutcome, RawEmail
from daemon.logs import redact
from daemon.pipeline.engine import Engine
from daemon.pipeline.parse import parse_stored
from storage import dead_letters, inbound, leads
from storage.db import Database

if TYPE_CHECKING:
    from daemon.providers.asking import Asking, Inline
    from daemon.providers.enrichment import Enriching
    from daemon.providers.geocoding import Geocoding
    from daemon.routing.assign import Router

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Processed:
    """What the worker did with one stored email."""

    inbound_id: int
    outcome: ParseOutcome
    lead_id: int | None = None
    dead_letter_id: int | None = None
    #: where the email came from (``Origin``'s value) and when it arrived; set by the Worker
    origin: str | None = None
    arrived_at: datetime | None = None


class Worker:
    """Runs the pipeline over pending stored emails and stores each outcome."""

    def __init__(self, db: Database, engine: Callable[[], Engine],
                 on_processed: Callable[[Processed], None] | None = None,
                 router: Router | None = None, geocoding: Geocoding | None = None,
                 enrichment: Enriching | None = None):
        self.db = db
        self._engine = engine  # a callable, so reloaded rules take effect on the next email
        self.on_processed = on_processed
        #: routes each new lead in the transaction that stores it; None: leads stay ``new``
        self.router = router
        #: geocodes each new lead before it is stored, within its budget, or defers it
        #: (daemon/providers/geocoding.py); None: no geocoder configured
        self.geocoding = geocoding
        #: enriches each new lead's person the same way (daemon/providers/enrichment.py)
        self.enrichment = enrichment
        #: every provider asked about a new lead, in this order, each within its budget
        self.askers: list[Asking[Any]] = [a for a in (geocoding, enrichment) if a is not None]

    def run_pending(self, limit: int = 100, *, stop: Callable[[], bool] | None = None) -> list[Processed]:
        """Process up to ``limit`` pending emails, oldest first; between emails, return
        early once ``stop()`` is true (a shutdown finishes only the email in hand)."""
        done = []
        with self.db.session() as s:
            ids = inbound.claim_pending(s, limit)
        for inbound_id in ids:
            if stop is not None and stop():
                break
            result = self.process(inbound_id)
            if result is not None:
                done.append(result)
        return done

    def process(self, inbound_id: int) -> Processed | None:
        """Parse one stored email and store the outcome; ``None`` if another worker has it.

        Raises ``StorageError`` only when the database cannot be reached; any other
        failure to store this email's outcome makes it a dead letter, so one bad email can
        never be retried forever or stop the daemon.
        """
        engine = self._engine()
        raw: RawEmail | None = None
        parsed: ParseOutcome | None = None
        inlines: list[tuple[Asking[Any], Inline]] = []
        try:
            if self.db.is_sqlite or self.askers or engine.model is not None:
                # SQLite's one write lock is taken at BEGIN: parsing inside that
                # transaction held it nearly all the time under a backlog, and the
                # dispatcher (same lock) fell minutes behind. The stored bytes never
                # change, so parse first and only store under the lock. The providers
                # (geocoder, enricher) and a model endpoint are asked here too, outside
                # any transaction, within their budgets.
                with self.db.session() as s:
                    early = inbound.lock_one(s, inbound_id)
                if early is None:
                    return None
                parsed = parse_stored(early, engine)
                for asker in self.askers:
                    if isinstance(parsed, Lead):
                        inline = asker.inline(parsed)
                        inlines.append((asker, inline))
                        parsed = inline.lead
            with self.db.session() as s:
                raw = inbound.lock_one(s, inbound_id)
                if raw is None:
                    return None
                outcome = parsed if parsed is not None else parse_stored(raw, engine)
                result = store_outcome(s, inbound_id, raw, outcome, router=self.router)
                if result.lead_id is not None:
                    for asker, inline in inlines:
                        asker.stored(s, result.lead_id, inline)
        except OperationalError as exc:
            raise StorageError(f"cannot reach the database: {exc.orig or exc}") from exc
        except StorageError:
            raise
        except Exception as exc:  # isolation boundary: this email's outcome would not store or route
            log.exception("email #%s: storing its outcome failed", inbound_id)
            result = self._store_failure(inbound_id, exc)
        if raw is not None:
            result = dataclasses.replace(result, origin=raw.origin.value, arrived_at=raw.received_at)
        _log(result)
        if self.on_processed is not None:
            try:
                self.on_processed(result)
            except Exception:  # isolation boundary: a reporting hook must not undo the work
                log.exception("email #%s: the on_processed hook failed", inbound_id)
        return result

    def _store_failure(self, inbound_id: int, exc: Exception) -> Processed:
        dead = DeadLetter(
            DeadLetterReason.PARSER_ERROR,
            f"the outcome of this email could not be stored: {type(exc).__name__}: "
            f"{str(getattr(exc, 'orig', None) or exc).splitlines()[0][:300]}",
        )
        with self.db.session() as s:
            dl_id = dead_letters.insert(s, dead, inbound_email_id=inbound_id, source_hint=None)
            inbound.mark(s, inbound_id, "dead")
        return Processed(inbound_id, dead, dead_letter_id=dl_id)


def store_outcome(s: Any, inbound_id: int, raw: RawEmail, outcome: ParseOutcome,
                  router: Router | None = None) -> Processed:
    """Write the lead, dead letter or ignored mark for ``inbound_id`` in session ``s``.

    With a ``router``, a lead is routed (its round-robin turn taken, its outbox rows
    written) and a dead letter alerted in the same transaction: all of it commits with the
    email marked done, or none of it does.
    """
    if isinstance(outcome, Lead):
        lead_id = leads.insert(s, outcome, inbound_email_id=inbound_id)
        if router is not None:
            router.route(s, lead_id, outcome)
        inbound.mark(s, inbound_id, "done")
        return Processed(inbound_id, outcome, lead_id=lead_id)
    if isinstance(outcome, Ignored):
        inbound.mark(s, inbound_id, "ignored", ignored_reason=outcome.reason)
        return Processed(inbound_id, outcome)
    dl_id = dead_letters.insert(s, outcome, inbound_email_id=inbound_id, source_hint=outcome.source_hint)
    if router is not None:
        router.dead_letter(s, dl_id, outcome)
    inbound.mark(s, inbound_id, "dead")
    return Processed(inbound_id, outcome, dead_letter_id=dl_id)


def _log(result: Processed) -> None:
    o = result.outcome
    if isinstance(o, Lead):
        log.info("email #%s → lead #%s (%s, %s, score %s)", result.inbound_id, result.lead_id,
                 o.source, o.tier, o.score)
    elif isinstance(o, Ignored):
        log.info("email #%s ignored: %s", result.inbound_id, o.reason)
    else:
        log.warning("email #%s → dead letter #%s: %s: %s", result.inbound_id, result.dead_letter_id,
                    o.reason.value, redact(o.detail))


@dataclass(frozen=True)
class Replayed:
    """The result of replaying one dead letter against the current rules."""

    dead_letter_id: int
    outcome: ParseOutcome
    lead_id: int | None = None
    already_resolved: bool = False


def replay(db: Database, engine: Engine, dead_letter_id: int,
           router: Router | None = None) -> Replayed | None:
    """Re-run one dead letter's email through the pipeline with today's rules.

    A lead resolves the dead letter and links it; a second replay finds the lead that
    exists and creates no other. Nothing is deleted. ``None`` if there is no such id.
    """
    with db.session() as s:
        stored = dead_letters.get(s, dead_letter_id)
        if stored is None:
            return None
        existing = leads.by_inbound(s, stored.inbound_email_id)
        if existing is not None:
            if stored.status == "open":
                dead_letters.record_replay(s, dead_letter_id, resolved_lead_id=existing.id)
            return Replayed(dead_letter_id, existing.lead, existing.id, already_resolved=True)
        raw = inbound.get_raw(s, stored.inbound_email_id)
        assert raw is not None  # foreign key
        outcome = parse_stored(raw, engine)
        if isinstance(outcome, Lead):
            lead_id = leads.insert(s, outcome, inbound_email_id=stored.inbound_email_id)
            if router is not None:
                router.route(s, lead_id, outcome)
            inbound.mark(s, stored.inbound_email_id, "done")
            dead_letters.record_replay(s, dead_letter_id, resolved_lead_id=lead_id)
            log.info("dead letter #%s replayed → lead #%s", dead_letter_id, lead_id)
            return Replayed(dead_letter_id, outcome, lead_id)
        if isinstance(outcome, Ignored):
            inbound.mark(s, stored.inbound_email_id, "ignored", ignored_reason=outcome.reason)
            dead_letters.record_replay(s, dead_letter_id, resolved_lead_id=None, status="ignored")
            return Replayed(dead_letter_id, outcome)
        hint = outcome.source_hint
        dead_letters.update_reason(s, dead_letter_id, outcome, hint)
        dead_letters.record_replay(s, dead_letter_id, resolved_lead_id=None)
        return Replayed(dead_letter_id, outcome)
