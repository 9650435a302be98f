"""Asking a provider about a lead without ever stalling the pipeline: the shape every kind
of provider question shares (``geocoding``, ``enrichment``).

``Asking.inline`` runs in the worker, after parsing and before the transaction that stores
and routes the lead. It answers from the kind's cache (one answer per provider and
normalized question, a "no match" included) or asks the provider — but only when its
``Gate`` has a call free *right now*, no hold is set, and the daily quota (counted in the
database, ``storage.provider_jobs.reserve``) grants one; and then only within ``budget``.
Anything else — the provider is slow, answered 429, is over quota, is down, or the call
would have to wait — and the lead is routed at once on what is known, with a
``provider_jobs`` row (its ``kind``) written in the transaction that stores it (``stored``).

The runner (``run_due``, looped by ``run`` in its own thread, never the dispatcher's) takes
those rows when due: it paces itself on the same gate, asks with the longer ``timeout``,
and with the answer, in one transaction, caches it, writes it onto the stored lead, marks
the row done and queues each lead destination's update (``update_actions(kind)``, e.g. the
webhook's ``lead_update``) — for a destination that was already sent the lead; one still
waiting reads the lead fresh when it is sent. A failure is retried as a row: backoff with
full jitter, ``Retry-After`` wins, dead after ``max_attempts`` (alerted). Over quota, rows
wait for the next UTC day. A permanent error (a bad key, no credits left) holds the
provider for ``PERMANENT_HOLD`` and tells the tech channel (once an hour at most).

The tech channel hears once a day per provider when ``alert_at`` of the quota is used.

A kind is a small subclass (``Geocoding``, ``Enriching``) naming itself and its rows and
saying what is its own (see ``Asking``). With no provider configured, ``from_settings``
returns ``None`` and nothing here runs.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as day_start
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from sqlalchemy.orm import Session

from daemon.config import ProviderSettings
from daemon.delivery.alerts import Alerts
from daemon.delivery.dispatch import RetryPolicy
from daemon.errors import DeliveryError, PermanentDeliveryError
from daemon.lead import Lead
from daemon.logs import redact
from daemon.providers.base import Provider
from daemon.providers.gate import Gate
from notifiers import Notifier
from storage import leads, outbox, provider_jobs
from storage.db import Database
from storage.provider_jobs import Job

log = logging.getLogger(__name__)

#: a permanent error (a bad key, a blocked client) holds the provider this long
PERMANENT_HOLD = 900.0
#: the runner sleeps for its rate limit up to this long; a longer wait gives the rows back
PACE_WAIT = 2.0
#: requests per second when neither the configuration nor the provider says
DEFAULT_RATE = 5.0


@dataclass(frozen=True)
class Inline:
    """What the pipeline's inline look-up did: the lead (with the answer on it when there
    was one), whether a deferred look-up must be written with it, and why, for the log."""

    lead: Lead
    deferred: bool
    how: str


@dataclass(frozen=True)
class Done:
    """What one runner pass did with one row: ``done``, ``retry``, ``dead`` or, without an
    attempt, ``released`` (its provider held, over quota, or its rate limit far off)."""

    job_id: int
    lead_id: int
    fate: str
    error: str | None = None


class Answer(Protocol):
    """What every kind's answer has: whether the provider found anything."""

    @property
    def found(self) -> bool: ...


class Rows(Protocol):
    """A kind's own rows (``storage.geocodes``, ``storage.enrichments``): its answer cache,
    by provider and cache key, and the answer written onto the stored lead."""

    def cached(self, session: Session, provider: str, key: str, /) -> Any: ...

    def remember(self, session: Session, key: str, answer: Any, /, *, at: datetime) -> None: ...

    def apply(self, session: Session, lead_id: int, answer: Any, /) -> bool: ...


@dataclass(frozen=True)
class Words:
    """How a kind's alerts and logs name things: ``Geocoder census refused …`` (``noun``),
    ``Geocoding lead #1 … gave up`` (``doing``), ``lead #1 geocoded by census``
    (``done_as``), ``leads are routed without geocodes`` (``without``), ``Raise
    geocoder.daily_quota`` (``section``, the config section), ``Check geocoder.api_key``
    (``refused_hint``, what to check when the provider refuses calls)."""

    noun: str
    doing: str
    done_as: str
    without: str
    section: str
    refused_hint: str


A = TypeVar("A", bound=Answer)


class Asking(Generic[A]):
    """One configured provider of one kind, asked inline within a budget or later from rows.

    A kind names itself (``kind``: the ``provider_jobs`` kind, and what ``update_actions``
    is told changed; ``words``), its rows (``rows``), and says what is its own: ``build``
    (the configured provider, or ``None``), ``key`` (a question's cache key: the same
    person or address written another way is one key) and ``onto`` (the lead in hand
    with an answer on it; unchanged for a "no match")."""

    kind: ClassVar[str]
    words: ClassVar[Words]
    rows: ClassVar[Rows]

    def __init__(self, db: Database, provider: Provider[A], *, rate: float,
                 daily_quota: int | None = None, alert_at: float = 0.9,
                 budget: float = 1.5, timeout: float = 10.0, max_attempts: int = 12,
                 alerts: Alerts | None = None,
                 destinations: Mapping[str, type[Notifier]] | None = None,
                 policy: RetryPolicy | None = None, hold_base: float = 1.0,
                 hold_cap: float = 60.0,
                 clock: Callable[[], datetime] | None = None, rng: random.Random | None = None,
                 wake_dispatcher: Callable[[], None] | None = None):
        self.db = db
        self.client = provider
        self.provider = provider.name
        self.gate = Gate(rate, base=hold_base, cap=hold_cap, rng=rng)
        self.daily_quota = daily_quota
        self.alert_from = math.ceil(daily_quota * alert_at) if daily_quota else None
        self.budget = budget
        self.timeout = timeout
        self.policy = policy or RetryPolicy(max_attempts=max_attempts)
        self.alerts = alerts
        self.destinations = dict(destinations or {})
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rng = rng or random.Random()
        self.wake_dispatcher = wake_dispatcher or (lambda: None)
        #: rows claimed per runner pass, and how long their lease lasts
        self.batch = max(1, min(20, math.ceil(rate)))
        self.lease = timedelta(seconds=self.batch * (timeout + PACE_WAIT) + 30)
        #: told of every inline result (the worker's metrics, tests); optional
        self.on_inline: Callable[[Inline], None] | None = None

    # -- what each kind says for itself -----------------------------------------------------

    @staticmethod
    def build(settings: ProviderSettings) -> Provider[A] | None:
        raise NotImplementedError

    @staticmethod
    def key(question: str) -> str:
        raise NotImplementedError

    def onto(self, lead: Lead, answer: A) -> Lead:
        raise NotImplementedError

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def from_settings(cls, db: Database, settings: ProviderSettings, *, alerts: Alerts | None,
                      destinations: Mapping[str, type[Notifier]] | None = None,
                      wake_dispatcher: Callable[[], None] | None = None) -> Self | None:
        """What the kind's config section asks for; ``None`` with no provider. Raises
        ``ConfigError`` for an unknown provider or a key it needs."""
        provider = cls.build(settings)
        if provider is None:
            return None
        rate = settings.rate or provider.published.rate or DEFAULT_RATE
        return cls(db, provider, rate=rate, daily_quota=settings.daily_quota,
                   alert_at=settings.alert_at, budget=settings.budget.total_seconds(),
                   timeout=settings.timeout.total_seconds(), max_attempts=settings.max_attempts,
                   alerts=alerts, destinations=destinations, wake_dispatcher=wake_dispatcher)

    def close(self) -> None:
        self.client.close()

    # -- inline, in the pipeline -------------------------------------------------------

    def inline(self, lead: Lead) -> Inline:
        """The lead with the answer on it if it can be had now, within the budget; else the
        lead as it is, marked for a deferred look-up. Never raises."""
        try:
            result = self._inline(lead)
        except Exception:  # isolation boundary: a failed look-up never costs the lead
            log.exception("%s inline failed; the lead goes on without it", self.words.doing)
            result = Inline(lead, True, "error")
        if self.on_inline is not None:
            self.on_inline(result)
        return result

    def _inline(self, lead: Lead) -> Inline:
        question = self.client.question(lead)
        if question is None:
            return Inline(lead, False, "nothing to ask")
        key = self.key(question)
        with self.db.session() as s:
            known = self.rows.cached(s, self.provider, key)
        if known is not None:
            return Inline(self.onto(lead, known), False, "cache")
        if not self.gate.try_take():
            return Inline(lead, True, "held" if self.gate.held_for() else "rate limit")
        if not self._reserve():
            return Inline(lead, True, "over quota")
        try:
            answer = self.client.ask(question, timeout=self.budget)
        except DeliveryError as exc:
            self._failed(exc)
            return Inline(lead, True, f"asked: {exc}")
        self.gate.answered()
        with self.db.session() as s:
            self.rows.remember(s, key, answer, at=self.clock())
        return Inline(self.onto(lead, answer), False, "asked")

    def stored(self, s: Session, lead_id: int, inline: Inline) -> None:
        """In the transaction that inserted the lead: its deferred look-up, if it needs one."""
        if inline.deferred:
            provider_jobs.defer(s, lead_id, self.kind, self.provider, at=self.clock(),
                                new_lead=True)

    # -- the quota and the gate ----------------------------------------------------------

    def _reserve(self) -> bool:
        if self.daily_quota is None:
            return True  # nothing to count against: spare the write
        now = self.clock()
        day = now.date().isoformat()
        w = self.words
        with self.db.session() as s:
            got = provider_jobs.reserve(s, self.provider, day, quota=self.daily_quota,
                                        alert_from=self.alert_from, at=now)
            if got.alert and self.alerts is not None:
                self.alerts.within(
                    s, f"{w.noun} {self.provider}: {got.calls} of today's {self.daily_quota} "
                       f"calls used (UTC day {day}); past the quota, leads are routed "
                       f"{w.without} and looked up tomorrow. Raise {w.section}.daily_quota "
                       "if the provider allows more.", key=f"provider_quota:{self.provider}:{day}")
        return got.granted

    def _failed(self, exc: DeliveryError) -> None:
        """Hold the provider after a failed call: until its ``Retry-After``, else back off;
        a permanent error (a bad key) for ``PERMANENT_HOLD``, and the tech channel hears."""
        now = self.clock()
        w = self.words
        if isinstance(exc, PermanentDeliveryError):
            self.gate.hold(PERMANENT_HOLD)
            if self.alerts is not None:
                self.alerts(f"{w.noun} {self.provider} refused a call: {exc}. Leads are "
                            f"routed {w.without}; look-ups wait {PERMANENT_HOLD / 60:.0f} min "
                            f"and retry. Check {w.refused_hint}.",
                            key=f"provider_refused:{self.provider}:{now:%Y-%m-%dT%H}")
        elif exc.retry_after is not None:
            self.gate.hold((exc.retry_after - now).total_seconds())
        else:
            self.gate.hold_after_failure()
        log.warning("%s %s: %s; held for %.1fs", w.noun, self.provider, redact(str(exc)),
                    self.gate.held_for())

    # -- the deferred look-ups -----------------------------------------------------------

    def run_due(self, *, stop: Callable[[], bool] | None = None) -> list[Done]:
        """One pass: lease up to ``batch`` due rows and settle each (never while held)."""
        if self.gate.held_for() > 0:
            return []
        now = self.clock()
        with self.db.session() as s:
            due = provider_jobs.claim_jobs(s, self.kind, now=now, lease_until=now + self.lease,
                                           limit=self.batch)
        done: list[Done] = []
        for i, job in enumerate(due):
            outcome = self._settle(job, stop)
            done.append(outcome)
            if outcome.fate == "released":
                # the provider is held, over quota or far off its rate: the rest wait too
                at = _next_day(self.clock()) if outcome.error == "over quota" else None
                done += [self._release(j, outcome.error or "", at=at) for j in due[i + 1:]]
                break
        return done

    def drain(self, *, deadline: float | None = None) -> list[Done]:
        """Passes until no row is left that can be settled before ``deadline``
        (``time.monotonic()``), waiting out holds and retries due before it; with no
        deadline, until nothing is due now (for tests, benchmarks and ``run --once``)."""
        out: list[Done] = []
        while deadline is None or time.monotonic() < deadline:
            batch = self.run_due()
            out.extend(batch)
            if batch and any(d.fate != "released" for d in batch):
                continue
            with self.db.session() as s:
                due = provider_jobs.next_job_due(s, self.kind)
            if due is None:
                break
            wait = max(self.gate.wait(), (due - self.clock()).total_seconds(), 0.0)
            if wait > 0 and (deadline is None or time.monotonic() + wait > deadline):
                break  # the next row cannot be settled before the deadline
            time.sleep(min(0.5, max(0.01, wait)))
        return out

    def run(self, stop: threading.Event, wake: threading.Event | None = None,
            idle: float = 1.0) -> None:
        """Loop until ``stop``: a pass whenever rows are due, else wait ``idle`` seconds."""
        wake = wake or threading.Event()
        while not stop.is_set():
            wake.clear()
            try:
                batch = self.run_due(stop=stop.is_set)
                if batch and any(d.fate != "released" for d in batch):
                    continue
                wait = self._sleep(idle)
            except Exception:  # isolation boundary: the runner outlives any failure
                log.exception("the %s runner failed; retrying in %.0fs", self.kind, idle)
                wait = idle
            wake.wait(wait)

    def _sleep(self, idle: float) -> float:
        with self.db.session() as s:
            due = provider_jobs.next_job_due(s, self.kind)
        if due is None:
            return idle
        return min(idle, max(self.gate.wait(), (due - self.clock()).total_seconds(), 0.01))

    def _settle(self, job: Job, stop: Callable[[], bool] | None) -> Done:
        known = None
        with self.db.session() as s:
            stored = leads.get(s, job.lead_id)
            question = self.client.question(stored.lead) if stored is not None else None
            if question is not None:
                key = self.key(question)
                known = self.rows.cached(s, self.provider, key)
        if question is None:
            return self._finish(job, None, None)
        if known is not None:
            return self._finish(job, known, None)
        while not self.gate.try_take():
            wait = self.gate.wait()
            if wait > PACE_WAIT or (stop is not None and stop()):
                return self._release(job, "held" if self.gate.held_for() else "rate limit")
            time.sleep(wait)
        if not self._reserve():
            return self._release(job, "over quota", at=_next_day(self.clock()))
        try:
            answer = self.client.ask(question, timeout=self.timeout)
        except DeliveryError as exc:
            self._failed(exc)
            return self._retry(job, exc)
        self.gate.answered()
        return self._finish(job, answer, key)

    def _finish(self, job: Job, answer: A | None, key: str | None) -> Done:
        """One transaction: the answer cached, written onto the lead, the row done, and
        each destination that had the lead already told of the change."""
        now = self.clock()
        told = False
        with self.db.session() as s:
            if answer is not None and key is not None:
                self.rows.remember(s, key, answer, at=now)
            if not provider_jobs.finish_job(s, job.id, job.attempts, status="done", at=now):
                return Done(job.id, job.lead_id, "lost")
            if answer is not None and self.rows.apply(s, job.lead_id, answer):
                told = self._update_destinations(s, job.lead_id, now)
        if told:
            self.wake_dispatcher()
        log.info("lead #%s %s by %s%s", job.lead_id, self.words.done_as, self.provider,
                 "" if answer is None or answer.found else " (no match)")
        return Done(job.id, job.lead_id, "done")

    def _update_destinations(self, s: Session, lead_id: int, now: datetime) -> bool:
        told = False
        for name, cls in self.destinations.items():
            update_actions = getattr(cls, "update_actions", None)
            if update_actions is None:
                continue  # this destination cannot take an update of a lead it has
            payload = outbox.first_sent(s, lead_id, name)
            if payload is None:
                continue  # not sent yet: its waiting row reads the lead, answer and all
            for action in update_actions(self.kind):
                outbox.enqueue(s, notifier=name, action=action, lead_id=lead_id, payload=payload,
                               idempotency_key=outbox.key(lead_id, name, action, self.kind), at=now)
                told = True
        return told

    def _retry(self, job: Job, exc: DeliveryError) -> Done:
        now = self.clock()
        error = str(exc)[:2000]
        dead = job.attempts >= self.policy.max_attempts
        next_at = None if dead else self.policy.next_attempt(job.attempts, now, exc.retry_after,
                                                              self.rng)
        with self.db.session() as s:
            kept = provider_jobs.finish_job(s, job.id, job.attempts,
                                            status="dead" if dead else "pending", at=now,
                                            next_attempt_at=next_at, error=error)
            if dead and kept and self.alerts is not None:
                self.alerts.within(s, f"{self.words.doing.capitalize()} lead #{job.lead_id} "
                                      f"({self.provider}) gave up after {job.attempts} attempts: "
                                      f"{error}", key=f"{self.kind}_dead:{job.id}")
        return Done(job.id, job.lead_id, "dead" if dead else "retry", error)

    def _release(self, job: Job, why: str, at: datetime | None = None) -> Done:
        now = self.clock()
        when = at or now + timedelta(seconds=max(self.gate.wait(), 0.05))
        with self.db.session() as s:
            provider_jobs.release_job(s, job.id, job.attempts, at=when)
        return Done(job.id, job.lead_id, "released", why)


def _next_day(now: datetime) -> datetime:
    """Midnight UTC after ``now``: when the daily quota counts from nothing again."""
    return datetime.combine(now.date() + timedelta(days=1), day_start(0), tzinfo=UTC)
