"""Source silence (daemon/ops/silence.py): a source that usually sends leads and went quiet.

When these fail, a portal that changed its sender address or a forwarding rule that broke
goes unnoticed for days — the leads are simply not there, and nothing is red — or the tech
channel is paged every five minutes about the same silence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from daemon.config import SilenceSettings
from daemon.lead import DeadLetter, DeadLetterReason, Lead
from daemon.ops.silence import SilenceMonitor, find_silent
from storage import dead_letters, inbound, leads
from storage.db import Database
from storage.models import DeadLetterRow, LeadRow

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SETTINGS = SilenceSettings()  # ≥ 5 a week over 30 days; 3 × median gap, at least 6 h


def hourly(count: int, *, every: timedelta = timedelta(hours=2), last: datetime) -> list[datetime]:
    return [last - every * i for i in range(count)][::-1]


def test_a_busy_source_silent_for_three_times_its_usual_gap_is_found():
    times = {"zillow": hourly(200, last=NOW - timedelta(hours=7)),       # gap 2 h, limit 6 h
             "realtor": hourly(200, last=NOW - timedelta(hours=5))}      # still within 6 h
    (silent,) = find_silent(times, {}, NOW, SETTINGS)
    assert silent.source == "zillow" and silent.median_gap == timedelta(hours=2)
    assert silent.limit == timedelta(hours=6) and silent.silent_for == timedelta(hours=7)
    assert "Source zillow has sent nothing for 7 h" in silent.text(SETTINGS.history)


def test_a_slow_source_gets_its_own_longer_limit_and_a_rare_one_is_not_watched():
    daily = [NOW - timedelta(days=2) - timedelta(days=i) for i in range(25)][::-1]  # 1 a day
    rare = [NOW - timedelta(days=20), NOW - timedelta(days=10)]  # 2 in 30 days: not watched
    assert find_silent({"homes": daily, "rare": rare}, {}, NOW, SETTINGS) == []  # 2 d < 3 d
    (late,) = find_silent({"homes": daily}, {}, NOW + timedelta(days=1, hours=1), SETTINGS)
    assert late.limit == timedelta(days=3)


def test_a_dead_letter_counts_as_hearing_from_the_source():
    times = {"zillow": hourly(200, last=NOW - timedelta(hours=9))}
    assert find_silent(times, {"zillow": NOW - timedelta(hours=1)}, NOW, SETTINGS) == []


def add_lead(db: Database, source: str, at: datetime, n: int) -> None:
    with db.session() as s:
        lead_id = leads.insert(s, Lead(source=source, rule_version="1", email=f"p{n}@example.com"),
                               inbound_email_id=None)
        s.execute(update(LeadRow).where(LeadRow.id == lead_id).values(created_at=at))


def test_a_silent_source_alerts_once_and_again_only_after_it_was_heard(db: Database):
    clock = [NOW]
    alerts: list[tuple[str, str | None]] = []
    monitor = SilenceMonitor(db, SETTINGS, lambda text, key=None: alerts.append((text, key)),
                             clock=lambda: clock[0])
    for i in range(60):  # one lead every 2 hours, the last 7 hours ago
        add_lead(db, "zillow", NOW - timedelta(hours=7) - timedelta(hours=2 * i), i)

    assert [x.source for x in monitor.check()] == ["zillow"]
    clock[0] = NOW + timedelta(minutes=5)
    assert monitor.check() == []  # the same silence: no second alert
    assert len(alerts) == 1 and alerts[0][1] is not None and alerts[0][1].startswith("silence:zillow:")

    # heard again (a dead letter of its rule): the alert is cleared …
    with db.session() as s:
        stored = inbound.store(s, _raw(), inbound.InboundHeaders(None, None, None))
        dl = dead_letters.insert(s, DeadLetter(DeadLetterReason.MISSING_REQUIRED_FIELD, "x",
                                               rule="zillow v3"), inbound_email_id=stored.id,
                                 source_hint="zillow")
        s.execute(update(DeadLetterRow).where(DeadLetterRow.id == dl).values(created_at=clock[0]))
    assert monitor.check() == []
    # … and the next silence alerts anew
    clock[0] = NOW + timedelta(hours=8)
    assert [x.source for x in monitor.check()] == ["zillow"]
    assert len(alerts) == 2 and alerts[1][1] != alerts[0][1]


def _raw() -> object:
    from daemon.lead import Origin, RawEmail

    return RawEmail(data=b"Subject: x\n\nx", origin=Origin.CLI, received_at=NOW)
