"""``leadpipe stats``: per source over the last 24 hours and 7 days — emails, leads, dead
letters, drift warnings, median and p95 time from arrival to routing, median time from
offer to claim. Read from the database, so it covers every replica and every restart.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.lead import UNMATCHED
from daemon.reading.parsing import is_drift_warning
from storage import activity
from storage.db import Database

WINDOWS: tuple[tuple[str, timedelta], ...] = (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)))


@dataclass(frozen=True)
class SourceStats:
    """One source over one window. Times are seconds; ``None`` when nothing to measure."""

    window: str
    source: str
    emails: int = 0
    leads: int = 0
    dead_letters: int = 0
    drift_warnings: int = 0
    route_median: float | None = None
    route_p95: float | None = None
    claim_median: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compute(db: Database, now: datetime | None = None) -> list[SourceStats]:
    """Every source active in each window, by window then source."""
    now = now or datetime.now(UTC)
    out: list[SourceStats] = []
    for window, span in WINDOWS:
        since = now - span
        with db.session() as s:
            emails = activity.emails_since(s, since)
            dead = activity.dead_letters_since(s, since)
            timings = activity.leads_since(s, since)
        by_source: dict[str, list[activity.LeadTiming]] = defaultdict(list)
        for t in timings:
            by_source[t.source].append(t)
        sources = {*(k or UNMATCHED for k in emails), *(k or UNMATCHED for k in dead), *by_source}
        for source in sorted(sources):
            mine = by_source.get(source, [])
            route = [max(0.0, (t.routed_at - t.arrived_at).total_seconds())
                     for t in mine if t.routed_at is not None and t.arrived_at is not None]
            claim = [max(0.0, (t.claimed_at - t.offered_at).total_seconds())
                     for t in mine if t.claimed_at is not None and t.offered_at is not None]
            out.append(SourceStats(
                window=window, source=source,
                emails=sum(n for k, n in emails.items() if (k or UNMATCHED) == source),
                leads=len(mine),
                dead_letters=sum(n for k, n in dead.items() if (k or UNMATCHED) == source),
                drift_warnings=sum(1 for t in mine for w in t.warnings if is_drift_warning(w)),
                route_median=_median(route), route_p95=_p95(route), claim_median=_median(claim),
            ))
    return out


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=20, method="inclusive")[18], 3)


def seconds(value: float | None) -> str:
    """A duration for a table cell: ``-``, ``850 ms``, ``12.5 s``, ``4.2 min``, ``3.1 h``."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"
