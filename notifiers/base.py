"""The notifier interface: one small class per outside system, chosen by name from config.

A notifier performs one ``Action`` for one lead (or for no lead: an alert) and says how it
went. It never sleeps and never retries by itself: retries are outbox rows, scheduled by
the dispatcher (daemon/delivery/dispatch.py). Notifiers import only ``daemon.lead`` and
``daemon.errors``, so they can be tested, and swapped, without the rest of leadpipe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

from daemon.lead import StoredLead

#: how much of a server's answer goes into the delivery log
RESPONSE_LIMIT = 2048


@dataclass(frozen=True)
class Action:
    """One thing to do, as its outbox row holds it.

    ``name`` is the notifier's own action name (``claim_offer``, ``dm_agent``, …);
    ``params`` is the row's payload; ``earlier`` holds what the same notifier's delivered
    actions for the same lead returned, by action name (the Slack message a later update
    edits, the CRM contact a later note attaches to). ``attempt`` counts this one: above 1,
    an earlier attempt may have been carried out although its answer never came back (a
    timeout, or a sender killed after the call, whose lease then ran out) — as may one
    before a ``deliveries retry`` reset the count (``tried_before``) —, so a notifier
    whose call is not idempotent looks first for what it did since ``since`` (when the row
    was written). ``person`` holds what the same notifier's delivered ``name`` actions
    returned for the same person's earlier leads (same phone or email), newest first.
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str = ""
    attempt: int = 1
    earlier: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    since: datetime | None = None
    person: tuple[Mapping[str, Any], ...] = ()
    #: attempts were made at this row before its count was reset (``deliveries retry``)
    tried_before: bool = False


@dataclass(frozen=True)
class Outcome:
    """How one attempt went: delivered, retry (no earlier than ``retry_at``), or failed for good.

    ``result`` is kept on the outbox row (ids the other system gave back); ``response``
    is the first 2 KB of its answer, for the delivery log.
    """

    kind: Literal["delivered", "retry", "failed"]
    status_code: int | None = None
    response: str | None = None
    result: Mapping[str, Any] = field(default_factory=dict)
    retry_at: datetime | None = None
    error: str | None = None

    @classmethod
    def delivered(cls, *, status_code: int | None = None, response: str | None = None,
                  result: Mapping[str, Any] | None = None) -> Outcome:
        return cls("delivered", status_code, clip(response), dict(result or {}))

    @classmethod
    def retry(cls, error: str, *, retry_at: datetime | None = None,
              status_code: int | None = None, response: str | None = None) -> Outcome:
        return cls("retry", status_code, clip(response), {}, retry_at, error)

    @classmethod
    def failed(cls, error: str, *, status_code: int | None = None,
               response: str | None = None) -> Outcome:
        return cls("failed", status_code, clip(response), {}, None, error)


def clip(text: str | None) -> str | None:
    return None if text is None else text[:RESPONSE_LIMIT]


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` calls per ``per`` seconds, as an outside system documents it.

    The dispatcher paces each notifier with a token bucket per limit (daemon/delivery/pacing.py)."""

    requests: int
    per: float

    @property
    def rate(self) -> float:
        """Calls per second."""
        return self.requests / self.per

    def __str__(self) -> str:
        return f"{self.requests}/{self.per:g}s"


#: The routing facts a lead destination's rows carry as their payload (daemon/routing/assign.py):
#: ``status`` (assigned | claimed | drip | unassigned | new), ``why`` (round_robin,
#: claimed, timeout, repeat, drip, unassigned, routing_off), ``agent``, ``agent_email``
#: and ``crm_user_id`` (the agent's user id in the CRM; ``None`` without an agent).
Routed = Mapping[str, Any]


def agent_text(routed: Routed) -> str | None:
    """The routed agent as the CRM's reader needs it: ``Ana Ruiz <ana@example.com>, CRM
    user 17`` (what is known of the three); ``None`` without an agent."""
    name = routed.get("agent")
    if not name:
        return None
    text = str(name)
    if routed.get("agent_email"):
        text += f" <{routed['agent_email']}>"
    if routed.get("crm_user_id"):
        text += f", CRM user {routed['crm_user_id']}"
    return text


class Notifier(Protocol):
    """One outside system. ``deliver`` returns an ``Outcome`` or raises a ``DeliveryError``
    (``TransientDeliveryError`` to be retried, ``PermanentDeliveryError`` for good); any
    other exception is treated as transient by the dispatcher."""

    name: ClassVar[str]
    #: the action names ``deliver`` understands
    actions: ClassVar[frozenset[str]]

    @classmethod
    def from_config(cls, options: Mapping[str, Any]) -> Notifier:
        """Build it from its configuration keys; raises ``ConfigError`` for a bad one."""
        ...

    def deliver(self, lead: StoredLead | None, action: Action) -> Outcome: ...

    #: the documented limits, by bucket name (``{}``: not paced)
    rate_limits: Mapping[str, RateLimit]

    # Optional: ``per_person: ClassVar[bool] = True`` makes the dispatcher send one
    # person's rows of an action one at a time, earliest lead first, and fill
    # ``Action.person`` (daemon/delivery/dispatch.py).
    # Optional: a classmethod ``update_actions(changed: str) -> tuple[str, ...]`` names the
    # actions that tell the system a lead it was sent has changed (``changed``: ``geocode``,
    # ``enrichment``); without it a late answer reaches only rows not sent yet
    # (daemon/providers/asking.py).

    def cost(self, action: str) -> Mapping[str, int]:
        """How many calls of each rate-limit bucket one ``action`` makes (at most, usually)."""
        ...

    @classmethod
    def lead_actions(cls, routed: Routed) -> tuple[str, ...]:
        """The actions every routed lead takes with this notifier, one outbox row each,
        written by the router in the transaction that routes the lead (``()``: none; Slack's
        rows follow the claim flow instead)."""
        ...
