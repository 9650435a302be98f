"""The value types every part of leadpipe shares.

This module imports nothing of ours, so ``storage/`` and ``notifiers/`` can depend on it
without a cycle. Everything here is a frozen dataclass: stages return new values, they
never mutate the ones they were given.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Intent = Literal["buy", "sell", "rent"]
Tier = Literal["hot", "standard", "low"]

INTENTS: tuple[str, ...] = ("buy", "sell", "rent")
TIERS: tuple[str, ...] = ("hot", "standard", "low")


#: The source of a dead letter no rule and no sender names (for counts per source).
UNMATCHED = "unknown"
#: The source of a lead sent from the prospect's own mailbox (a form that sends as them).
DIRECT_SOURCE = "direct"


class Origin(enum.StrEnum):
    """Where an inbound email came from."""

    IMAP = "imap"
    DIRECTORY = "directory"
    CLI = "cli"
    WEBHOOK = "webhook"


@dataclass(frozen=True)
class RawEmail:
    """The bytes of one inbound email and where they came from.

    ``mailbox``/``uidvalidity``/``uid`` are set for IMAP, ``path`` for files.
    """

    data: bytes
    origin: Origin
    received_at: datetime
    mailbox: str | None = None
    folder: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None
    path: str | None = None


@dataclass(frozen=True)
class Property:
    """The property a lead asked about; every part optional."""

    address: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    price: float | None = None
    mls_id: str | None = None
    url: str | None = None

    def is_empty(self) -> bool:
        return all(v is None for v in dataclasses.astuple(self))


@dataclass(frozen=True)
class ScoreLine:
    """One scoring condition that matched, and the points it gave."""

    name: str
    points: int


@dataclass(frozen=True)
class Lead:
    """One clean lead, the output of parse → normalize → score.

    Absent values are ``None``, never empty strings. ``phone`` is E.164.
    """

    source: str
    rule_version: str
    message_id: str | None = None
    received_at: datetime | None = None
    full_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    property: Property = field(default_factory=Property)
    budget_min: float | None = None
    budget_max: float | None = None
    intent: Intent | None = None
    message: str | None = None
    score: int = 0
    tier: Tier = "standard"
    warnings: tuple[str, ...] = ()
    score_breakdown: tuple[ScoreLine, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The lead contract of DESIGN.md, as a JSON-ready dict."""
        return {
            "source": self.source,
            "rule_version": self.rule_version,
            "message_id": self.message_id,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "full_name": self.full_name,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
            "phone": self.phone,
            "property": {
                "address": self.property.address,
                "city": self.property.city,
                "state": self.property.state,
                "postal_code": self.property.postal_code,
                "price": _number(self.property.price),
                "mls_id": self.property.mls_id,
                "url": self.property.url,
            },
            "budget_min": _number(self.budget_min),
            "budget_max": _number(self.budget_max),
            "intent": self.intent,
            "message": self.message,
            "score": self.score,
            "tier": self.tier,
            "warnings": list(self.warnings),
        }


def _number(value: float | None) -> float | int | None:
    """Whole dollar amounts print as integers (450000, not 450000.0)."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True)
class StoredLead:
    """A lead as stored: the contract plus the row's identity and routing state."""

    id: int
    lead: Lead
    status: str
    agent: str | None = None
    claimed_by: str | None = None
    inbound_email_id: int | None = None
    created_at: datetime | None = None
    assigned_at: datetime | None = None
    offered_at: datetime | None = None
    claim_deadline: datetime | None = None
    claimed_at: datetime | None = None
    repeat_of: int | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, **self.lead.to_json()}
        out.update(status=self.status, agent=self.agent, claimed_by=self.claimed_by)
        return out


class DeadLetterReason(enum.StrEnum):
    """Why an email could not become a lead. Stable codes: tools filter on them."""

    NO_MATCHING_RULE = "no_matching_rule"
    MISSING_REQUIRED_FIELD = "missing_required_field"
    EMPTY_BODY = "empty_body"
    UNREADABLE_EMAIL = "unreadable_email"
    #: a webhook body that is not JSON (or not UTF-8)
    UNREADABLE_PAYLOAD = "unreadable_payload"
    RULE_TIMEOUT = "rule_timeout"
    PARSER_ERROR = "parser_error"


@dataclass(frozen=True)
class DeadLetter:
    """A parse failure: the reason code, a sentence for people, and what was found."""

    reason: DeadLetterReason
    detail: str
    rule: str | None = None
    fields_found: Mapping[str, str] = field(default_factory=dict)
    fields_missing: tuple[str, ...] = ()
    #: the source it belongs to when no rule ran: a sender's domain (``nestfinder.example``),
    #: so ``dlq replay --source`` finds it once that source's rule is promoted
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason.value, "detail": self.detail, "rule": self.rule}

    @property
    def source_hint(self) -> str | None:
        """The source this dead letter is filed under: its rule's, else its sender's."""
        return self.rule.split(" v")[0] if self.rule else self.source


@dataclass(frozen=True)
class Ignored:
    """An email that is not a lead and needs no one's attention (auto-reply, bounce…)."""

    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason}


ParseOutcome = Lead | DeadLetter | Ignored


@dataclass(frozen=True)
class StoredDeadLetter:
    """A dead letter as stored, with the email it came from."""

    id: int
    inbound_email_id: int
    dead_letter: DeadLetter
    status: str
    created_at: datetime
    source_hint: str | None = None
    message_id: str | None = None
    subject: str | None = None
    resolved_lead_id: int | None = None
    replay_count: int = 0
