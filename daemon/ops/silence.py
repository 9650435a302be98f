"""Source silence: a source that usually sends leads and has gone quiet for longer than
is usual for it.

From each source's leads over ``silence.history`` (30 days): a source averaging at least
``min_per_week`` leads a week is watched; it is silent when nothing was heard from it (no
lead, no dead letter) for longer than ``multiplier`` (3) × its median gap between leads,
and never less than ``floor`` (6 h). A silent source alerts once; the alert is cleared when
the source is heard again, and the next silence alerts anew. This catches a provider that
changed its sender address or a forwarding rule that stopped.

A source that still sends but whose emails stop parsing is the other half: the
dead-letter share rising, which ``daemon.ops.drift.DriftMonitor`` alerts on as each dead
letter is processed.
"""

from __future__ import annotations

import itertools
import logging
import statistics
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from daemon.config import SilenceSettings
from storage import activity
from storage.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Silent:
    """One source that has gone quiet."""

    source: str
    last_heard: datetime
    silent_for: timedelta
    median_gap: timedelta
    limit: timedelta
    leads: int

    def text(self, history: timedelta) -> str:
        return (f"Source {self.source} has sent nothing for {_span(self.silent_for)} (last heard "
                f"{self.last_heard:%Y-%m-%d %H:%M} UTC); it usually sends a lead every "
                f"{_span(self.median_gap)} ({self.leads} in the last {_span(history)}), so "
                f"more than {_span(self.limit)} of silence is unusual. Did the provider change "
                f"its sender, or the forwarding rule stop? `leadpipe dlq list --source "
                f"{self.source}`, `leadpipe stats`")


def find_silent(times: dict[str, list[datetime]], heard: dict[str, datetime], now: datetime,
                settings: SilenceSettings) -> list[Silent]:
    """The watched sources that are silent now. Pure: the history in, the verdicts out."""
    weeks = settings.history / timedelta(days=7)
    silent = []
    for source, stamps in sorted(times.items()):
        if len(stamps) < 2 or len(stamps) < settings.min_per_week * weeks:
            continue
        ordered = sorted(stamps)
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(ordered)]
        median = timedelta(seconds=statistics.median(gaps))
        limit = max(settings.floor, median * settings.multiplier)
        last = max(heard.get(source, ordered[-1]), ordered[-1])
        if now - last > limit:
            silent.append(Silent(source, last, now - last, median, limit, len(stamps)))
    return silent


class SilenceMonitor:
    """The scheduled check: alerts each silent source once per silence."""

    def __init__(self, db: Database, settings: SilenceSettings, alert: Callable[..., None], *,
                 clock: Callable[[], datetime] | None = None):
        self.db = db
        self.settings = settings
        self.alert = alert
        self.clock = clock or (lambda: datetime.now(UTC))
        #: source → the last-heard time its silence was alerted for
        self._alerted: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def check(self) -> list[Silent]:
        """Alert the sources newly silent; forget those heard again. Returns the new ones."""
        now = self.clock()
        since = now - self.settings.history
        with self.db.session() as s:
            times = activity.lead_times(s, since)
            heard = activity.last_heard(s, since)
        found = find_silent(times, heard, now, self.settings)
        new = []
        with self._lock:
            quiet = {x.source for x in found}
            for source in [k for k in self._alerted if k not in quiet]:
                log.info("source %s is heard from again", source)
                del self._alerted[source]
            for x in found:
                if self._alerted.get(x.source) == x.last_heard:
                    continue
                self._alerted[x.source] = x.last_heard
                new.append(x)
        for x in new:
            # the key makes the Slack post once-only across restarts and replicas
            self.alert(x.text(self.settings.history),
                       key=f"silence:{x.source}:{x.last_heard.isoformat()}")
        return new


def _span(d: timedelta) -> str:
    minutes = int(d.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h"
    return f"{hours // 24} d {hours % 24} h" if hours % 24 else f"{hours // 24} d"
