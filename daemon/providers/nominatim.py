"""Nominatim (OpenStreetMap): no key; the public server allows at most 1 request per
second for a whole application, asks for a User-Agent naming it (stock library agents are
refused), results cached, and no heavy or bulk use — run your own for more (``base_url``).

``GET /search?q=…&format=jsonv2&addressdetails=1&limit=1`` answers a JSON list of places:
``lat``/``lon`` (strings), ``display_name``, ``category``, ``type``, ``place_rank``,
``importance`` and ``address`` (``county``, ``city``, ``state``, ``postcode``, …). An empty
list is no match. The quality is the place's ``type`` (``house`` for an address point).
Over the limit the server answers 429; a blocked client gets 403 (permanent here).
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from daemon.config import ProviderSettings
from daemon.errors import ConfigError, TransientDeliveryError
from daemon.lead import Geocode, Lead
from daemon.providers.base import Published, one_line
from notifiers.http import JsonApi

PUBLIC = "https://nominatim.openstreetmap.org"


class Nominatim:
    """The Nominatim geocoder. Raises ``DeliveryError`` subclasses; never sleeps."""

    name: ClassVar[str] = "nominatim"
    kind: ClassVar[str] = "geocode"
    published: ClassVar[Published] = Published(
        base_url=PUBLIC, needs_key=False, rate=1.0,
        cost="free; public server at most 1 request/s per application, no heavy use")

    def __init__(self, *, user_agent: str, base_url: str | None = None, timeout: float = 10.0):
        self.api = JsonApi(self.name, base_url or PUBLIC, timeout=timeout,
                           connect_timeout=min(timeout, 10.0), headers={"User-Agent": user_agent})

    @classmethod
    def from_config(cls, settings: ProviderSettings) -> Nominatim:
        public = (settings.base_url or PUBLIC).rstrip("/") == PUBLIC
        if public and not settings.user_agent:
            raise ConfigError("geocoder.user_agent: the public Nominatim server requires a "
                              "User-Agent naming your application and a contact, e.g. "
                              "'acme-leads/1.0 (ops@acme.example)'", key="user_agent",
                              problem="required by the public Nominatim server's usage policy")
        if public and settings.rate is not None and settings.rate > 1:
            raise ConfigError("geocoder.rate: the public Nominatim server allows at most 1 "
                              "request per second; run your own server (base_url) for more",
                              key="rate", problem="at most 1 on the public Nominatim server")
        return cls(user_agent=settings.user_agent or "", base_url=settings.base_url,
                   timeout=settings.timeout.total_seconds())

    def question(self, lead: Lead) -> str | None:
        return one_line(lead.property)

    def ask(self, question: str, *, timeout: float) -> Geocode:
        resp = self.api.call("GET", "/search", timeout=timeout,
                             params={"q": question, "format": "jsonv2", "addressdetails": "1",
                                     "limit": "1"})
        return parse(_json_list(resp))

    def close(self) -> None:
        self.api.close()


def _json_list(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError as exc:
        raise TransientDeliveryError("nominatim: an answer that is not JSON") from exc


def parse(data: Any) -> Geocode:
    """The Nominatim answer (a list of places) as one ``Geocode``."""
    if not isinstance(data, list):
        raise TransientDeliveryError("nominatim: an answer that is not a list of places")
    places = [p for p in data if isinstance(p, dict)]
    if not places:
        return Geocode(Nominatim.name, found=False)
    first = places[0]
    try:
        lat, lon = float(first["lat"]), float(first["lon"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TransientDeliveryError("nominatim: a place without lat/lon") from exc
    found = first.get("address")
    address: dict[str, Any] = found if isinstance(found, dict) else {}
    return Geocode(Nominatim.name, found=True, latitude=lat, longitude=lon,
                   county=address.get("county"), quality=first.get("type"),
                   matched_address=first.get("display_name"))
