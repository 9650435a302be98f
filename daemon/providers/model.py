"""A language model the brokerage already runs or rents, spoken to as OpenAI's chat
completions: a local Ollama or vLLM server, or a hosted endpoint.

Optional, and never trusted: leadpipe works fully without it, and what it answers is only a
proposal. ``read_lead`` asks it for the lead in an email no rule and no reader could read;
``read_inquiry`` for what the person wants. Both ask for JSON that fits a schema
(``response_format: json_schema``, which OpenAI, vLLM and Ollama's OpenAI-compatible
endpoint honour) and check the answer again here: a field of the wrong type or an unknown
key is dropped. Whether a value is *in the email* is the reading stage's check
(``daemon.reading.grounding``), done by the pipeline before anything is kept.

Each call is bounded by ``timeout`` seconds (per read of the answer) and by the gate's rate
(``rate`` calls per second; a call that is not free at once is not made, so the worker never
waits for a turn); errors
are ours: ``TransientDeliveryError`` for timeouts, refused connections, 429 (with its
``Retry-After``, which also holds the gate) and 5xx, ``PermanentDeliveryError`` for a bad
key or a bad request. A caller treats either as "the model did not answer".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.config import ModelSettings
from daemon.errors import PermanentDeliveryError, TransientDeliveryError
from daemon.providers.gate import Gate
from notifiers.http import JsonApi

log = logging.getLogger(__name__)

#: the most of an email's text a model is shown (the start of a lead email says who wrote)
MAX_TEXT = 12_000

_TEXT = {"type": ["string", "null"]}
_NUMBER = {"type": ["number", "null"]}
_BOOL = {"type": ["boolean", "null"]}

LEAD_FIELDS: dict[str, Any] = {
    "is_lead": {"type": "boolean"},
    "full_name": _TEXT, "email": _TEXT, "phone": _TEXT, "message": _TEXT,
    "address": _TEXT, "city": _TEXT, "state": _TEXT, "postal_code": _TEXT,
    "price": _NUMBER, "budget_min": _NUMBER, "budget_max": _NUMBER,
    "intent": {"type": ["string", "null"], "enum": ["buy", "sell", "rent", None]},
}


def _schema(properties: dict[str, Any]) -> dict[str, Any]:
    """A strict object schema: every property required (null allowed), no others."""
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


LEAD_SCHEMA = _schema(LEAD_FIELDS)
LEAD_PROMPT = (
    "You read emails sent to a real-estate brokerage's lead inbox. Say whether the email is an "
    "inquiry from a person (a lead) or something else (a newsletter, a receipt, a report, an "
    "automated notice), and copy the lead's details exactly as the email writes them: their "
    "name, email address, phone number, the property's street address, city, state and ZIP "
    "code, the price, the budget, and the person's own message. Never guess: a detail the "
    "email does not state is null. Never use the brokerage's, the portal's or an agent's "
    "details as the lead's. intent is buy, sell or rent, or null. Answer with JSON only."
)

INQUIRY_FIELDS: dict[str, Any] = {
    "intent": {"type": ["string", "null"], "enum": ["buy", "sell", "rent", "buy_and_sell", None]},
    "urgency": {"type": ["string", "null"], "enum": ["now", "soon", "later", "browsing", None]},
    "pre_approved": _BOOL, "cash": _BOOL, "investor": _BOOL,
    "timeline_days": {"type": ["integer", "null"], "minimum": 0},
}
INQUIRY_SCHEMA = _schema(INQUIRY_FIELDS)
INQUIRY_PROMPT = (
    "You read the message a person wrote to a real-estate brokerage. Say what they want "
    "(intent: buy, sell, rent, buy_and_sell), how soon (urgency: now = within about two "
    "weeks or 'asap', soon = within about three months, later = further out, browsing = "
    "just looking or no plans), whether they say they are pre-approved or pre-qualified "
    "for a mortgage, paying cash, or buying as an investor (true, false when they say they "
    "are not or not yet, null when they do not say), and in how many days they want to "
    "move or act counting from {today} (null when they do not say). Negation and hedging "
    "matter: 'not pre-approved yet' is false, 'no rush' is not now. Answer with JSON only."
)


class ChatModel:
    """One OpenAI-compatible chat-completions endpoint (``POST {base_url}/chat/completions``)."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 timeout: float = 20.0, rate: float = 1.0, gate: Gate | None = None,
                 uses: Iterable[str] = ("reading",)):
        self.model = model
        #: what the pipeline asks it (``reading``, ``intent``)
        self.uses = frozenset(uses)
        self.timeout = timeout
        self.gate = gate or Gate(rate)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.api = JsonApi("model", base_url, timeout=timeout, connect_timeout=min(5.0, timeout),
                           headers=headers)

    @classmethod
    def from_settings(cls, settings: ModelSettings) -> ChatModel | None:
        """From ``model:`` in the configuration; ``None`` when no ``base_url`` is set."""
        if not settings.base_url:
            return None
        return cls(settings.base_url, settings.model, api_key=settings.api_key,
                   timeout=settings.timeout.total_seconds(), rate=settings.rate, uses=settings.use_for)

    def close(self) -> None:
        self.api.close()

    def ask_json(self, system: str, user: str, schema: Mapping[str, Any], *, name: str) -> dict[str, Any]:
        """The model's JSON answer to ``user`` under ``system``, checked against ``schema``'s
        properties (keys it does not name, and values of the wrong type, are left out).

        Raises ``TransientDeliveryError`` / ``PermanentDeliveryError``; an answer that is not
        a JSON object is a ``PermanentDeliveryError`` (asking again would not mend it).
        """
        # never waits for a turn: the worker goes on without the model (the built-in
        # reading stands; an unreadable email stays a dead letter, replayable)
        if not self.gate.try_take():
            wait = self.gate.wait()
            raise TransientDeliveryError(f"model: rate limit, next call in {wait:.1f}s",
                                         retry_after=datetime.now(UTC) + timedelta(seconds=wait))
        body = {
            "model": self.model,
            "temperature": 0,
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": user[:MAX_TEXT]}],
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": name, "strict": True, "schema": schema}},
        }
        try:
            resp = self.api.call("POST", "/chat/completions", json_body=body, timeout=self.timeout)
        except TransientDeliveryError as exc:
            if exc.retry_after is not None:
                self.gate.hold((exc.retry_after - datetime.now(UTC)).total_seconds())
            else:
                self.gate.hold_after_failure()
            raise
        self.gate.answered()
        try:
            reply = resp.json()
        except ValueError as exc:  # a proxy's or captive portal's page answered 200
            raise TransientDeliveryError(f"model: the answer is not JSON ({exc})") from exc
        return _checked(_content(reply), schema)

    def read_lead(self, text: str) -> dict[str, Any]:
        """What the model reads as the lead in an email's ``text`` (unchecked against it)."""
        return self.ask_json(LEAD_PROMPT, text, LEAD_SCHEMA, name="lead")

    def read_inquiry(self, message: str, *, today: str) -> dict[str, Any]:
        """What the model reads in a lead's ``message``; ``today`` an ISO date."""
        return self.ask_json(INQUIRY_PROMPT.format(today=today), message, INQUIRY_SCHEMA, name="inquiry")



def _content(reply: Any) -> dict[str, Any]:
    """The JSON object in a chat completion's first choice."""
    try:
        content = reply["choices"][0]["message"]["content"]
        answer = json.loads(content) if isinstance(content, str) else content
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PermanentDeliveryError(f"model: the answer is not a chat completion with JSON content ({exc})") from exc
    if not isinstance(answer, dict):
        raise PermanentDeliveryError("model: the answer's content is not a JSON object")
    return answer


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "number": (int, float), "integer": (int,), "boolean": (bool,),
}


def _checked(answer: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of ``answer`` that ``schema`` names, with values of an allowed type and enum."""
    kept: dict[str, Any] = {}
    for key, spec in schema["properties"].items():
        value = answer.get(key)
        if value is None:
            continue
        types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
        allowed = tuple(t for name in types for t in _TYPES.get(name, ()))
        if isinstance(value, bool) and bool not in allowed:
            log.warning("model: %s has the wrong type; left out", key)
            continue
        if not isinstance(value, allowed) or ("enum" in spec and value not in spec["enum"]):
            log.warning("model: %s is not one of the allowed values; left out", key)
            continue
        kept[key] = value
    return kept
