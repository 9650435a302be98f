"""A local HTTP server that speaks the Slack Web API's shapes, for slack-sdk to talk to.

Serves ``POST /api/<method>`` for ``auth.test``, ``chat.postMessage``, ``chat.update``,
``chat.postEphemeral`` and ``conversations.open`` (and ``apps.connections.open``) with
the JSON Slack answers, on ``127.0.0.1`` port 0, in a thread. It records every request
(method, parsed body, headers, arrival time) and can be told to answer the next calls of a
method with something else (``fail_next("chat.postMessage", 429, retry_after=1)``,
``fail_next(..., 500)``, an ``ok: false`` error code), or to stall (``delay``).

Point slack-sdk at it with ``base_url=server.base_url``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


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

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._script: dict[str, deque[Scripted]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self.delay = 0.0
        self.on_call: Any = None  # called with each Call after it is recorded
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                method = self.path.rsplit("/", 1)[-1].split("?")[0]
                status, body, headers = outer._answer(method, raw, dict(self.headers.items()))
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8"
                                 if not isinstance(body, str) else "text/html")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

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
            ts = f"{1_700_000_000 + next(self._ts)}.000100"
        if self.on_call is not None:
            self.on_call(call)
        if scripted is not None:
            return scripted.status, scripted.body, scripted.headers
        if not headers.get("Authorization", "").startswith("Bearer "):
            return 200, {"ok": False, "error": "not_authed"}, {}
        return 200, self._ok(method, body, ts), {}

    def _ok(self, method: str, body: dict[str, Any], ts: str) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://test.slack.com/", "team": "Test Brokerage",
                    "user": "leadpipe", "team_id": "T0TEST", "user_id": "U0BOT", "bot_id": "B0BOT"}
        if method == "chat.postMessage":
            return {"ok": True, "channel": body.get("channel"), "ts": ts,
                    "message": {"text": body.get("text"), "ts": ts}}
        if method == "chat.update":
            return {"ok": True, "channel": body.get("channel"), "ts": body.get("ts"),
                    "text": body.get("text")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "conversations.open":
            users = str(body.get("users", ""))
            return {"ok": True, "channel": {"id": "D" + users.replace(",", "")}}
        if method == "apps.connections.open":
            return {"ok": True, "url": "ws://127.0.0.1:9/"}
        return {"ok": False, "error": "unknown_method"}


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
