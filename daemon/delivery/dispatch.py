"""The dispatcher: sends due outbox rows through their notifiers, and schedules retries.

Each pass leases due rows in a short transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so replicas share the queue), calls each row's notifier with no database lock
held, then records the attempt (time, status code, latency, the first 2 KB of the answer)
and the row's fate in another short transaction:

- delivered → ``delivered``, with what the notifier returned kept on the row;
- transient failure → ``pending`` again at now + a backoff drawn with full jitter from
  ``[0, min(cap, base · 2^(attempts-1))]`` — or exactly at the server's ``Retry-After``,
  which wins;
- permanent failure, or ``max_attempts`` reached → ``dead``, and an alert.

Retries are rows, never sleeps: a dispatcher that restarts picks up what is due.

One person at a time: for a notifier with ``per_person`` (HubSpot), a row waits —
given back unattempted, ``PERSON_WAIT`` later — while a row of the same action for an
earlier lead of the same person (same phone or email) is still pending or being sent, on
this replica or another; then it gets what those rows returned (``Action.person``: the
contact already made), so two leads of one person inside a CRM's search lag make one
contact.

Pacing: a notifier with ``rate_limits`` gets a ``Pacer`` (daemon/delivery/pacing.py); ``_send``
waits for the action's turn right before the call, so a burst is spread out, never
rejected. A row that would wait longer than half its lease is given back unattempted
(``outbox.release``), and a row whose lease is running short is renewed before the call,
so a slow batch never lets a second dispatcher take a row that is still being sent. A 429
with ``Retry-After`` holds the whole notifier until then (its rows stay in the queue).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import OperationalError

from daemon.config import Settings, locate_notifier_error
from daemon.delivery.alerts import Alerts
from daemon.delivery.pacing import Pacer
from daemon.errors import ConfigError, DeliveryError, PermanentDeliveryError, StorageError
from daemon.logs import redact
from notifiers import Notifier, notifier_class
from notifiers.base import Action, Outcome
from notifiers.slack import ALERT, Slack
from storage import leads, outbox
from storage.db import Database
from storage.outbox import Delivery

log = logging.getLogger(__name__)

#: how soon a row of a ``per_person`` notifier looks again while the same person's earlier
#: lead still has a row of the same action waiting (it goes first)
PERSON_WAIT = timedelta(seconds=2)


@dataclass(frozen=True)
class Sent:
    """What one pass did with one row: ``delivered``, ``retry`` or ``dead``; or, without an
    attempt, ``deferred`` (given back to wait for its rate limit) or ``lost`` (its lease ran
    out and another dispatcher has it)."""

    delivery_id: int
    notifier: str
    action: str
    fate: str
    attempt: int
    next_attempt_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; ``Retry-After`` wins."""

    max_attempts: int = 8
    base: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(minutes=10)

    def next_attempt(self, attempts: int, now: datetime, retry_after: datetime | None,
                     rng: random.Random) -> datetime:
        if retry_after is not None:
            return max(retry_after, now)
        ceiling = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** max(0, attempts - 1))
        return now + timedelta(seconds=rng.uniform(0, ceiling))


def build_notifiers(settings: Settings) -> dict[str, Notifier]:
    """The notifiers the configuration asks for, by name. Slack comes from the ``slack:``
    section when it has a bot token; each ``notifiers:`` entry names its type (and is
    named for it, unless it gives a ``name``). An unknown type is a ``ConfigError`` listing
    the valid ones; so is a bad key of a notifier, or two entries with one name."""
    timeout = settings.delivery.timeout.total_seconds()
    built: dict[str, Notifier] = {}
    if settings.slack.bot_token:
        built[Slack.name] = Slack.from_config({**settings.slack.model_dump(), "timeout": timeout,
                                               "region": settings.default_region})
    for i, (name, cls, entry) in enumerate(_entries(settings, taken=set(built))):
        # delivery.timeout unless the entry gives its own; the lease is for checks only
        options = {"timeout": timeout, **entry, "lease": settings.delivery.lease}
        try:
            built[name] = cls.from_config(options)
        except ConfigError as exc:  # the notifier's check knows no file: name its line
            raise locate_notifier_error(settings, i, exc) from exc
    return built


def lead_destinations(settings: Settings) -> dict[str, type[Notifier]]:
    """The ``notifiers:`` entries every routed lead goes to (the CRMs, webhooks), by name."""
    return {name: cls for name, cls, _ in _entries(settings, taken={Slack.name})
            if cls.name != Slack.name}


def _entries(settings: Settings, taken: set[str]) -> list[tuple[str, type[Notifier], dict[str, Any]]]:
    entries = []
    seen = set(taken)
    for i, entry in enumerate(settings.notifiers):
        try:
            cls = notifier_class(entry.type)
        except ConfigError as exc:
            problem = str(exc).removeprefix("notifiers: ")
            raise locate_notifier_error(settings, i, ConfigError(problem, key="type", problem=problem)) from exc
        options = entry.model_dump()
        name = str(options.get("name") or cls.name)
        if name in seen:
            problem = f"two notifiers are named {name!r}; give each a different `name:`"
            raise locate_notifier_error(settings, i, ConfigError(
                problem, key="name" if options.get("name") else "type", problem=problem))
        seen.add(name)
        entries.append((name, cls, options))
    return entries


class Dispatcher:
    """Sends due outbox rows. ``notifiers`` maps a row's notifier name to the notifier."""

    def __init__(
        self,
        db: Database,
        notifiers: Mapping[str, Notifier],
        *,
        policy: RetryPolicy | None = None,
        lease: timedelta = timedelta(seconds=60),
        alerts: Alerts | None = None,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ):
        self.db = db
        self.notifiers = dict(notifiers)
        self.policy = policy or RetryPolicy()
        self.lease = lease
        self.alerts = alerts
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rng = rng or random.Random()
        #: per process: replicas sharing a CRM key must share its rate_limit out
        self.pacers = {name: Pacer(n.rate_limits) for name, n in self.notifiers.items()
                       if n.rate_limits}
        #: paced notifiers answered 429 with Retry-After: no calls to them until then
        self.held: dict[str, datetime] = {}
        #: told of every attempt's result (the metrics); set by the Service
        self.on_sent: Callable[[Sent], None] | None = None

    def run_due(self, limit: int = 20) -> list[Sent]:
        """One pass: lease up to ``limit`` due rows and attempt each once."""
        now = self.clock()
        ready = [n for n in self.notifiers if self.held.get(n, now) <= now]
        if not ready:
            return []
        try:
            with self.db.session() as s:
                due = outbox.claim_due(s, now=now, lease_until=now + self.lease, limit=limit,
                                       notifiers=ready)
        except OperationalError as exc:
            raise StorageError(f"cannot reach the database: {exc.orig or exc}") from exc
        return [self._send(d) for d in due]

    def drain(self, limit: int = 1000) -> list[Sent]:
        """Passes until nothing is due now (rows rescheduled later stay for later)."""
        sent: list[Sent] = []
        while len(sent) < limit and (batch := self.run_due()):
            sent.extend(batch)
        return sent

    def run(self, stop: threading.Event, wake: threading.Event, idle: float = 1.0) -> None:
        """Loop until ``stop``: a pass whenever ``wake`` is set, or every ``idle`` seconds."""
        while not stop.is_set():
            wake.clear()
            try:
                if self.run_due():
                    continue
            except StorageError as exc:
                log.error("dispatcher: %s; retrying in %.0fs", exc, idle)
            except Exception:  # isolation boundary: the dispatcher loop outlives any failure
                log.exception("dispatcher pass failed; retrying in %.0fs", idle)
            wake.wait(self._sleep(idle))

    def _sleep(self, idle: float) -> float:
        try:
            with self.db.session() as s:
                due = outbox.next_due(s)
        except Exception:  # isolation boundary: a failed peek just means the usual idle wait
            return idle
        if due is None:
            return idle
        now = self.clock()
        wait = min(idle, max(0.0, (due - now).total_seconds()))
        holds = [h for h in self.held.values() if h > now]
        if wait == 0 and holds:
            # what is due belongs to a notifier held until its Retry-After: don't spin
            wait = min(idle, (min(holds) - now).total_seconds())
        return wait

    # -- one row ---------------------------------------------------------------------

    def _send(self, d: Delivery) -> Sent:
        notifier = self.notifiers[d.notifier]
        held = self.held.get(d.notifier)
        if held is not None and held > self.clock():
            return self._give_back(d, held, "held until its Retry-After")
        person: tuple[Mapping[str, Any], ...] = ()
        if getattr(notifier, "per_person", False) and d.lead_id is not None:
            with self.db.session() as s:
                theirs = outbox.same_person(s, d.lead_id, d.notifier, d.action)
            if theirs.waiting is not None:
                return self._give_back(d, self.clock() + PERSON_WAIT,
                                       f"waiting for delivery #{theirs.waiting} of the same "
                                       "person's earlier lead")
            person = theirs.results
        pacer = self.pacers.get(d.notifier)
        if pacer is not None:
            cost = notifier.cost(d.action)
            budget = (d.next_attempt_at - self.clock()).total_seconds() / 2
            if not pacer.acquire(cost, max_wait=max(0.0, budget)):
                later = self.clock() + timedelta(seconds=pacer.next_free(cost))
                return self._give_back(d, later, "waiting for its rate limit")
        if not self._hold_lease(d):
            return Sent(d.id, d.notifier, d.action, "lost", d.attempts)
        with self.db.session() as s:
            lead = leads.get(s, d.lead_id) if d.lead_id is not None else None
            earlier = outbox.earlier_results(s, d.lead_id, d.notifier)
            tried = d.attempts == 1 and outbox.was_attempted(s, d.id)
        action = Action(d.action, d.payload, d.idempotency_key, d.attempts, earlier,
                        since=d.created_at, person=person, tried_before=tried)
        started = time.perf_counter()
        try:
            outcome = notifier.deliver(lead, action)
        except DeliveryError as exc:
            outcome = _from_error(exc)
        except Exception as exc:  # isolation boundary: one delivery's bug is its retry
            log.exception("delivery #%s (%s %s) raised", d.id, d.notifier, d.action)
            outcome = Outcome.retry(f"{type(exc).__name__}: {exc}")
        latency_ms = (time.perf_counter() - started) * 1000
        return self._record(d, outcome, latency_ms)

    def _hold_lease(self, d: Delivery) -> bool:
        """Renew the lease when less than 3/4 of it is left (a long batch, a long wait),
        so the call starts with a whole lease; False when it was lost already."""
        now = self.clock()
        if d.next_attempt_at - now >= self.lease * 0.75:
            return True
        with self.db.session() as s:
            kept = outbox.renew(s, d.id, d.attempts, until=now + self.lease)
        if not kept:
            log.warning("delivery #%s: its lease ran out before it was sent; another "
                        "dispatcher has it", d.id)
        return kept

    def _give_back(self, d: Delivery, at: datetime, why: str) -> Sent:
        with self.db.session() as s:
            outbox.release(s, d.id, d.attempts, at=at)
        log.debug("delivery #%s (%s %s) %s; due again at %s", d.id, d.notifier, d.action, why, at)
        return Sent(d.id, d.notifier, d.action, "deferred", d.attempts - 1, at)

    def _record(self, d: Delivery, outcome: Outcome, latency_ms: float) -> Sent:
        now = self.clock()
        fate: str = outcome.kind
        next_at: datetime | None = None
        if outcome.status_code == 429 and outcome.retry_at and d.notifier in self.pacers:
            # the CRM's limit is per key: every call to it would be refused until then
            self.held[d.notifier] = max(outcome.retry_at, self.held.get(d.notifier, now))
        if (fate == "retry" and d.attempts >= self.policy.max_attempts) or fate == "failed":
            fate = "dead"
        elif fate == "retry":
            next_at = self.policy.next_attempt(d.attempts, now, outcome.retry_at, self.rng)
        with self.db.session() as s:
            outbox.record_attempt(s, d.id, at=now, outcome=fate, status_code=outcome.status_code,
                                  latency_ms=latency_ms, response=outcome.response,
                                  error=outcome.error)
            current = outbox.finish(s, d.id, d.attempts, status=fate if fate != "retry" else "pending",
                                    at=now, next_attempt_at=next_at, error=outcome.error,
                                    result=outcome.result)
            if fate == "dead" and current:
                self._alert_dead(s, d, outcome)
            if fate == "delivered" and outcome.result.get("ignored") and self.alerts is not None:
                # e.g. FUB's archived lead flow: delivered, yet the lead is not in the CRM
                what = outcome.result.get("source") or d.action
                self.alerts.within(s, f"{outcome.result['ignored']} — later leads of that source "
                                      "are dropped there too until it is restored",
                                   key=f"ignored:{d.notifier}:{what}")
        if fate == "delivered":
            log.info("delivery #%s %s %s (lead #%s) delivered in %.0f ms", d.id, d.notifier,
                     d.action, d.lead_id, latency_ms)
        else:
            log.warning("delivery #%s %s %s (lead #%s) attempt %d: %s%s", d.id, d.notifier,
                        d.action, d.lead_id, d.attempts, redact(outcome.error),
                        f"; next at {next_at:%H:%M:%S}" if next_at else "; dead")
        sent = Sent(d.id, d.notifier, d.action, fate, d.attempts, next_at, outcome.error)
        if self.on_sent is not None:
            self.on_sent(sent)
        return sent

    def _alert_dead(self, s: Any, d: Delivery, outcome: Outcome) -> None:
        if self.alerts is None:
            return
        if d.notifier == Slack.name and d.action == ALERT:
            log.error("an alert could not be posted to Slack either: %s", redact(d.payload.get("text")))
            return
        lead = f" for lead #{d.lead_id}" if d.lead_id is not None else ""
        self.alerts.within(s, f"Delivery #{d.id} ({d.notifier} {d.action}{lead}) is dead after "
                              f"{d.attempts} attempts: {outcome.error}", key=f"dead_delivery:{d.id}:{d.attempts}")


def _from_error(exc: DeliveryError) -> Outcome:
    if isinstance(exc, PermanentDeliveryError):
        return Outcome.failed(str(exc), status_code=exc.status_code, response=exc.response)
    return Outcome.retry(str(exc), retry_at=exc.retry_after, status_code=exc.status_code,
                         response=exc.response)
