"""Scoring: weighted conditions from ``rules/scoring.yaml`` summed into a score and a tier.

Besides tests on the lead's fields, conditions test what the inquiry reader
(``daemon/qualifying/intent.py``) found in the message: ``urgency_is``, ``finding`` /
``finding_false`` (pre_approved, cash, investor said yes / said no) and
``timeline_within_days``. Those understand "not pre-approved yet" and "no rush", which
``contains_any`` (kept for brokerages that want plain keywords) does not.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon import yamlfile
from daemon.lead import Lead, ScoreLine, Tier

#: Lead fields a condition may test; property fields as ``property.price``.
SCORABLE = (
    "full_name", "first_name", "last_name", "email", "phone", "message", "intent", "source",
    "budget_min", "budget_max", "property.address", "property.city", "property.state",
    "property.postal_code", "property.price", "property.mls_id", "property.url",
    "property.address_verified", "property.address_check", "property.address_usps",
)
#: Lead fields that are true, false or unknown (``None``), for ``is_true``
YesNoField = Literal["property.address_verified"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Threshold(_Strict):
    field: str
    value: float

    @field_validator("field")
    @classmethod
    def _known(cls, v: str) -> str:
        return _known_field(v)


class Keywords(_Strict):
    field: str
    keywords: list[str] = Field(min_length=1)

    @field_validator("field")
    @classmethod
    def _known(cls, v: str) -> str:
        return _known_field(v)


def _known_field(v: str) -> str:
    if v not in SCORABLE:
        raise ValueError(f"unknown field `{v}`; scorable fields: {', '.join(SCORABLE)}")
    return v


CONDITIONS = ("present", "absent", "above", "below", "contains_any", "source_in", "intent_is", "urgency_is",
              "finding", "finding_false", "timeline_within_days", "is_true")

#: what the inquiry reader can say yes or no to (``Lead.inquiry``)
Finding = Literal["pre_approved", "cash", "investor"]
IntentName = Literal["buy", "sell", "rent", "buy_and_sell"]
UrgencyName = Literal["now", "soon", "later", "browsing"]


class Condition(_Strict):
    """One weighted condition. Exactly one test key."""

    name: str
    points: int = Field(ge=-100, le=100)
    present: str | None = None
    absent: str | None = None
    above: Threshold | None = None
    below: Threshold | None = None
    contains_any: Keywords | None = None
    source_in: list[str] | None = None
    #: the lead's intent; ``buy_and_sell`` tests the reader's finding (such a lead's ``intent`` is sell)
    intent_is: list[IntentName] | None = None
    urgency_is: list[UrgencyName] | None = Field(None, min_length=1)
    finding: Finding | None = None
    finding_false: Finding | None = None
    #: the lead wants to have acted within this many days of the email's date
    timeline_within_days: int | None = Field(None, ge=0)
    #: a yes/no field that is true (``None``, not known, does not hold)
    is_true: YesNoField | None = None

    @field_validator("present", "absent")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        return None if v is None else _known_field(v)

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        chosen = [c for c in CONDITIONS if getattr(self, c) is not None]
        if len(chosen) != 1:
            raise ValueError(f"give exactly one of {', '.join(CONDITIONS)} (found {', '.join(chosen) or 'none'})")
        return self

    def holds(self, lead: Lead) -> bool:
        if self.present is not None:
            return _get(lead, self.present) is not None
        if self.absent is not None:
            return _get(lead, self.absent) is None
        if self.above is not None:
            v = _get(lead, self.above.field)
            return isinstance(v, int | float) and v > self.above.value
        if self.below is not None:
            v = _get(lead, self.below.field)
            return isinstance(v, int | float) and v < self.below.value
        if self.contains_any is not None:
            text = str(_get(lead, self.contains_any.field) or "").casefold()
            return any(k.casefold() in text for k in self.contains_any.keywords)
        if self.source_in is not None:
            return lead.source in self.source_in
        if self.intent_is is not None:
            return lead.intent in self.intent_is or lead.inquiry.intent in self.intent_is
        if self.urgency_is is not None:
            return lead.inquiry.urgency in self.urgency_is
        if self.finding is not None:
            return getattr(lead.inquiry, self.finding) is True
        if self.finding_false is not None:
            return getattr(lead.inquiry, self.finding_false) is False
        if self.timeline_within_days is not None:
            days = lead.inquiry.timeline_days
            return days is not None and days <= self.timeline_within_days
        if self.is_true is not None:
            return _get(lead, self.is_true) is True
        raise AssertionError("validated to have one test")


class Tiers(_Strict):
    low_below: int = 20
    hot_above: int = 75

    @model_validator(mode="after")
    def _ordered(self) -> Tiers:
        if self.low_below > self.hot_above:
            raise ValueError("low_below must not be greater than hot_above")
        return self


class Scoring(_Strict):
    """The scoring file: conditions and tier thresholds."""

    tiers: Tiers = Field(default_factory=Tiers)
    conditions: list[Condition] = Field(default_factory=list)

    def score(self, lead: Lead) -> Lead:
        """``lead`` with its score, tier and the conditions that gave points."""
        lines = tuple(ScoreLine(c.name, c.points) for c in self.conditions if c.holds(lead))
        total = max(0, min(100, sum(line.points for line in lines)))
        tier: Tier
        if total < self.tiers.low_below:
            tier = "low"
        elif total > self.tiers.hot_above:
            tier = "hot"
        else:
            tier = "standard"
        return dataclasses.replace(lead, score=total, tier=tier, score_breakdown=lines)


def _get(lead: Lead, name: str) -> Any:
    if name.startswith("property."):
        return getattr(lead.property, name.split(".", 1)[1])
    return getattr(lead, name)


def load_scoring(path: Path) -> Scoring:
    """Load ``scoring.yaml``; a missing file means no conditions (every lead scores 0).

    Raises ``RuleError`` naming the file, line and key of the first problem.
    """
    if not path.exists():
        return Scoring()
    return yamlfile.load_rule_model(path, Scoring)[0]
