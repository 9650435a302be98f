"""Jinja filters of the admin templates: dates, money, absent values."""

from __future__ import annotations

from datetime import UTC, datetime

from jinja2 import Environment

from daemon.ops.stats import seconds


def when(value: datetime | None) -> str:
    if value is None:
        return "–"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if 0 <= seconds < 60:
        return "just now"
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            text = f"{seconds // size}{unit}"
            break
    else:
        text = f"{seconds}s"
    return f"in {text}" if future else f"{text} ago"


def money(value: float | None) -> str:
    if value is None:
        return "–"
    return f"${value:,.0f}"


def dash(value: object) -> object:
    return "–" if value is None or value == "" else value


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def duration(value: float | None) -> str:
    """Seconds as ``850 ms``, ``12.5 s``, ``4.2 min``; ``–`` for none."""
    return "–" if value is None else seconds(value)


def install(env: Environment) -> None:
    env.filters.update(when=when, ago=ago, money=money, dash=dash, percent=percent, duration=duration)
