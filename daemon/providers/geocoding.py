"""Geocoding a lead's property without ever stalling the pipeline.

The inline call within a budget, the deferred ``provider_jobs`` rows (kind ``geocode``) and
their runner, the quota and the updates sent to destinations are every provider kind's
(``daemon.providers.asking``). What is geocoding's own: the question is the property's
address on one line (``one_line``), its cache key the address normalized
(``address_key``), the cache is ``storage.geocodes``, and the answer goes onto the
property (latitude, longitude, county, quality, provider) — for a "no match", nothing.

With no provider configured (``geocoder.provider``), ``from_settings`` returns ``None``
and nothing here runs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from daemon.lead import Geocode, Lead
from daemon.providers.asking import Asking, Done, Inline, Rows, Words
from daemon.providers.base import Geocoder, address_key
from daemon.providers.registry import build_geocoder
from storage import geocodes

__all__ = ["KIND", "Done", "Geocoding", "Inline"]

KIND = "geocode"


class Geocoding(Asking[Geocode]):
    """The configured geocoder, asked inline within a budget or later from rows."""

    kind: ClassVar[str] = KIND
    words: ClassVar[Words] = Words("Geocoder", "geocoding", "geocoded", "without geocodes",
                                   "geocoder", "geocoder.api_key / user_agent")
    rows: ClassVar[Rows] = geocodes
    build = staticmethod(build_geocoder)
    key = staticmethod(address_key)

    @property
    def geocoder(self) -> Geocoder:
        return self.client

    def onto(self, lead: Lead, answer: Geocode) -> Lead:
        return replace(lead, property=lead.property.with_geocode(answer))
