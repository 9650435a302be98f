"""A local HTTP server that speaks the Slack Web API's shapes, for slack-sdk to talk to.

Serves ``POST /api/<method>`` for ``auth.test``, ``chat.postMessage``, ``chat.update``,
``chat.postEphemeral`` and ``conversations.open`` (and ``apps.connections.open``), and
``GET /api/conversations.history``, with the JSON Slack answers, on ``127.0.0.1`` port 0,
in a thread. It records every request (method, parsed body, headers, arrival time) and can
be told to answer the next calls of a method with something else
(``fail_next("chat.postMessage", 429, retry_after=1)``, ``fail_next(..., 500)``, an ``ok:
false`` error code), or to stall (``delay``).

Posted messages are kept per channel (``messages``), with their ``metadata``
(``event_type``, ``event_payload``) as Slack keeps it; ``conversations.history`` returns
them newest first, from ``oldest`` on, ``limit`` at a time with a ``next_cursor``, and
their metadata only with ``include_all_metadata``. ``hold(method)`` makes the next call of
a method be carried out and then wait for ``release()`` before it is answered: a sender
that dies (or loses its lease) after Slack accepted a post.

Point slack-sdk at it with ``base_url=server.base_url``.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Call:
    """One request the server received."""

    method: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float  # time.perf_counter() on arrival
    status: int = 200
    ok: bool = True  # answered with success (not a scripted failure)


@dataclass
class Scripted:
    status: int
    body: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)


class SlackServer:
    """Use as a context manager, or ``start()``/``stop()``."""

    def __init__(self, epoch: float | None = None) -> None:
        """``epoch``: the first message's ``ts`` is one second after it; by default the
        wall clock at the start, as Slack's ``ts`` is the time of posting (a test whose
        clock is not the wall clock may give its own, so ``oldest`` compares alike)."""
        self.epoch = int(time.time() if epoch is None else epoch)
        self.calls: list[Call] = []
        self._script: dict[str, deque[Scripted]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self.delay = 0.0
        self.on_call: Any = None  # called with each Call after it is recorded
        #: channel id → the messages posted there, oldest first (Slack's message objects)
        self.messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._holds: dict[str, threading.Event] = {}
        self.held = threading.Event()  # set once a held call was carried out
        #: the bot token's scopes, sent as ``X-OAuth-Scopes`` as Slack does
        self.scopes = "chat:write,im:write,channels:history,groups:history,im:history"
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                parts = urlsplit(self.path)
                method = parts.path.rsplit("/", 1)[-1]
                headers_in = dict(self.headers.items())
                if self.command == "GET":  # slack-sdk sends a few methods' arguments as a query
                    raw, headers_in["Content-Type"] = parts.query.encode(), "application/x-www-form-urlencoded"
                status, body, headers = outer._answer(method, raw, headers_in)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8"
                                 if not isinstance(body, str) else "text/html")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/api/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- control ----------------------------------------------------------------------

    def start(self) -> SlackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> SlackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, method: str, status: int = 500, *, error: str | None = None,
                  retry_after: float | None = None, html: bool = False) -> None:
        """The next call of ``method`` gets this answer instead of success (queued in order)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body: dict[str, Any] | str = (
            "<html><body>502 Bad Gateway</body></html>" if html
            else {"ok": False, "error": error or ("ratelimited" if status == 429 else "internal_error")}
        )
        self._script[method].append(Scripted(status, body, headers))

    def hold(self, method: str) -> None:
        """The next call of ``method`` is carried out, then not answered until ``release()``."""
        self._holds[method] = threading.Event()

    def release(self) -> None:
        for event in list(self._holds.values()):
            event.set()
        self._holds.clear()

    def posted(self, channel: str) -> list[dict[str, Any]]:
        """The messages in ``channel``, oldest first."""
        with self._lock:
            return list(self.messages.get(channel, ()))

    def named(self, method: str) -> list[Call]:
        """The successful calls of ``method``, in order of arrival."""
        with self._lock:
            return [c for c in self.calls if c.method == method and c.ok]

    def wait_for(self, method: str, n: int = 1, timeout: float = 10.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.named(method)
            if len(got) >= n:
                return got
            time.sleep(0.005)
        raise AssertionError(f"{method}: {len(self.named(method))} calls after {timeout}s, wanted {n}")

    # -- the API ----------------------------------------------------------------------

    def _answer(self, method: str, raw: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any] | str, dict[str, str]]:
        body = _parse(raw, headers.get("Content-Type", ""))
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            scripted = self._script[method].popleft() if self._script[method] else None
            call = Call(method, body, headers, time.perf_counter(),
                        scripted.status if scripted else 200, ok=scripted is None)
            self.calls.append(call)
            ts = f"{self.epoch + next(self._ts)}.000100"
        if self.on_call is not None:
            self.on_call(call)
        if scripted is not None:
            return scripted.status, scripted.body, scripted.headers
        if not headers.get("Authorization", "").startswith("Bearer "):
            return 200, {"ok": False, "error": "not_authed"}, {}
        with self._lock:
            answer = self._ok(method, body, ts)
            hold = self._holds.get(method)
        if hold is not None:
            self.held.set()
            hold.wait(60)
        return 200, answer, {"X-OAuth-Scopes": self.scopes}

    def _ok(self, method: str, body: dict[str, Any], ts: str) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://test.slack.com/", "team": "Test Brokerage",
                    "user": "leadpipe", "team_id": "T0TEST", "user_id": "U0BOT", "bot_id": "B0BOT"}
        if method == "chat.postMessage":
            message: dict[str, Any] = {"type": "message", "user": "U0BOT", "bot_id": "B0BOT",
                                       "text": body.get("text"), "ts": ts}
            if body.get("blocks"):
                message["blocks"] = body["blocks"]
            metadata = body.get("metadata")
            if isinstance(metadata, str):
                metadata = json.loads(metadata)
            if isinstance(metadata, dict):
                message["metadata"] = {"event_type": metadata.get("event_type"),
                                       "event_payload": metadata.get("event_payload") or {}}
            self.messages[str(body.get("channel"))].append(message)
            return {"ok": True, "channel": body.get("channel"), "ts": ts,
                    "message": {k: v for k, v in message.items() if k != "metadata"}}
        if method == "chat.update":
            for m in self.messages.get(str(body.get("channel")), ()):
                if m["ts"] == body.get("ts"):
                    m["text"] = body.get("text")
                    m["blocks"] = body.get("blocks") or m.get("blocks")
            return {"ok": True, "channel": body.get("channel"), "ts": body.get("ts"),
                    "text": body.get("text")}
        if method == "conversations.history":
            return self._history(body)
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "conversations.open":
            users = str(body.get("users", ""))
            return {"ok": True, "channel": {"id": "D" + users.replace(",", "")}}
        if method == "apps.connections.open":
            return {"ok": True, "url": "ws://127.0.0.1:9/"}
        return {"ok": False, "error": "unknown_method"}


    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if channel not in self.messages and not re.fullmatch(r"[CDG][A-Z0-9]+", channel):
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(args.get("oldest") or 0)
        newest_first = [m for m in reversed(self.messages.get(channel, ())) if float(m["ts"]) >= oldest]
        start = int(args.get("cursor") or 0)
        limit = max(1, min(int(args.get("limit") or 100), 999))
        page = newest_first[start:start + limit]
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        shown = [m if with_metadata else {k: v for k, v in m.items() if k != "metadata"} for m in page]
        more = start + limit < len(newest_first)
        return {"ok": True, "messages": shown, "has_more": more, "pin_count": 0,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}


def _parse(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    if "json" in content_type:
        data = json.loads(raw)
        return data if isinstance(data, dict) else {}
    form = parse_qs(raw.decode())
    out: dict[str, Any] = {k: v[0] for k, v in form.items()}
    for k in ("blocks", "attachments"):
        if isinstance(out.get(k), str):
            out[k] = json.loads(out[k])
    return out
