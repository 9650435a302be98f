"""The delivery log, read and put in words: the deliveries of a lead with their attempts,
each delivery's state and JSON form, and the lines that describe its attempts. The
commands that print them (``leadpipe deliveries list | show | retry`` and the deliveries
under ``leadpipe leads show ID``) are in ``daemon.cli.deliveries``.

Every outbox row (a Slack post, a CRM call, a webhook) has a state, and each attempt its
time, outcome, status code, latency, error and the first 2 KB of the answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage import outbox
from storage.db import Database
from storage.outbox import Attempt, Delivery

#: what ``--status`` means, in row states (``pending`` includes rows being sent)
STATUSES = {"dead": ("dead",), "pending": outbox.WAITING, "delivered": ("delivered",)}


def of_lead(db: Database, lead_id: int) -> list[tuple[Delivery, list[Attempt]]]:
    """The lead's deliveries, oldest first, each with its attempts."""
    with db.session() as s:
        rows = sorted(outbox.listing(s, lead_id=lead_id, limit=None), key=lambda d: d.id)
        return [(d, outbox.attempts(s, d.id)) for d in rows]


def attempt_lines(log: list[Attempt], *, indent: str) -> list[str]:
    """A line per attempt (time, outcome, status code, latency, error), and under one that
    failed the start of the answer it got."""
    lines: list[str] = []
    for a in log:
        code = str(a.status_code) if a.status_code is not None else "---"
        ms = f"{a.latency_ms:.0f} ms" if a.latency_ms is not None else "-"
        lines.append(f"{indent}{timestamp(a.attempted_at)}  {a.outcome:<9} {code}  {ms:>8}  {a.error or ''}")
        if a.response and a.outcome != "delivered":
            lines.append(f"{indent}    answer: {' '.join(a.response.split())[:300]}")
    return lines


def state(d: Delivery) -> str:
    """``delivered``, ``delivered (ignored: …)``, ``dead``, ``pending`` or ``sending``."""
    if d.status == "delivered" and d.result and d.result.get("ignored"):
        return "delivered (ignored by the CRM)"
    return d.status


def to_json(d: Delivery) -> dict[str, Any]:
    return {"id": d.id, "lead_id": d.lead_id, "notifier": d.notifier, "action": d.action,
            "status": d.status, "attempts": d.attempts, "idempotency_key": d.idempotency_key,
            "next_attempt_at": _iso(d.next_attempt_at) if d.status in outbox.WAITING else None,
            "delivered_at": _iso(d.delivered_at), "created_at": _iso(d.created_at),
            "last_error": d.last_error, "result": d.result}


def when(d: Delivery) -> str:
    """When it was delivered, or when it is next tried; ``-`` for a dead one."""
    if d.status == "delivered":
        return timestamp(d.delivered_at)
    if d.status in outbox.WAITING:
        return "next " + timestamp(d.next_attempt_at)
    return "-"


def timestamp(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None
