"""``POST /webhooks/{source}``: leads that arrive as JSON.

A request goes through, in order:

1. the source: ``rules/webhooks/<source>.yaml`` must be in force (else 404; 503 while its
   file does not load, so the provider retries after the fix);
2. the size: a body over ``webhooks.max_body`` (1 MB) is refused with 413;
3. authentication, as the mapping's ``auth:`` says, with the secret from the
   configuration (``webhooks.sources.<source>.secret`` / ``secret_file``): a shared token
   in a header, or an HMAC of the raw body (hex or base64, optionally Stripe-style
   ``t=<unix>,v1=<sig>`` over ``<t>.<body>`` within a tolerance). A failure is 401 and
   nothing is stored;
4. the raw body is committed to ``inbound_emails`` (origin ``webhook``) under the key of
   the provider's event id (the mapping's ``event_id`` path), else of the body's hash:
   the same event posted twice is stored once;
5. it is processed inline by the same Worker as an email (parse with the mapping,
   normalize, score, store, route), and the answer says what became of it:
   200 ``{"result": "lead", "lead_id": …}`` (``duplicate: true`` for an event seen
   before), or 422 ``{"result": "dead_letter", "reason": …, "detail": …}`` — the body is
   kept as a dead letter to replay after the mapping is fixed. 202 ``pending`` when
   another worker holds the row and has not finished within a few seconds; 503 when the
   database is unavailable (nothing promised: the provider should retry).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from daemon.config import WebhookSettings
from daemon.errors import StorageError
from daemon.ops.metrics import Metrics
from daemon.pipeline import Engine, Worker
from daemon.reading.mappings import HmacAuth, TokenAuth, WebhookMapping, webhook_raw
from storage import dead_letters, inbound, leads
from storage.db import Database

log = logging.getLogger(__name__)

#: how long a request waits for a row another worker is processing before answering 202
_SETTLE_SECONDS = 5.0


# -- authentication ------------------------------------------------------------------------


def auth_problem(auth: TokenAuth | HmacAuth, secret: str, headers: Any, body: bytes,
                 now: float) -> str | None:
    """Why the request is not from the source, or ``None`` when it is. ``headers`` is a
    case-insensitive mapping (Starlette's ``Headers``)."""
    value = headers.get(auth.header)
    if not value:
        return f"missing {auth.header} header"
    if isinstance(auth, TokenAuth):
        expected = (auth.prefix + secret).encode()
        return None if hmac.compare_digest(value.encode(), expected) else f"bad {auth.header}"
    signed = body
    candidates = [value]
    if auth.timestamp:
        parts: dict[str, list[str]] = {}
        for item in value.split(","):
            k, _, v = item.strip().partition("=")
            parts.setdefault(k.strip(), []).append(v.strip())
        stamp = (parts.get("t") or [""])[0]
        try:
            ts = float(stamp)
        except ValueError:
            return f"{auth.header} has no t=<timestamp>"
        if not abs(now - ts) <= auth.tolerance.total_seconds():  # also refuses nan
            return "stale timestamp"
        signed = stamp.encode() + b"." + body
        candidates = parts.get("v1") or []
    digest = hmac.new(secret.encode(), signed, getattr(hashlib, auth.algorithm)).digest()
    expected_text = (digest.hex() if auth.encoding == "hex" else base64.b64encode(digest).decode())
    for candidate in candidates:
        given = candidate.strip()
        if auth.prefix and given.startswith(auth.prefix):
            given = given[len(auth.prefix):]
        if auth.encoding == "hex":
            given = given.lower()
        if hmac.compare_digest(given.encode(), expected_text.encode()):
            return None
    return "bad signature"


def sign(auth: HmacAuth, secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value a sender computes (for tests and for documenting the scheme)."""
    signed = body if not auth.timestamp else f"{timestamp}".encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, getattr(hashlib, auth.algorithm)).digest()
    text = digest.hex() if auth.encoding == "hex" else base64.b64encode(digest).decode()
    if auth.timestamp:
        return f"t={timestamp},v1={auth.prefix}{text}"
    return auth.prefix + text


def dedup_key(source: str, event_id: str | None, body: bytes) -> str:
    """``evt:`` + hash of (source, event id), else ``whk:`` + hash of (source, body)."""
    if event_id:
        return "evt:" + hashlib.sha256(f"{source}\0{event_id}".encode()).hexdigest()
    return "whk:" + hashlib.sha256(source.encode() + b"\0" + body).hexdigest()


# -- answers -------------------------------------------------------------------------------


class WebhookResult(BaseModel):
    """What became of a posted body."""

    result: Literal["lead", "dead_letter", "ignored", "pending"]
    inbound_id: int
    duplicate: bool
    lead_id: int | None = None
    tier: str | None = None
    dead_letter_id: int | None = None
    reason: str | None = None
    detail: str | None = None


class WebhookError(BaseModel):
    """Why a request was refused before anything was stored."""

    error: str


def _answer(body: dict[str, Any]) -> int:
    return {"lead": 200, "ignored": 200, "dead_letter": 422, "pending": 202}[body["result"]]


def _outcome(db: Database, inbound_id: int, duplicate: bool) -> dict[str, Any] | None:
    """The stored outcome of one row as an answer; ``None`` while it is still pending."""
    with db.session() as s:
        state = inbound.status_of(s, inbound_id)
        base = {"inbound_id": inbound_id, "duplicate": duplicate}
        if state in (None, "pending"):
            return None
        lead = leads.by_inbound(s, inbound_id)
        if lead is not None:
            return {**base, "result": "lead", "lead_id": lead.id, "tier": lead.lead.tier}
        if state == "ignored":
            return {**base, "result": "ignored"}
        dl_id = dead_letters.open_for_inbound(s, inbound_id)
        dead = dead_letters.get(s, dl_id) if dl_id is not None else None
        if dead is None:
            return {**base, "result": "dead_letter", "reason": "parser_error",
                    "detail": "this body could not be processed"}
        return {**base, "result": "dead_letter", "dead_letter_id": dead.id,
                "reason": dead.dead_letter.reason.value, "detail": dead.dead_letter.detail}


# -- the endpoint --------------------------------------------------------------------------


class Webhooks:
    """The endpoint's work, outside HTTP: look up, authenticate, store, process."""

    def __init__(self, db: Database, engine: Callable[[], Engine], worker: Worker,
                 settings: WebhookSettings, *, metrics: Metrics | None = None,
                 clock: Callable[[], float] = time.time):
        self.db = db
        self.engine = engine
        self.worker = worker
        self.settings = settings
        self.metrics = metrics
        self.clock = clock

    def secret(self, source: str) -> str | None:
        entry = self.settings.sources.get(source)
        return entry.secret if entry is not None else None

    def store_and_process(self, mapping: WebhookMapping, body: bytes) -> dict[str, Any]:
        """Commit the body, then run it through the pipeline; the answer's body.
        Raises ``StorageError`` when the database cannot be reached."""
        source = mapping.source
        event_id = mapping.event_id_of(body)
        raw = webhook_raw(source, body, datetime.fromtimestamp(self.clock(), UTC))
        headers = inbound.InboundHeaders(message_id=event_id, subject=None, sender=source)
        try:
            with self.db.session() as s:
                stored = inbound.store(s, raw, headers, key=dedup_key(source, event_id, body))
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot store the body: {str(exc).splitlines()[0]}") from exc
        log.info("webhook %s: body #%s %s (%d bytes%s)", source, stored.id,
                 "stored" if stored.created else "already stored; not stored again", len(body),
                 f", event {event_id}" if event_id else "")
        duplicate = not stored.created
        answer = _outcome(self.db, stored.id, duplicate)
        if answer is not None:
            return answer
        self.worker.process(stored.id)  # None: another worker has it; wait for its outcome
        deadline = time.monotonic() + _SETTLE_SECONDS
        while (answer := _outcome(self.db, stored.id, duplicate)) is None:
            if time.monotonic() > deadline:
                return {"result": "pending", "inbound_id": stored.id, "duplicate": duplicate}
            time.sleep(0.05)
        return answer


def webhook_router(hooks: Webhooks) -> APIRouter:
    """The ``POST /webhooks/{source}`` route, its OpenAPI description naming the sources in
    force when it was built (sources added later are served too)."""
    router = APIRouter()
    sources = sorted(m.source for m in hooks.engine().webhooks)
    missing = [source for source in sources if not hooks.secret(source)]
    if len(missing) < len(sources):
        # webhooks are in use: a mapping left without its secret is likely a mistake
        for source in missing:
            log.warning("webhook %s: no secret configured (webhooks.sources.%s.secret or "
                        "secret_file): every request to /webhooks/%s is refused", source, source,
                        source)
    elif missing:
        # none configured (the shipped website_form mapping, unused): no warning at each start;
        # a request still gets 401 and a warning naming the key to set
        log.debug("webhooks: no source has a secret (webhooks.sources.SOURCE.secret); requests "
                  "to /webhooks/%s are refused", ", ".join(missing))
    header_names = sorted({m.auth.header for m in hooks.engine().webhooks})
    source_schema: dict[str, Any] = {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_.-]*$"}
    if sources:
        source_schema = {"type": "string", "enum": sources}
    errors = {"model": WebhookError}
    openapi_extra = {
        "parameters": [
            {"name": "source", "in": "path", "required": True, "schema": source_schema,
             "description": "the webhook source: rules/webhooks/<source>.yaml"},
            *({"name": h, "in": "header", "required": False, "schema": {"type": "string"},
               "description": "authentication (the token, or the HMAC signature), as the "
                              "source's mapping says"} for h in header_names),
        ],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"type": "object", "additionalProperties": True},
        }}},
    }

    @router.post(
        "/webhooks/{source}",
        tags=["webhooks"],
        summary="Post one lead as JSON",
        response_model=WebhookResult,
        responses={
            202: {"model": WebhookResult, "description": "stored; another worker is processing it"},
            401: {**errors, "description": "missing or bad token or signature; nothing stored"},
            404: {**errors, "description": "no such webhook source"},
            413: {**errors, "description": "the body is larger than webhooks.max_body"},
            422: {"model": WebhookResult,
                  "description": "the body does not fit the source's mapping; kept as a dead letter"},
            503: {**errors, "description": "the database or the source's mapping is unavailable; "
                                           "retry later"},
        },
        openapi_extra=openapi_extra,
    )
    async def receive(request: Request) -> JSONResponse:
        source = request.path_params["source"]
        status, body = await _handle(hooks, request, source)
        if hooks.metrics is not None:
            hooks.metrics.webhook(source if status != 404 else "unknown", status)
        headers = {"Retry-After": "30"} if status == 503 else None
        return JSONResponse(body, status_code=status, headers=headers)

    return router


async def _handle(hooks: Webhooks, request: Request, source: str) -> tuple[int, dict[str, Any]]:
    engine = hooks.engine()
    mapping = engine.webhooks.get(source)
    if mapping is None:
        broken = engine.webhooks.refused(source)
        if broken is not None:
            log.error("webhook %s: refused a request: its mapping does not load: %s", source, broken)
            return 503, {"error": f"the mapping of {source} does not load; retry later"}
        return 404, {"error": f"no webhook source {source!r}"}
    limit = hooks.settings.max_body
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return 413, {"error": f"the body is larger than {limit} bytes"}
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            return 413, {"error": f"the body is larger than {limit} bytes"}
    body = bytes(chunks)
    secret = hooks.secret(source)
    if not secret:
        log.warning("webhook %s: refused a request: no secret is configured "
                    "(webhooks.sources.%s.secret or secret_file)", source, source)
        return 401, {"error": "this source has no secret configured"}
    why = auth_problem(mapping.auth, secret, request.headers, body, hooks.clock())
    if why is not None:
        log.warning("webhook %s: refused a request from %s: %s", source,
                    request.client.host if request.client else "?", why)
        return 401, {"error": why}
    try:
        answer = await anyio.to_thread.run_sync(hooks.store_and_process, mapping, body)
    except (StorageError, SQLAlchemyError) as exc:
        log.error("webhook %s: %s", source, str(exc).splitlines()[0])
        return 503, {"error": "the database is unavailable; retry later"}
    return _answer(answer), json.loads(WebhookResult(**answer).model_dump_json())
