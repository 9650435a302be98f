"""Who can take a lead now: working hours in each agent's own time zone, and agents set away.

Pure: the time (``now``, aware) and the agents set away (from ``agent_away``) are passed
in. Hours are read in the agent's time zone with ``zoneinfo``, so "09:00-17:00" in
``America/New_York`` is 13:00-21:00 UTC in summer and 14:00-22:00 UTC in winter, the day
of a daylight-saving change included. An agent with no hours works at any time.

Hours are written per day or range of days: ``{mon-fri: "09:00-17:30", sat: "10:00-14:00"}``;
several spans in one day are separated by commas (``"08:00-12:00, 13:00-18:00"``); a span
that ends before it starts runs past midnight (``"22:00-06:00"`` belongs to the day it
starts). A day not named is off.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Span:
    """One stretch of working time on one weekday (0 = Monday); ``end <= start``: past midnight."""

    day: int
    start: time
    end: time


@dataclass(frozen=True)
class Hours:
    """An agent's week of working hours in ``zone``; no spans at all: always working."""

    zone: str = "UTC"
    spans: tuple[Span, ...] = ()

    def working(self, now: datetime) -> bool:
        """Whether ``now`` (aware) falls in a span, read on the wall clock of ``zone``."""
        if not self.spans:
            return True
        local = now.astimezone(ZoneInfo(self.zone))
        t, day = local.time().replace(tzinfo=None), local.weekday()
        for s in self.spans:
            if s.start < s.end:
                if s.day == day and s.start <= t < s.end:
                    return True
            elif (s.day == day and t >= s.start) or ((s.day + 1) % 7 == day and t < s.end):
                return True
        return False


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; raises ``ValueError`` naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (write an IANA name, e.g. America/New_York)") from exc


def day_range(text: str) -> tuple[int, ...]:
    """``mon``, ``mon-fri``, ``sat-sun``, ``daily`` or ``weekdays`` as weekday numbers;
    raises ``ValueError``."""
    key = text.strip().lower()
    if key == "daily":
        return tuple(range(7))
    if key == "weekdays":
        return tuple(range(5))
    if key == "weekend":
        return (5, 6)
    first, _, last = key.partition("-")
    if first not in DAYS or (last and last not in DAYS):
        raise ValueError(f"not a day or range of days: {text!r} (write mon, mon-fri, daily, weekdays)")
    a, b = DAYS.index(first), DAYS.index(last or first)
    return tuple(range(a, b + 1)) if a <= b else (*range(a, 7), *range(0, b + 1))


def parse_spans(text: str) -> tuple[tuple[time, time], ...]:
    """``"09:00-17:00"`` or ``"08:00-12:00, 13:00-18:00"``; ``"off"`` is none; raises ``ValueError``."""
    if text.strip().lower() in ("off", ""):
        return ()
    out = []
    for part in text.split(","):
        m = _SPAN.match(part)
        if not m:
            raise ValueError(f"not a span of hours: {part.strip()!r} (write 09:00-17:30)")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"not a time of day in {part.strip()!r}")
        end = time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2)
        if time(h1, m1) == end:
            raise ValueError(f"an empty span: {part.strip()!r}")
        out.append((time(h1, m1), end))
    return tuple(out)


def hours_of(zone_name: str | None, week: Mapping[str, str] | None) -> Hours:
    """``Hours`` from an agent's ``time_zone`` and ``hours``; raises ``ValueError``."""
    name = zone_name or "UTC"
    zone(name)
    spans: list[Span] = []
    for days, text in (week or {}).items():
        for start, end in parse_spans(str(text)):
            spans.extend(Span(d, start, end) for d in day_range(str(days)))
    if week and not spans:  # every day said "off": never working is a mistake, not a schedule
        raise ValueError("hours: no working time at all (leave hours out to work at any time)")
    return Hours(name, tuple(spans))


@dataclass(frozen=True)
class Availability:
    """Who is working at ``now``: each agent's hours, and the agents set away (until when)."""

    now: datetime
    hours: Mapping[str, Hours]
    away: Mapping[str, datetime]

    @classmethod
    def always(cls) -> Availability:
        """Everyone available (no hours, nobody away): today's rotation."""
        return cls(datetime.now(UTC), {}, {})

    def available(self, agent: str) -> bool:
        until = self.away.get(agent)
        if until is not None and until > self.now:
            return False
        h = self.hours.get(agent)
        return h is None or h.working(self.now)

    def why_not(self, agent: str) -> str | None:
        """Why ``agent`` is skipped (``away until …``, ``off hours``), or None."""
        until = self.away.get(agent)
        if until is not None and until > self.now:
            return f"away until {until:%Y-%m-%d %H:%M} UTC"
        h = self.hours.get(agent)
        if h is not None and not h.working(self.now):
            return f"off hours ({self.now.astimezone(ZoneInfo(h.zone)):%a %H:%M} in {h.zone})"
        return None


def until_of(text: str, *, now: datetime, zone_name: str | None) -> datetime:
    """The end of an absence: a duration (``3h``, ``2d``) from ``now``, or a date or date-time
    read in the agent's time zone (``2026-12-05``: that day's start, ``2026-12-05T09:00``);
    raises ``ValueError``."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(m|h|d|w)\s*", text)
    if m:
        unit = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[m.group(2)]
        return now + timedelta(seconds=float(m.group(1)) * unit)
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"not a time: {text!r} (write 2d, 3h, 2026-12-05 or 2026-12-05T09:00)") from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=zone(zone_name or "UTC"))
    return at.astimezone(UTC)
