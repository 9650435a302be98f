"""Enriching a lead's person (company, job title, public profiles) without ever stalling
the pipeline.

The inline call within a budget, the deferred ``provider_jobs`` rows (kind ``enrichment``)
and their runner, the quota and the updates sent to destinations are every provider
kind's (``daemon.providers.asking``). What is enrichment's own: the question is the lead's
email (``email_of``; nothing else about the person is sent), its cache key a hash of it
(``email_key``: the cache keeps no email), the cache is ``storage.enrichments``, and the
answer goes onto ``Lead.enrichment`` — never onto the name, email or phone. A "no match"
is cached and leaves the lead as it is.

With no provider configured (``enrichment.provider``), ``from_settings`` returns ``None``
and nothing here runs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from daemon.lead import Enrichment, Lead
from daemon.providers.asking import Asking, Rows, Words
from daemon.providers.base import email_key
from daemon.providers.registry import build_enricher
from storage import enrichments

KIND = "enrichment"


class Enriching(Asking[Enrichment]):
    """The configured person enricher, asked inline within a budget or later from rows."""

    kind: ClassVar[str] = KIND
    words: ClassVar[Words] = Words(
        "Enrichment provider", "enriching", "enriched", "without enrichment", "enrichment",
        "enrichment.api_key and the provider account's credits")
    rows: ClassVar[Rows] = enrichments
    build = staticmethod(build_enricher)
    key = staticmethod(email_key)

    def onto(self, lead: Lead, answer: Enrichment) -> Lead:
        return replace(lead, enrichment=answer) if answer.found else lead
