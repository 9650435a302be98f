"""Shared pieces of the geocoding tests and bench/geocode_burst.py: a ``Geocoding`` on the
Census stand-in with short budgets, and a burst of lead emails through the worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from geoservers import GeoServer
from routingkit import TEAM

from daemon.delivery.dispatch import RetryPolicy
from daemon.intake import inbox
from daemon.lead import Origin, RawEmail
from daemon.pipeline import Engine, Worker
from daemon.providers.census import Census
from daemon.providers.geocoding import Geocoding, Inline
from daemon.routing.assign import Router
from storage.db import Database

SCORING = Path(__file__).resolve().parents[1] / "rules" / "scoring.yaml"


def make_geocoding(db: Database, server: GeoServer, **kw: object) -> Geocoding:
    options: dict[str, object] = {"rate": 100.0, "budget": 0.3, "timeout": 0.5,
                                  "policy": RetryPolicy(max_attempts=8, base=timedelta(seconds=0.2)),
                                  **kw}
    return Geocoding(db, Census(base_url=server.base_url), **options)  # type: ignore[arg-type]


RULE = """\
source: portal
version: 1
match:
  from: ["*@portal.example"]
fields:
  full_name: [{label: Name}]
  phone: [{label: Phone}]
  email: [{label: Email}]
  address: [{regex: '^Street:\\s*(?P<value>\\S[^\\n]*)$'}]
  city: [{label: City}]
  state: [{label: State}]
  postal_code: [{label: Zip}]
required: [full_name]
"""


def burst_email(n: int) -> RawEmail:
    m = EmailMessage()
    m["From"] = "Portal Leads <leads@portal.example>"
    m["To"] = "inbox@brokerage.example"
    m["Subject"] = f"New lead {n}"
    m["Message-ID"] = f"<burst.{n}@portal.example>"
    m.set_content(f"Name: Dana Lee\nPhone: (305) 555-{n % 10000:04d}\nEmail: dana{n}@example.com\n"
                  f"Street: {n} Collins Ave\nCity: Miami Beach\nState: FL\nZip: 33139\n")
    return RawEmail(bytes(m), Origin.CLI, datetime.now(UTC))


def run_burst(db: Database, tmp_path: Path, server: GeoServer | None, n: int,
              rate: float = 200.0, hold: tuple[float, float] = (0.2, 2.0),
              ) -> tuple[Worker, Geocoding | None, list[Inline]]:
    """Store ``n`` lead emails and run the worker over them, routing each; with a geocoder
    on ``server`` (429 for the first half of the burst, then silent). ``hold``: the base and
    cap of the geocoder's hold after a failure (short, so a test's drain starts soon)."""
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "portal.yaml").write_text(RULE, encoding="utf-8")
    (folder / "scoring.yaml").write_text(SCORING.read_text(encoding="utf-8"), encoding="utf-8")
    engine = Engine.load(folder)
    g = None
    seen: list[Inline] = []
    if server is not None:
        g = make_geocoding(db, server, rate=rate, budget=0.2, timeout=0.3, hold_base=hold[0],
                           hold_cap=hold[1])
        g.on_inline = seen.append
    worker = Worker(db, lambda: engine, router=Router(db, TEAM), geocoding=g)
    for start in range(0, n, 100):
        inbox.accept_many(db, [burst_email(i) for i in range(start, min(n, start + 100))])
    while worker.run_pending(limit=50):
        if server is not None and server.mode == "429" and len(seen) >= n // 2:
            server.set_mode("silent")
    return worker, g, seen


