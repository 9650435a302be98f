"""The daemon's web endpoints: Slack interactivity (``POST /slack/actions``) and a health check.

Slack signs every request: ``X-Slack-Signature = v0=HMAC_SHA256(signing_secret,
"v0:{X-Slack-Request-Timestamp}:{raw body}")``. A request with a bad signature, a
timestamp more than 5 minutes away, or a signature already seen (a replay) gets 401 and
changes nothing. Signatures seen are rows in the database (``storage/slack_signatures.py``),
so a replay is refused after a restart and by every replica sharing the database. A good one is settled inline — the claim is one conditional UPDATE — and
answered at once; the Slack messages it causes go through the outbox, so the answer comes
well within Slack's 3 s.

``WebServer`` runs uvicorn in a thread on a socket it binds itself (port 0 picks a free
port, for tests), so a port already in use is an error at start, not a dead thread.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy.exc import SQLAlchemyError

from daemon.errors import ConfigError, StorageError
from daemon.routing.assign import Router
from storage import slack_signatures
from storage.db import Database

log = logging.getLogger(__name__)

#: Slack's own rule: requests older than this are refused
MAX_AGE = 300.0


class SignatureCheck:
    """Verifies Slack request signatures and refuses replays within ``max_age``.

    Each good signature is inserted into ``slack_signatures`` before the request is acted
    on; a second request with it fails that insert and is refused, whichever replica it
    reaches and whether or not the daemon restarted in between. A row is kept until the
    request's timestamp is ``max_age`` old (then the timestamp check refuses it anyway),
    and expired rows are deleted as new ones come in. Raises ``StorageError`` when the
    database cannot be reached (the request is then answered 503, and Slack shows the
    clicker an error).
    """

    def __init__(self, signing_secret: str, db: Database | None = None, *, max_age: float = MAX_AGE,
                 clock: Callable[[], float] = time.time):
        self._secret = signing_secret.encode()
        self.db = db
        self.max_age = max_age
        self.clock = clock

    def sign(self, timestamp: str, body: bytes) -> str:
        base = b"v0:" + timestamp.encode() + b":" + body
        return "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()

    def problem(self, timestamp: str | None, signature: str | None, body: bytes) -> str | None:
        """Why the request must be refused, or ``None`` when it is genuine and new (and is
        now recorded as seen). Without a database (``db=None``, for ``sign`` alone) a good
        signature raises ``RuntimeError``: it cannot be told from a replay."""
        if not timestamp or not signature:
            return "missing signature headers"
        try:
            ts = float(timestamp)
        except ValueError:
            return "bad timestamp"
        now = self.clock()
        if not math.isfinite(ts) or abs(now - ts) > self.max_age:
            return "stale timestamp"
        if not hmac.compare_digest(self.sign(timestamp, body), signature):
            return "bad signature"
        if self.db is None:
            raise RuntimeError("SignatureCheck without a database cannot tell a replay")
        try:
            with self.db.session() as s:
                new = slack_signatures.remember(
                    s, signature, at=datetime.fromtimestamp(now, UTC),
                    expires_at=datetime.fromtimestamp(ts + self.max_age, UTC))
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot record the Slack signature: {exc}") from exc
        return None if new else "replayed request"


def make_app(router: Router, signing_secret: str | None, *,
             clock: Callable[[], float] = time.time, admin: APIRouter | None = None,
             routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The FastAPI app: ``POST /slack/actions`` (404 without a signing secret), ``GET
    /healthz``, ``routers``, and the admin pages (``daemon/web/admin``, under ``/admin``) when
    given; ``GET /openapi.json`` describes all but the admin pages."""
    app = FastAPI(title="leadpipe", docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    check = SignatureCheck(signing_secret, router.db, clock=clock) if signing_secret else None
    if admin is not None:
        app.include_router(admin)
    for extra in routers:  # webhooks, /readyz, /metrics (daemon/intake/webhooks.py, health.py, metrics.py)
        app.include_router(extra)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/slack/actions")
    async def slack_actions(request: Request) -> Response:
        body = await request.body()
        if check is None:
            return Response(status_code=404, content="slack.signing_secret is not set")
        try:
            # a database write: off the event loop
            why = await anyio.to_thread.run_sync(
                check.problem, request.headers.get("x-slack-request-timestamp"),
                request.headers.get("x-slack-signature"), body)
        except StorageError as exc:
            log.error("/slack/actions: %s", exc)
            return Response(status_code=503, content="database unavailable")
        if why is not None:
            log.warning("refused a request to /slack/actions: %s", why)
            return Response(status_code=401, content=why)
        payload = _payload(body)
        if payload is None:
            return Response(status_code=400, content="no payload")
        # The claim is a short database transaction; run it off the event loop.
        await anyio.to_thread.run_sync(router.handle_interaction, payload)
        return Response(status_code=200)

    return app


def _payload(body: bytes) -> dict[str, Any] | None:
    form = parse_qs(body.decode("utf-8", "replace"))
    values = form.get("payload")
    if not values:
        return None
    raw = values[0]
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class WebServer:
    """uvicorn serving ``app`` in a daemon thread. ``port`` is the one actually bound."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8080):
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise ConfigError(f"web: cannot listen on {host}:{port}: {exc.strerror} "
                              "(set web.port, or web.enabled: false)") from exc
        self._sock.listen(128)
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="web", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> WebServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"web: the server on {self.url} did not start")
            time.sleep(0.01)
        log.info("web server listening on %s (Slack interactivity: %s/slack/actions)",
                 self.url, self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()
