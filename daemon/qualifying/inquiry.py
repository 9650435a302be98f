"""The inquiry on the lead: what its message says (``daemon.qualifying.intent``'s built-in
reading) and, where a model is configured for it, what the model read. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from daemon.lead import Intent, Lead
from daemon.qualifying.intent import read_inquiry

#: the lead contract's ``intent`` for each reading: someone who will sell and buy is a
#: seller first (the sale usually has to happen first, and it is the listing an agent wins)
LEAD_INTENT: dict[str, Intent] = {"buy": "buy", "sell": "sell", "rent": "rent", "buy_and_sell": "sell"}


def with_inquiry(lead: Lead, *, context: str | None = None) -> Lead:
    """``lead`` with its :class:`Inquiry` read from its message, and its ``intent`` from the
    reading when no rule field gave one. ``context`` adds to the lead's source what is known of
    where it came from (the email's subject). Relative dates count from ``received_at``."""
    today = lead.received_at.date() if lead.received_at is not None else None
    hint = " ".join(filter(None, (lead.source.replace("_", " "), context)))
    found = read_inquiry(lead.message, today=today, context=hint, intent=lead.intent)
    intent = lead.intent if lead.intent is not None else (
        LEAD_INTENT[found.intent] if found.intent is not None else None)
    return dataclasses.replace(lead, intent=intent, inquiry=found)


def with_model_inquiry(lead: Lead, answer: Mapping[str, Any], *, rule_intent: Intent | None,
                       who: str) -> Lead:
    """``lead`` (already read by ``with_inquiry``) with what a model read in its message: each
    finding the model states (``answer``: ``Inquiry`` field names, checked against the
    schema by ``daemon.providers.model``) takes the built-in one's place, and the evidence
    says the model decided it. ``rule_intent``, a rule's own intent field, still wins."""
    said = {k: v for k, v in answer.items() if k in _MODEL_FINDINGS and v is not None
            and not (k == "intent" and rule_intent is not None)}  # the rule's intent stands
    if not said:
        return lead
    evidence = tuple(e for e in lead.inquiry.evidence if e.split(" ", 1)[0] not in said)
    found = dataclasses.replace(lead.inquiry, **said,
                                evidence=(*evidence, *(f"{k} {v}: {who}" for k, v in said.items())))
    intent = rule_intent if rule_intent is not None else (
        LEAD_INTENT[found.intent] if found.intent is not None else lead.intent)
    return dataclasses.replace(lead, intent=intent, inquiry=found)


_MODEL_FINDINGS = ("intent", "urgency", "pre_approved", "cash", "investor", "timeline_days")
