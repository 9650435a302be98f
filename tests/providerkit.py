"""Shared pieces of the provider tests (geocoding, enrichment): what the worker does with
one lead (ask inline, then store and route it with its deferral), and reading back the
stored lead, the deferred rows and the alerts."""

from __future__ import annotations

from typing import Any

from daemon.lead import Lead
from daemon.providers.asking import Asking, Inline
from daemon.routing.assign import Router
from storage import leads, outbox, provider_jobs
from storage.db import Database


def store(db: Database, asker: Asking[Any], lead: Lead,
          router: Router | None = None) -> tuple[int, Inline]:
    """What the worker does: inline first, then store (and route) with its deferral."""
    inline = asker.inline(lead)
    with db.session() as s:
        lead_id = leads.insert(s, inline.lead, inbound_email_id=None)
        if router is not None:
            router.route(s, lead_id, inline.lead)
        asker.stored(s, lead_id, inline)
    return lead_id, inline


def stored(db: Database, lead_id: int) -> Lead:
    with db.session() as s:
        found = leads.get(s, lead_id)
    assert found is not None
    return found.lead


def jobs(db: Database, kind: str) -> list[provider_jobs.Job]:
    with db.session() as s:
        return provider_jobs.jobs(s, kind=kind)


def alerts_sent(db: Database, prefix: str) -> list[str]:
    """The texts of the alerts whose key starts with ``prefix``, oldest first."""
    with db.session() as s:
        rows = outbox.listing(s, notifier="slack", limit=None)
    return [r.payload["text"] for r in rows if r.idempotency_key.startswith(f"alert:{prefix}")]
