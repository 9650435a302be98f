"""A signed webhook: each routed lead is POSTed as JSON to any URL.

The body is the stored lead of DESIGN.md (the lead contract plus ``id``, ``status``,
``agent`` and ``claimed_by``), plus the agent's ``agent_email`` and ``agent_crm_user_id``
(``null`` without an agent, or when the configuration does not give them). Headers:

- ``X-Leadpipe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` —
  the receiver recomputes it over the raw body and rejects a mismatch or an old ``t``
  (``verify`` below does both);
- ``Idempotency-Key: lead:<id>:<notifier>:lead`` — the same on every retry, so a receiver
  that stores it drops a repeat.

A lead already sent that changes later (its geocode arrived after it was routed) is POSTed
again, whole, as action ``lead_update``: the same body and signature, ``X-Leadpipe-Event:
lead.updated`` and ``Idempotency-Key: lead:<id>:<notifier>:lead_update:<what>`` (``geocode``).

2xx is delivered; 408, 429 (``Retry-After`` honoured), 5xx, timeouts and refused
connections are retried; any other 4xx is dead at once (and alerted).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from daemon.errors import PermanentDeliveryError
from daemon.lead import StoredLead
from notifiers.base import Action, Outcome, RateLimit, Routed
from notifiers.http import JsonApi, text_of
from notifiers.options import Options

LEAD = "lead"
#: the lead again, whole, after something was added to it (``update_actions``)
LEAD_UPDATE = "lead_update"
EVENT_HEADER = "X-Leadpipe-Event"
SIGNATURE_HEADER = "X-Leadpipe-Signature"
#: how old a signature ``verify`` accepts by default
TOLERANCE = 300.0


class Webhook:
    """The webhook notifier. Raises ``DeliveryError`` subclasses; never sleeps."""

    name: ClassVar[str] = "webhook"
    actions: ClassVar[frozenset[str]] = frozenset({LEAD, LEAD_UPDATE})
    keys: ClassVar[frozenset[str]] = frozenset({"url", "secret", "headers"})

    def __init__(self, url: str, secret: str, *, headers: Mapping[str, str] | None = None,
                 timeout: float = 10.0, connect_timeout: float | None = None,
                 rate_limit: RateLimit | None = None, clock: Callable[[], datetime] | None = None):
        self.url = url
        self.secret = secret.encode()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.api = JsonApi("webhook", "", timeout=timeout,
                           connect_timeout=connect_timeout or min(timeout, 10.0),
                           headers=dict(headers or {}), clock=self.clock)
        self.rate_limits: Mapping[str, RateLimit] = {"requests": rate_limit} if rate_limit else {}

    @classmethod
    def from_config(cls, options: Mapping[str, Any]) -> Webhook:
        """Keys: ``url`` and ``secret`` (required), ``headers`` (extra, e.g. a bearer
        token), ``rate_limit`` (none by default), ``timeout``, ``connect_timeout``."""
        o = Options(cls.name, options, cls.keys)
        url = o.required("url")
        if not url.startswith(("https://", "http://")):
            raise o.error(f"`url` must be an http(s) URL, not {url!r}")
        headers = options.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise o.error("`headers` must map header names to values")
        timeout, connect = o.timeouts()
        return cls(url, o.required("secret", ": the receiver checks the signature with it"),
                   headers={str(k): str(v) for k, v in headers.items()}, timeout=timeout,
                   connect_timeout=connect, rate_limit=o.optional_rate_limit("rate_limit"))

    # -- the interface ----------------------------------------------------------------

    def cost(self, action: str) -> Mapping[str, int]:
        return {"requests": 1}

    @classmethod
    def lead_actions(cls, routed: Routed) -> tuple[str, ...]:
        return (LEAD,)

    @classmethod
    def update_actions(cls, changed: str) -> tuple[str, ...]:
        """The actions telling the receiver that a lead it has changed (``changed``: what,
        e.g. ``geocode``): the whole lead POSTed again."""
        return (LEAD_UPDATE,)

    def deliver(self, lead: StoredLead | None, action: Action) -> Outcome:
        """POST the lead, signed; raises ``TransientDeliveryError`` / ``PermanentDeliveryError``."""
        if action.name not in self.actions or lead is None:
            raise PermanentDeliveryError(f"webhook cannot {action.name!r} without a lead")
        body = json.dumps(payload(lead, action.params), ensure_ascii=False,
                          separators=(",", ":")).encode()
        stamp = int(self.clock().timestamp())
        headers = {"Content-Type": "application/json",
                   SIGNATURE_HEADER: signature_header(self.secret, stamp, body),
                   "Idempotency-Key": action.idempotency_key}
        if action.name == LEAD_UPDATE:
            headers[EVENT_HEADER] = "lead.updated"
        # errors name the host only: a webhook URL often carries its own token
        resp = self.api.call("POST", self.url, content=body, headers=headers,
                             shown=urlsplit(self.url).netloc)
        return Outcome.delivered(status_code=resp.status_code, response=text_of(resp))


def payload(lead: StoredLead, routed: Routed) -> dict[str, Any]:
    """The JSON body: the stored lead, and how to reach its agent (from the routing)."""
    mine = bool(routed.get("agent")) and routed.get("agent") == lead.agent
    return {**lead.to_json(),
            "agent_email": routed.get("agent_email") if mine else None,
            "agent_crm_user_id": routed.get("crm_user_id") if mine else None}


def sign(secret: bytes, stamp: int, body: bytes) -> str:
    """hex HMAC-SHA256 of ``"<stamp>.<body>"`` under ``secret``."""
    return hmac.new(secret, str(stamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, stamp: int, body: bytes) -> str:
    return f"t={stamp},v1={sign(secret, stamp, body)}"


def verify(secret: bytes | str, header: str | None, body: bytes, *, now: float,
           tolerance: float = TOLERANCE) -> bool:
    """What a receiver does: the header's ``v1`` matches the raw ``body`` under ``secret``
    (compared in constant time), and its ``t`` is within ``tolerance`` seconds of ``now``."""
    if not header:
        return False
    key = secret.encode() if isinstance(secret, str) else secret
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    try:
        stamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - stamp) > tolerance:
        return False
    return hmac.compare_digest(sign(key, stamp, body), parts.get("v1", ""))
