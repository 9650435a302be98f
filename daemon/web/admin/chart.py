"""A small bar chart of leads per day, drawn as inline SVG on the server (no JavaScript)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

from markupsafe import Markup, escape


def days_ending(last: date, n: int) -> list[date]:
    """The ``n`` days up to and including ``last``, oldest first."""
    return [last - timedelta(days=n - 1 - i) for i in range(n)]


def bar_chart(per_day: Mapping[date, int], days: list[date], *, width: int = 240,
              height: int = 40, label: str = "leads") -> Markup:
    """One bar per day (empty days as a thin baseline tick); each bar has a tooltip."""
    peak = max((per_day.get(d, 0) for d in days), default=0)
    n = max(len(days), 1)
    slot = width / n
    bar = max(slot - 1.0, 1.0)
    parts = [f'<svg class="chart" width="{width}" height="{height + 2}" '
             f'viewBox="0 0 {width} {height + 2}" role="img" '
             f'aria-label="{escape(label)} per day, peak {peak}">']
    for i, d in enumerate(days):
        value = per_day.get(d, 0)
        h = (value / peak * height) if peak else 0.0
        h = max(h, 1.0) if value else 0.0
        x = i * slot
        tip = escape(f"{d.isoformat()}: {value} {label}")
        if value:
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{height - h:.1f}" width="{bar:.1f}" '
                         f'height="{h:.1f}"><title>{tip}</title></rect>')
        else:
            parts.append(f'<rect class="zero" x="{x:.1f}" y="{height:.1f}" width="{bar:.1f}" '
                         f'height="1"><title>{tip}</title></rect>')
    parts.append(f'<line class="axis" x1="0" y1="{height + 1.5}" x2="{width}" '
                 f'y2="{height + 1.5}"/></svg>')
    return Markup("".join(parts))
