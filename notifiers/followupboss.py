"""Follow Up Boss: each routed lead is one event (``POST /v1/events``).

FUB matches the event's person to an existing contact itself (by email and phone), so a
repeat inquiry lands on the same person. The event carries the lead's type (chosen from
the lead: a seller, a property, a question, or a bare sign-up), the person with the tier
as a tag (``drip`` too for low leads) and the agent as ``assignedUserId`` (the agent's
``crm_user_id``), and the property.

Auth is HTTP Basic with the API key as user name, plus ``X-System``/``X-System-Key`` for a
registered integration (which also doubles the rate limit: 250 requests per sliding 10 s
instead of 125). A 204 means the lead flow of that source is archived in FUB and the event
was dropped: recorded as delivered-but-ignored and alerted once, never retried. 429 (with
``Retry-After``), 5xx and timeouts are retried; other 4xx are dead at once.

FUB has no idempotency key for events: if an answer is lost (a read timeout) the retry may
add a second event to the same person (never a second person). That is the price of
at-least-once; a lost event would be worse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from daemon.errors import PermanentDeliveryError
from daemon.lead import Lead, StoredLead
from notifiers.base import Action, Outcome, RateLimit, Routed, agent_text
from notifiers.http import JsonApi, json_of, text_of
from notifiers.options import Options

log = logging.getLogger(__name__)

EVENT = "event"

#: FUB's documented limits, per sliding 10 s: with a registered system key, and without
WITH_SYSTEM_KEY = RateLimit(250, 10.0)
WITHOUT_SYSTEM_KEY = RateLimit(125, 10.0)


class FollowUpBoss:
    """The Follow Up Boss notifier. Raises ``DeliveryError`` subclasses; never sleeps."""

    name: ClassVar[str] = "followupboss"
    actions: ClassVar[frozenset[str]] = frozenset({EVENT})
    keys: ClassVar[frozenset[str]] = frozenset({"base_url", "api_key", "system", "system_key"})

    def __init__(self, api_key: str, *, base_url: str = "https://api.followupboss.com",
                 system: str = "leadpipe", system_key: str | None = None, timeout: float = 10.0,
                 connect_timeout: float | None = None, rate_limit: RateLimit | None = None,
                 clock: Callable[[], datetime] | None = None):
        self.system = system
        headers = {"X-System": system}
        if system_key:
            headers["X-System-Key"] = system_key
        self.clock = clock or (lambda: datetime.now(UTC))
        self.api = JsonApi("followupboss", base_url, timeout=timeout,
                           connect_timeout=connect_timeout or min(timeout, 10.0),
                           headers=headers, auth=(api_key, ""), clock=self.clock)
        limit = rate_limit or (WITH_SYSTEM_KEY if system_key else WITHOUT_SYSTEM_KEY)
        self.rate_limits: Mapping[str, RateLimit] = {"requests": limit}

    @classmethod
    def from_config(cls, options: Mapping[str, Any]) -> FollowUpBoss:
        """Keys: ``api_key`` (required), ``base_url``, ``system``, ``system_key``,
        ``rate_limit``, ``timeout``, ``connect_timeout``."""
        o = Options(cls.name, options, cls.keys)
        system_key = o.text("system_key")
        timeout, connect = o.timeouts()
        default = WITH_SYSTEM_KEY if system_key else WITHOUT_SYSTEM_KEY
        return cls(o.required("api_key", " (Admin → API in Follow Up Boss)"),
                   base_url=o.text("base_url") or "https://api.followupboss.com",
                   system=o.text("system") or "leadpipe", system_key=system_key,
                   timeout=timeout, connect_timeout=connect,
                   rate_limit=o.rate_limit("rate_limit", default))

    # -- the interface ----------------------------------------------------------------

    def cost(self, action: str) -> Mapping[str, int]:
        return {"requests": 1}

    @classmethod
    def lead_actions(cls, routed: Routed) -> tuple[str, ...]:
        return (EVENT,)

    def deliver(self, lead: StoredLead | None, action: Action) -> Outcome:
        """Send the lead as one event; raises ``TransientDeliveryError`` / ``PermanentDeliveryError``."""
        if action.name != EVENT:
            raise PermanentDeliveryError(f"followupboss has no action {action.name!r}")
        if lead is None:
            raise PermanentDeliveryError("followupboss: an event needs a lead")
        body = event_body(lead, action.params, system=self.system)
        resp = self.api.call("POST", "/v1/events", json_body=body)
        if resp.status_code == 204:
            why = f"Follow Up Boss ignored lead #{lead.id}: the lead flow for source {lead.lead.source!r} is archived"
            log.warning("%s (delivery %s)", why, action.idempotency_key)
            return Outcome.delivered(status_code=204, response=text_of(resp),
                                     result={"ignored": why, "source": lead.lead.source})
        data = json_of(resp)
        return Outcome.delivered(status_code=resp.status_code, response=text_of(resp),
                                 result={k: v for k, v in (("event_id", data.get("id")),
                                                           ("person_id", data.get("personId")))
                                         if v is not None})

    def check(self) -> str:
        """``GET /v1/me``: whose key this is. Raises ``DeliveryError``."""
        data = json_of(self.api.call("GET", "/v1/me"))
        who = data.get("name") or data.get("email") or "?"
        return f"Follow Up Boss: API key of {who} (system {self.system})"


# -- what the event says -------------------------------------------------------------------


def event_type(lead: Lead) -> str:
    """``Seller Inquiry`` for a seller; ``Property Inquiry`` when a particular property is
    known (address, MLS number or listing URL); ``General Inquiry`` for a question or a
    stated intent; ``Registration`` for a bare sign-up."""
    p = lead.property
    if lead.intent == "sell":
        return "Seller Inquiry"
    if p.address or p.mls_id or p.url:
        return "Property Inquiry"
    if lead.message or lead.intent or lead.budget_min or lead.budget_max:
        return "General Inquiry"
    return "Registration"


def event_body(stored: StoredLead, routed: Routed, *, system: str) -> dict[str, Any]:
    """The ``POST /v1/events`` body for one lead; absent values are left out."""
    lead = stored.lead
    tags: list[str] = [lead.tier]
    if lead.tier == "low" or routed.get("status") == "drip":
        tags.append("drip")
    person: dict[str, Any] = {
        "firstName": lead.first_name or (lead.full_name if not lead.last_name else None),
        "lastName": lead.last_name,
        "emails": [{"value": lead.email}] if lead.email else None,
        "phones": [{"value": lead.phone}] if lead.phone else None,
        "tags": tags,
        "assignedUserId": _user_id(routed.get("crm_user_id")),
    }
    p = lead.property
    prop = {"street": p.address, "city": p.city, "state": p.state, "code": p.postal_code,
            "mlsNumber": p.mls_id, "price": _whole(p.price), "url": p.url}
    body: dict[str, Any] = {
        "source": lead.source,
        "system": system,
        "type": event_type(lead),
        "message": message(stored, routed),
        "person": _compact(person),
        "property": _compact(prop) or None,
    }
    return _compact(body)


def message(stored: StoredLead, routed: Routed) -> str:
    """The lead's own message, then one line of what leadpipe knows (budget, score, agent),
    and one of what the enrichment provider knows about the person, if it was asked."""
    lead = stored.lead
    parts = [f"score {lead.score} ({lead.tier})"]
    lo, hi = lead.budget_min, lead.budget_max
    if lo is not None or hi is not None:
        parts.append("budget " + "–".join(f"${v:,.0f}" for v in (lo, hi) if v is not None))
    if routed.get("agent"):
        parts.append(f"assigned to {agent_text(routed)} ({routed.get('why')})")
    parts.append(f"leadpipe lead #{stored.id}")
    about = "— " + " · ".join(parts)
    if lead.enrichment is not None:
        about += f"\nAbout them: {lead.enrichment.summary()}"
    return f"{lead.message}\n\n{about}" if lead.message else about


def _user_id(value: Any) -> int | str | None:
    # FUB user ids are integers; anything else is sent as given, so FUB's 400 names it
    if value is None or value == "":
        return None
    text = str(value)
    return int(text) if text.isdigit() else text


def _whole(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != [] and v != {}}
