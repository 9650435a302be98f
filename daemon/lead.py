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
#: what the inquiry reader finds (daemon/qualifying/intent.py): also someone doing both
InquiryIntent = Literal["buy", "sell", "rent", "buy_and_sell"]
Urgency = Literal["now", "soon", "later", "browsing"]
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
    #: the offline check of the address against the USPS ZIP code database
    #: (daemon/qualifying/address.py): ``True`` the parts agree, ``False`` they contradict
    #: each other or the database, ``None`` nothing to check; ``address_check`` says why
    #: (``None`` with no address at all); ``address_usps`` is the street in USPS style
    #: (``123 MAIN ST APT 4B``), beside ``address``, which stays as the lead wrote it
    address_verified: bool | None = None
    address_check: str | None = None
    address_usps: str | None = None
    #: filled by the geocoder, if one is configured (daemon/providers/geocoding.py), inline or
    #: later; ``None`` until then, and for an address the provider found no match for
    latitude: float | None = None
    longitude: float | None = None
    county: str | None = None
    #: the provider's own match quality (``ROOFTOP``, ``Exact``, …) and the provider's name
    geocode_quality: str | None = None
    geocoder: str | None = None

    def is_empty(self) -> bool:
        return all(v is None for v in dataclasses.astuple(self))

    def with_geocode(self, geo: Geocode) -> Property:
        """This property with a geocoder's answer on it (unchanged when it found no match)."""
        if not geo.found:
            return self
        return dataclasses.replace(self, latitude=geo.latitude, longitude=geo.longitude,
                                   county=geo.county, geocode_quality=geo.quality,
                                   geocoder=geo.provider)


@dataclass(frozen=True)
class Geocode:
    """One geocoder's answer about one address: where it is, or that it found no match
    (``found`` False, the rest ``None``) — a result, not an error, and cached like one."""

    provider: str
    found: bool
    latitude: float | None = None
    longitude: float | None = None
    county: str | None = None
    #: the provider's own word for how good the match is
    quality: str | None = None
    matched_address: str | None = None


@dataclass(frozen=True)
class Profile:
    """One social or professional profile of the person: the network (``linkedin``,
    ``twitter``, ``facebook``, ``github``, …) and its https URL."""

    network: str
    url: str


@dataclass(frozen=True)
class Enrichment:
    """What a person-enrichment provider says about the lead's person (looked up by email):
    where they work, as what, and their public profiles — context for the agent, never a
    contact value (it never changes the lead's name, email or phone). ``found`` False is
    "no match" (the rest empty): a result, cached like one, never put on a lead.
    ``likelihood`` is the provider's own confidence (People Data Labs: 1–10), if it gives one."""

    provider: str
    found: bool
    company: str | None = None
    title: str | None = None
    profiles: tuple[Profile, ...] = ()
    likelihood: int | None = None

    def headline(self) -> str | None:
        """``Broker Associate at Compass``, ``Compass`` or ``Broker Associate``; ``None``: neither."""
        if self.title and self.company:
            return f"{self.title} at {self.company}"
        return self.title or self.company

    def summary(self) -> str:
        """One line of plain text for an agent (the DM, the CRM note): ``Broker Associate at
        Compass · linkedin https://… · twitter https://… (peopledatalabs, likelihood 8)``."""
        parts = [self.headline() or "", *(f"{p.network} {p.url}" for p in self.profiles)]
        source = self.provider + (f", likelihood {self.likelihood}" if self.likelihood is not None else "")
        return " · ".join(x for x in parts if x) + f" ({source})"

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "company": self.company, "title": self.title,
                "profiles": [{"network": p.network, "url": p.url} for p in self.profiles],
                "likelihood": self.likelihood}


@dataclass(frozen=True)
class ScoreLine:
    """One scoring condition that matched, and the points it gave."""

    name: str
    points: int


@dataclass(frozen=True)
class Inquiry:
    """What the lead's message says about the transaction (``daemon/qualifying/intent.py``).

    ``intent`` may be ``buy_and_sell``; ``urgency`` is ``now`` (within ~11 days), ``soon``
    (12-90 days), ``later``, ``browsing`` (hedged, no timeframe) or ``None`` (no cue);
    ``pre_approved``/``cash``/``investor`` are ``None`` when not said (and always for a
    lead that is not a purchase); ``timeline_days`` counts from the lead's received date.
    ``evidence`` says which phrase decided each finding; it is not part of the JSON contract.
    """

    intent: InquiryIntent | None = None
    urgency: Urgency | None = None
    pre_approved: bool | None = None
    cash: bool | None = None
    investor: bool | None = None
    timeline_days: int | None = None
    evidence: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"intent": self.intent, "urgency": self.urgency, "pre_approved": self.pre_approved,
                "cash": self.cash, "investor": self.investor, "timeline_days": self.timeline_days}


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
    inquiry: Inquiry = field(default_factory=Inquiry)
    #: what the enrichment provider said about the person, if one is configured and found
    #: them (daemon/providers/enrichment.py), inline or later; ``None`` otherwise
    enrichment: Enrichment | None = None

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
                "address_verified": self.property.address_verified,
                "address_check": self.property.address_check,
                "address_usps": self.property.address_usps,
                "latitude": self.property.latitude,
                "longitude": self.property.longitude,
                "county": self.property.county,
                "geocode_quality": self.property.geocode_quality,
                "geocoder": self.property.geocoder,
            },
            "budget_min": _number(self.budget_min),
            "budget_max": _number(self.budget_max),
            "intent": self.intent,
            "inquiry": self.inquiry.to_json(),
            "enrichment": self.enrichment.to_json() if self.enrichment else None,
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
