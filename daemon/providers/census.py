"""The US Census Bureau's geocoder: free, no key, US addresses only.

``GET /geocoder/geographies/onelineaddress?address=…&benchmark=Public_AR_Current&vintage=
Current_Current&format=json`` answers ``{"result": {"input": …, "addressMatches": [{
"matchedAddress", "coordinates": {"x": lon, "y": lat}, "tigerLine", "addressComponents",
"geographies": {"Counties": [{"NAME": "Miami-Dade County", "GEOID", …}], …}}]}}``. No match
is an empty ``addressMatches``. The quality is ``Match`` for one match and ``Tie`` for
several (the words of the Census batch geocoder), the first being taken. The Census
publishes no request rate; leadpipe asks at ``daemon.providers.asking.DEFAULT_RATE`` (5 a
second) unless told otherwise.
"""

from __future__ import annotations

from typing import Any, ClassVar

from daemon.config import ProviderSettings
from daemon.errors import TransientDeliveryError
from daemon.lead import Geocode, Lead
from daemon.providers.base import Published, one_line, user_agent
from notifiers.http import JsonApi, json_of


class Census:
    """The Census geocoder. Raises ``DeliveryError`` subclasses; never sleeps."""

    name: ClassVar[str] = "census"
    kind: ClassVar[str] = "geocode"
    published: ClassVar[Published] = Published(
        base_url="https://geocoding.geo.census.gov", needs_key=False, rate=None,
        cost="free, no key; no published rate limit")

    def __init__(self, *, base_url: str | None = None, user_agent_: str | None = None,
                 timeout: float = 10.0):
        self.api = JsonApi(self.name, base_url or self.published.base_url, timeout=timeout,
                           connect_timeout=min(timeout, 10.0),
                           headers={"User-Agent": user_agent_} if user_agent_ else None)

    @classmethod
    def from_config(cls, settings: ProviderSettings) -> Census:
        return cls(base_url=settings.base_url, user_agent_=user_agent(settings),
                   timeout=settings.timeout.total_seconds())

    def question(self, lead: Lead) -> str | None:
        return one_line(lead.property)

    def ask(self, question: str, *, timeout: float) -> Geocode:
        resp = self.api.call("GET", "/geocoder/geographies/onelineaddress", timeout=timeout,
                             params={"address": question, "benchmark": "Public_AR_Current",
                                     "vintage": "Current_Current", "format": "json"})
        return parse(json_of(resp))

    def close(self) -> None:
        self.api.close()


def parse(data: dict[str, Any]) -> Geocode:
    """The Census answer as one ``Geocode``; an answer without ``result`` (a proxy's page,
    a half-written body) is a ``TransientDeliveryError``."""
    result = data.get("result")
    if not isinstance(result, dict):
        raise TransientDeliveryError("census: an answer without `result`")
    matches = [m for m in result.get("addressMatches") or () if isinstance(m, dict)]
    if not matches:
        return Geocode(Census.name, found=False)
    first = matches[0]
    xy = first.get("coordinates") or {}
    counties = (first.get("geographies") or {}).get("Counties") or ()
    county = counties[0].get("NAME") if counties and isinstance(counties[0], dict) else None
    try:
        lon, lat = float(xy["x"]), float(xy["y"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TransientDeliveryError("census: a match without coordinates") from exc
    return Geocode(Census.name, found=True, latitude=lat, longitude=lon, county=county,
                   quality="Match" if len(matches) == 1 else "Tie",
                   matched_address=first.get("matchedAddress"))
