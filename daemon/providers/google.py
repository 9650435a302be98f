"""Google's Geocoding API: needs a key (``api_key_file``), priced per request.

``GET /maps/api/geocode/json?address=…&key=…`` answers ``{"status", "results": [{
"formatted_address", "geometry": {"location": {"lat", "lng"}, "location_type"},
"address_components": [{"long_name", "short_name", "types"}]}], "error_message"}``.
``status``: ``OK``; ``ZERO_RESULTS`` (no match — an answer); ``OVER_QUERY_LIMIT`` and
``UNKNOWN_ERROR`` (transient); ``OVER_DAILY_LIMIT`` (billing or the project's daily cap:
transient, not retried for an hour); ``REQUEST_DENIED`` (a bad or restricted key:
permanent); ``INVALID_REQUEST`` (nothing to look up: no match). The quality is
``geometry.location_type`` (``ROOFTOP``, ``RANGE_INTERPOLATED``, ``GEOMETRIC_CENTER``,
``APPROXIMATE``); the county is the ``administrative_area_level_2`` component. The key is
never named in an error: the path is shown without its query.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from daemon.config import ProviderSettings
from daemon.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from daemon.lead import Geocode, Lead
from daemon.providers.base import Published, one_line, user_agent
from notifiers.http import JsonApi, json_of

PATH = "/maps/api/geocode/json"


class Google:
    """The Google geocoder. Raises ``DeliveryError`` subclasses; never sleeps."""

    name: ClassVar[str] = "google"
    kind: ClassVar[str] = "geocode"
    published: ClassVar[Published] = Published(
        base_url="https://maps.googleapis.com", needs_key=True, rate=50.0,
        cost="US$5.00 per 1,000 requests up to 100,000 a month, US$4.00 per 1,000 above "
             "(Geocoding SKU); 3,000 queries per minute")

    def __init__(self, api_key: str, *, base_url: str | None = None, user_agent_: str | None = None,
                 timeout: float = 10.0):
        self.api_key = api_key
        self.api = JsonApi(self.name, base_url or self.published.base_url, timeout=timeout,
                           connect_timeout=min(timeout, 10.0),
                           headers={"User-Agent": user_agent_} if user_agent_ else None)

    @classmethod
    def from_config(cls, settings: ProviderSettings) -> Google:
        if not settings.api_key:
            raise ConfigError("geocoder.api_key: Google's Geocoding API needs a key; give "
                              "api_key_file (or api_key)", key="api_key", problem="required for google")
        return cls(settings.api_key, base_url=settings.base_url, user_agent_=user_agent(settings),
                   timeout=settings.timeout.total_seconds())

    def question(self, lead: Lead) -> str | None:
        return one_line(lead.property)

    def ask(self, question: str, *, timeout: float) -> Geocode:
        resp = self.api.call("GET", PATH, timeout=timeout, shown=PATH,
                             params={"address": question, "key": self.api_key})
        return parse(json_of(resp))

    def close(self) -> None:
        self.api.close()


def parse(data: dict[str, Any], now: datetime | None = None) -> Geocode:
    """Google's answer as one ``Geocode``, or the error its ``status`` means."""
    status = data.get("status")
    detail = f"google: {status}" + (f": {data['error_message']}" if data.get("error_message") else "")
    if status in ("ZERO_RESULTS", "INVALID_REQUEST"):
        return Geocode(Google.name, found=False)
    if status == "REQUEST_DENIED":
        raise PermanentDeliveryError(detail)
    if status == "OVER_DAILY_LIMIT":
        raise TransientDeliveryError(detail, retry_after=(now or datetime.now(UTC)) + timedelta(hours=1))
    if status != "OK":  # OVER_QUERY_LIMIT, UNKNOWN_ERROR, or an answer not from the API
        raise TransientDeliveryError(detail)
    results = [r for r in data.get("results") or () if isinstance(r, dict)]
    if not results:
        return Geocode(Google.name, found=False)
    first = results[0]
    geometry = first.get("geometry") or {}
    location = geometry.get("location") or {}
    try:
        lat, lon = float(location["lat"]), float(location["lng"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TransientDeliveryError("google: a result without geometry.location") from exc
    county = next((c.get("long_name") for c in first.get("address_components") or ()
                   if isinstance(c, dict) and "administrative_area_level_2" in (c.get("types") or ())),
                  None)
    return Geocode(Google.name, found=True, latitude=lat, longitude=lon, county=county,
                   quality=geometry.get("location_type"), matched_address=first.get("formatted_address"))
