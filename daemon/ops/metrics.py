"""Prometheus metrics: ``GET /metrics``.

Counters and histograms count what this process did, fed by hooks at the places where
things happen: the Worker's ``on_processed`` (emails, leads, dead letters, drift warnings,
arrival → routed), the dispatcher's ``on_sent`` (deliveries), the router's ``on_claim``
(offer → claim) and the webhook endpoint (requests). Gauges about shared state (the
outbox, open dead letters) are read from the database at scrape time, so every replica
reports the same values for them.

Each ``Metrics`` has its own ``CollectorRegistry``: two apps in one process (tests) never
share counts, and nothing of ours lands in prometheus-client's global registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from daemon.errors import StorageError
from daemon.lead import UNMATCHED, DeadLetter, Lead
from daemon.reading.parsing import is_drift_warning
from storage import dead_letters, outbox
from storage.db import Database

if TYPE_CHECKING:
    from daemon.delivery.dispatch import Sent
    from daemon.pipeline import Processed
    from daemon.routing.assign import ClaimResult

log = logging.getLogger(__name__)

#: arrival → routed: seconds for a healthy daemon, minutes for a backlog
ROUTE_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
#: offer → claim: agents answer in seconds to minutes (the claim timeout is 5 min by default)
CLAIM_BUCKETS = (5, 10, 20, 30, 60, 120, 180, 300, 600, 1800)


def dead_letter_source(dead: DeadLetter) -> str:
    """The source a dead letter counts against: its rule's, or ``unknown`` when none matched."""
    return dead.rule.split(" v")[0] if dead.rule else UNMATCHED


class Metrics:
    """The daemon's metrics in their own registry; the hooks never raise."""

    def __init__(self, db: Database | None = None, *,
                 clock: Callable[[], datetime] | None = None):
        self.clock = clock or (lambda: datetime.now(UTC))
        self.registry = CollectorRegistry()
        r = self.registry
        self.emails = Counter("leadpipe_emails_received", "Inbound emails and webhook bodies "
                              "taken through the pipeline, by origin (imap, directory, cli, webhook)",
                              ["origin"], registry=r)
        self.leads = Counter("leadpipe_leads", "Leads stored, by source and tier",
                             ["source", "tier"], registry=r)
        self.dead_letters = Counter("leadpipe_dead_letters", "Dead letters, by source and reason",
                                    ["source", "reason"], registry=r)
        self.drift = Counter("leadpipe_drift_warnings", "Template-drift warnings on stored "
                             "leads, by source", ["source"], registry=r)
        self.deliveries = Counter("leadpipe_deliveries", "Delivery attempts, by notifier and "
                                  "outcome (delivered, retry, dead)", ["notifier", "outcome"],
                                  registry=r)
        self.claims = Counter("leadpipe_claims", "Claim clicks, by verdict (won, taken, "
                              "not_an_agent, no_such_lead)", ["verdict"], registry=r)
        self.webhooks = Counter("leadpipe_webhook_requests", "Requests to POST /webhooks/{source}, "
                                "by source and HTTP status", ["source", "status"], registry=r)
        self.route_seconds = Histogram(
            "leadpipe_arrival_to_routed_seconds",
            "From an email's arrival (IMAP INTERNALDATE, file time, webhook POST) to its lead "
            "stored and routed", buckets=ROUTE_BUCKETS, registry=r)
        self.claim_seconds = Histogram(
            "leadpipe_offer_to_claim_seconds", "From a hot lead's offer in Slack to its claim",
            buckets=CLAIM_BUCKETS, registry=r)
        if db is not None:
            r.register(_DatabaseGauges(db, self.clock))

    # -- hooks ---------------------------------------------------------------------------

    def processed(self, result: Processed) -> None:
        """The Worker's ``on_processed``: one stored email went through the pipeline."""
        try:
            self.emails.labels(result.origin or "unknown").inc()
            o = result.outcome
            if isinstance(o, Lead):
                self.leads.labels(o.source, o.tier).inc()
                drift = sum(1 for w in o.warnings if is_drift_warning(w))
                if drift:
                    self.drift.labels(o.source).inc(drift)
                if result.arrived_at is not None:
                    waited = (self.clock() - result.arrived_at).total_seconds()
                    self.route_seconds.observe(max(0.0, waited))
            elif isinstance(o, DeadLetter):
                self.dead_letters.labels(dead_letter_source(o), o.reason.value).inc()
        except Exception:  # isolation boundary: counting must never fail the email
            log.exception("metrics: counting a processed email failed")

    def sent(self, sent: Sent) -> None:
        """The dispatcher's ``on_sent``: one delivery attempt's fate."""
        self.deliveries.labels(sent.notifier, sent.fate).inc()

    def claimed(self, result: ClaimResult) -> None:
        """The router's ``on_claim``: one Claim click settled."""
        self.claims.labels(result.verdict).inc()
        if result.verdict == "won" and result.seconds is not None:
            self.claim_seconds.observe(result.seconds)

    def webhook(self, source: str, status: int) -> None:
        self.webhooks.labels(source, str(status)).inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


class _DatabaseGauges(Collector):
    """Gauges computed from the database at each scrape."""

    def __init__(self, db: Database, clock: Callable[[], datetime]):
        self.db = db
        self.clock = clock

    def describe(self) -> list[Metric]:
        return []  # computed per scrape; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("leadpipe_database_up", "1 when the database answered this scrape")
        try:
            with self.db.session() as s:
                counts = outbox.count_by_status(s)
                due = outbox.next_due(s)
                open_dead = dead_letters.count_open(s)
        except (StorageError, SQLAlchemyError) as exc:
            log.warning("metrics: the database did not answer: %s", str(exc).splitlines()[0])
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("leadpipe_outbox_depth", "Outbox rows waiting to be sent "
                                  "(pending, or being sent)")
        depth.add_metric([], sum(counts.get(k, 0) for k in outbox.WAITING))
        yield depth
        dead = GaugeMetricFamily("leadpipe_outbox_dead", "Outbox rows that gave up (dead deliveries)")
        dead.add_metric([], counts.get("dead", 0))
        yield dead
        now = self.clock()
        age = GaugeMetricFamily("leadpipe_outbox_oldest_due_age_seconds",
                                "How long the oldest outbox row due for sending has waited "
                                "(0 when none is due)")
        age.add_metric([], max(0.0, (now - due).total_seconds()) if due is not None else 0.0)
        yield age
        dl = GaugeMetricFamily("leadpipe_dead_letters_open", "Dead letters not yet replayed")
        dl.add_metric([], open_dead)
        yield dl


def metrics_router(metrics: Metrics) -> APIRouter:
    """``GET /metrics`` in Prometheus text format."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def scrape() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
