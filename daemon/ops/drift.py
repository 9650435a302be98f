"""Drift alerts: tell the developer early that a provider changed its template.

``DriftMonitor`` watches every processed email and calls ``alert(text)`` for

- the first lead of a source in a (UTC) day that carries a drift warning (a field found
  under a synonym label, a bare line, or a rule that matched on sender and subject only),
  and a new sender's first lead (read by the reader: a sender no rule knows), once;
- any rise in a source's dead-letter rate over the last 24 hours.

Alerts are rate-limited to one per source per 15 minutes; what is held back is counted
and sent, with the count, once the 15 minutes have passed (``flush``, run periodically).
Each alert names the rule, the field, what was expected and what was found (the drift
warning says all four), and the command that shows the email.

The state lives in memory: a restart forgets it, and each replica alerts on what it
processed itself.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from daemon.lead import UNMATCHED, DeadLetter, Lead
from daemon.pipeline import Processed
from daemon.reading.parsing import is_drift_warning
from daemon.reading.reader import is_new_sender

log = logging.getLogger(__name__)



@dataclass
class _SourceState:
    outcomes: deque[tuple[datetime, bool]] = field(default_factory=lambda: deque(maxlen=1000))
    #: the dead-letter rate when it last alerted (lowered whenever the rate falls)
    baseline: float = 0.0
    drift_day: date | None = None
    drift_today: int = 0
    last_sent: datetime | None = None
    held: int = 0
    latest_held: str | None = None
    #: a new sender's first lead was announced (once per sender and process)
    announced: bool = False


class DriftMonitor:
    """Turns processed emails into rate-limited alerts. Thread-safe."""

    def __init__(self, alert: Callable[[str], None], *, clock: Callable[[], datetime] | None = None,
                 quiet: timedelta = timedelta(minutes=15), window: timedelta = timedelta(hours=24)):
        self.alert = alert
        self.clock = clock or (lambda: datetime.now(UTC))
        self.quiet = quiet
        self.window = window
        self._sources: dict[str, _SourceState] = {}
        self._lock = threading.Lock()

    def observe(self, result: Processed) -> None:
        """Account for one processed email; alert if it is news."""
        outcome = result.outcome
        now = self.clock()
        with self._lock:
            if isinstance(outcome, Lead):
                text = self._lead(outcome, result.lead_id, now)
                source = outcome.source
            elif isinstance(outcome, DeadLetter):
                source = outcome.rule.split(" v")[0] if outcome.rule else UNMATCHED
                text = self._dead_letter(source, outcome, result.dead_letter_id, now)
            else:
                return
            if text is not None:
                self._send_or_hold(source, text, now)

    def flush(self) -> None:
        """Send what was held back for sources whose 15 quiet minutes have passed."""
        now = self.clock()
        with self._lock:
            for source, st in self._sources.items():
                if st.held and (st.last_sent is None or now - st.last_sent >= self.quiet):
                    since = f" since {st.last_sent:%H:%M} UTC" if st.last_sent else ""
                    self._emit(st, now, f"{source}: {_alerts(st.held)} held back{since}; "
                                        f"the latest: {st.latest_held}")

    # -- events ------------------------------------------------------------------------

    def _state(self, source: str) -> _SourceState:
        return self._sources.setdefault(source, _SourceState())

    def _lead(self, lead: Lead, lead_id: int | None, now: datetime) -> str | None:
        st = self._state(lead.source)
        self._record(st, now, dead=False)
        if lead.warnings and is_new_sender(lead.warnings[0]):
            if st.announced:
                return None  # once per new sender; its other leads show in `leads list`
            st.announced = True
            draft = (f"leadpipe rules new {lead.source} --lead {lead_id}" if lead_id is not None
                     else f"leadpipe rules new {lead.source} FILE.eml")
            return (f"New sender {lead.source}: a lead was read without a rule ({lead.warnings[0]}). "
                    f"Draft its rule: `{draft}`")
        drift = [w for w in lead.warnings if is_drift_warning(w)]
        if not drift:
            return None
        if st.drift_day != now.date():
            st.drift_day, st.drift_today = now.date(), 0
        st.drift_today += 1
        if st.drift_today > 1:
            return None  # the first of the day alerts; the others show in `leads list`
        show = f"leadpipe leads show {lead_id} --email" if lead_id is not None else "leadpipe leads list"
        return f"Template drift in {lead.source}: " + "; ".join(drift) + f" — see the email: `{show}`"

    def _dead_letter(self, source: str, dead: DeadLetter, dead_letter_id: int | None,
                     now: datetime) -> str | None:
        st = self._state(source)
        self._record(st, now, dead=True)
        rate, dead_count, total = self._rate(st)
        before = st.baseline
        if rate <= before:
            return None
        st.baseline = rate
        show = f"leadpipe dlq show {dead_letter_id}" if dead_letter_id is not None else "leadpipe dlq list"
        rule = f"rule {dead.rule}" if dead.rule else "no rule matched"
        return (f"Dead-letter rate of {source} rose to {rate:.0%} ({dead_count} of {total} emails in "
                f"the last {_hours(self.window)}; was {before:.0%}): {rule}: {dead.reason.value}: "
                f"{dead.detail[:300]} — see the email: `{show}`")

    def _record(self, st: _SourceState, now: datetime, *, dead: bool) -> None:
        st.outcomes.append((now, dead))
        while st.outcomes and now - st.outcomes[0][0] > self.window:
            st.outcomes.popleft()
        if not dead:
            st.baseline = min(st.baseline, self._rate(st)[0])

    @staticmethod
    def _rate(st: _SourceState) -> tuple[float, int, int]:
        total = len(st.outcomes)
        dead = sum(1 for _, d in st.outcomes if d)
        return (dead / total if total else 0.0), dead, total

    # -- rate limit --------------------------------------------------------------------

    def _send_or_hold(self, source: str, text: str, now: datetime) -> None:
        st = self._state(source)
        if st.last_sent is not None and now - st.last_sent < self.quiet:
            st.held += 1
            st.latest_held = text
            return
        if st.held:
            text += f" (and {_alerts(st.held)} held back since {st.last_sent:%H:%M} UTC)"
        self._emit(st, now, text)

    def _emit(self, st: _SourceState, now: datetime, text: str) -> None:
        st.last_sent, st.held, st.latest_held = now, 0, None
        try:
            self.alert(text)
        except Exception:  # isolation boundary: an alert that fails must not fail the email
            log.exception("sending a drift alert failed")


def _alerts(n: int) -> str:
    return "1 more alert" if n == 1 else f"{n} more alerts"


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.0f} h" if hours >= 1 else f"{span.total_seconds() / 60:.0f} min"
