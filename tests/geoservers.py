"""A local HTTP server that speaks a geocoder's API shape — the US Census geocoder, Nominatim
or Google's Geocoding API — on ``127.0.0.1`` port 0, in a thread.

It knows a few addresses (``PLACES``) and places any other deterministically (a made-up
point from the address's hash, so a burst of distinct addresses is all found); an address
containing ``Nowhere`` has no match. ``mode`` scripts every answer until it is changed:

- ``ok`` — the provider's answer;
- ``429`` — ``429 Too Many Requests`` with ``Retry-After: <retry_after>``;
- ``503`` — a server error;
- ``slow`` — the answer, after ``delay`` seconds;
- ``silent`` — the connection is accepted and the request read, and nothing is answered
  until the mode changes (or the server stops): a provider that went quiet;
- ``over_query_limit`` (Google) — 200 with ``status: OVER_QUERY_LIMIT``.

Google answers ``REQUEST_DENIED`` to a key other than ``key``; Nominatim answers 403 to a
stock library User-Agent (``python-httpx/…``), as the public server does.

Every request's arrival (``time.monotonic()``) is kept: ``max_in_window(1.0)`` is the most
requests any sliding second saw, and ``per_second()`` counts them per wall-clock second,
so a test can prove no second went over the rate limit.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: address (lower-cased, as asked) → (latitude, longitude, county, matched address)
PLACES: dict[str, tuple[float, float, str, str]] = {
    "12 palm ave, miami, fl 33101": (25.77427, -80.19366, "Miami-Dade County",
                                     "12 PALM AVE, MIAMI, FL, 33101"),
    "3100 peachtree rd ne, atlanta, ga 30305": (33.84106, -84.38033, "Fulton County",
                                                "3100 PEACHTREE RD NE, ATLANTA, GA, 30305"),
}


def place_of(address: str) -> tuple[float, float, str, str] | None:
    """Where the stand-in puts ``address``; ``None`` for no match."""
    key = " ".join(address.lower().split())
    if "nowhere" in key:
        return None
    if key in PLACES:
        return PLACES[key]
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    lat = 25.0 + (h % 100_000) / 10_000
    lon = -100.0 + (h // 100_000 % 100_000) / 10_000
    return (round(lat, 6), round(lon, 6), f"County {h % 97}", address.upper())


class GeoServer:
    """One geocoder's API on loopback. ``kind``: ``census`` | ``nominatim`` | ``google``."""

    def __init__(self, kind: str = "census", *, key: str = "test-key") -> None:
        if kind not in ("census", "nominatim", "google"):
            raise ValueError(f"unknown geocoder kind {kind!r}")
        self.kind = kind
        self.key = key
        self.mode = "ok"
        self.retry_after = 1.0
        self.delay = 1.0
        self.arrivals: list[float] = []
        self.wall: list[float] = []
        self.queries: list[str] = []
        self.user_agents: list[str] = []
        self.statuses: list[int] = []
        self._lock = threading.RLock()
        self._unsilenced = threading.Condition(self._lock)
        self._stopping = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # headers and body go out in two writes: without this, Nagle and the
                # client's delayed ACK cost ~40 ms per answer
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:
                status, body, headers = server._handle(self.path, dict(self.headers))
                if status == 0:  # silent: the client gave up, or the server is stopping
                    self.close_connection = True
                    return
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client timed out and went away meanwhile
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       name=f"geo-{kind}", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> GeoServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._unsilenced.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> GeoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_mode(self, mode: str) -> None:
        with self._lock:
            self.mode = mode
            self._unsilenced.notify_all()

    # -- what it saw ---------------------------------------------------------------------

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.arrivals)

    def max_in_window(self, seconds: float = 1.0) -> int:
        """The most requests that arrived within any ``seconds`` (a sliding window)."""
        with self._lock:
            times = sorted(self.arrivals)
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    def per_second(self) -> Counter[int]:
        """Requests per wall-clock second (``int(time.time())`` of their arrival)."""
        with self._lock:
            return Counter(int(t) for t in self.wall)

    # -- answers -----------------------------------------------------------------------

    def _handle(self, target: str, headers: Mapping[str, str]) -> tuple[int, Any, dict[str, str]]:
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self._lock:
            self.arrivals.append(time.monotonic())
            self.wall.append(time.time())
            self.user_agents.append(headers.get("User-Agent", ""))
            mode = self.mode
            if mode == "silent":
                while self.mode == "silent" and not self._stopping:
                    self._unsilenced.wait(0.5)
                return self._record(0, None, {})
        if mode == "slow":
            time.sleep(self.delay)
        if mode == "429":
            return self._record(429, {"error": "rate limited"},
                                {"Retry-After": f"{self.retry_after:g}"})
        if mode == "503":
            return self._record(503, {"error": "unavailable"}, {})
        answer = getattr(self, f"_{self.kind}")(url.path, query, headers, mode)
        return self._record(*answer)

    def _record(self, status: int, body: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self.statuses.append(status)
        return status, body, headers

    def _census(self, path: str, q: dict[str, str], headers: Mapping[str, str],
                mode: str) -> tuple[int, Any, dict[str, str]]:
        if path != "/geocoder/geographies/onelineaddress":
            return 404, {"errors": ["no such endpoint"], "status": "404"}, {}
        address = q.get("address", "")
        if not address or q.get("benchmark") != "Public_AR_Current" or q.get("format") != "json":
            return 400, {"errors": ["Address cannot be empty and cannot exceed 100 characters"],
                         "status": "400"}, {}
        with self._lock:
            self.queries.append(address)
        found = place_of(address)
        matches = []
        if found is not None:
            lat, lon, county, matched = found
            matches.append({
                "matchedAddress": matched,
                "coordinates": {"x": lon, "y": lat},
                "tigerLine": {"tigerLineId": "76225813", "side": "L"},
                "addressComponents": {"zip": matched[-5:], "city": "", "state": ""},
                "geographies": {
                    "Counties": [{"NAME": county, "BASENAME": county.removesuffix(" County"),
                                  "GEOID": "12086", "STATE": "12", "COUNTY": "086"}],
                    "States": [{"NAME": "Florida", "STUSAB": "FL"}],
                },
            })
        return 200, {"result": {"input": {"address": {"address": address},
                                          "benchmark": {"benchmarkName": "Public_AR_Current"},
                                          "vintage": {"vintageName": "Current_Current"}},
                                "addressMatches": matches}}, {}

    def _nominatim(self, path: str, q: dict[str, str], headers: Mapping[str, str],
                   mode: str) -> tuple[int, Any, dict[str, str]]:
        if path != "/search":
            return 404, {"error": "no such endpoint"}, {}
        if headers.get("User-Agent", "").startswith("python-"):
            return 403, {"error": "Access blocked: identify your application"}, {}
        address = q.get("q", "")
        with self._lock:
            self.queries.append(address)
        found = place_of(address)
        if found is None or q.get("format") != "jsonv2":
            return 200, [], {}
        lat, lon, county, matched = found
        return 200, [{
            "place_id": 1, "licence": "Data © OpenStreetMap contributors, ODbL 1.0.",
            "osm_type": "node", "osm_id": 2, "lat": f"{lat}", "lon": f"{lon}",
            "category": "place", "type": "house", "place_rank": 30, "importance": 0.1,
            "addresstype": "place", "name": "", "display_name": matched,
            "address": {"house_number": "12", "road": "Palm Avenue", "city": "Miami",
                        "county": county, "state": "Florida", "postcode": "33101",
                        "country": "United States", "country_code": "us"},
            "boundingbox": [f"{lat - 0.0001}", f"{lat + 0.0001}", f"{lon - 0.0001}", f"{lon + 0.0001}"],
        }], {}

    def _google(self, path: str, q: dict[str, str], headers: Mapping[str, str],
                mode: str) -> tuple[int, Any, dict[str, str]]:
        if path != "/maps/api/geocode/json":
            return 404, {"error": "no such endpoint"}, {}
        if q.get("key") != self.key:
            return 200, {"results": [], "status": "REQUEST_DENIED",
                         "error_message": "The provided API key is invalid."}, {}
        if mode == "over_query_limit":
            return 200, {"results": [], "status": "OVER_QUERY_LIMIT",
                         "error_message": "You have exceeded your rate-limit for this API."}, {}
        address = q.get("address", "")
        with self._lock:
            self.queries.append(address)
        found = place_of(address)
        if found is None:
            return 200, {"results": [], "status": "ZERO_RESULTS"}, {}
        lat, lon, county, matched = found
        return 200, {"status": "OK", "results": [{
            "formatted_address": matched.title(),
            "geometry": {"location": {"lat": lat, "lng": lon}, "location_type": "ROOFTOP",
                         "viewport": {}},
            "address_components": [
                {"long_name": "12", "short_name": "12", "types": ["street_number"]},
                {"long_name": "Miami", "short_name": "Miami", "types": ["locality", "political"]},
                {"long_name": county, "short_name": county,
                 "types": ["administrative_area_level_2", "political"]},
                {"long_name": "Florida", "short_name": "FL",
                 "types": ["administrative_area_level_1", "political"]},
            ],
            "place_id": "ChIJ-test", "types": ["street_address"],
        }]}, {}
