"""Local HTTP servers that speak Follow Up Boss's and HubSpot's API shapes, and a webhook
receiver, each on ``127.0.0.1`` port 0 in a thread.

Each records every request (route, method, path, parsed JSON body, raw body, headers,
arrival time, the status it answered) and can be scripted:

- ``fail_next(route, status, retry_after=…)`` — the next call of ``route`` gets that answer
  (queued in order); ``hang=s`` sleeps that long before answering (past the client's read
  timeout); ``process=True`` carries the request out first, so only its answer is lost;
- ``down = True`` — every call is answered 503 until it is set back;
- ``limit = (n, seconds)`` — a sliding window: the n+1-th call within any ``seconds`` is
  answered 429 with ``Retry-After`` (``rejected`` counts them); ``route_limits[route]``
  does the same for one route (HubSpot's search: 4 per second).

A request whose body stops short of its ``Content-Length`` (the client was killed between
writing the headers and the body) is not carried out, as no real server would hand it to
the application; ``aborted`` lists them (method, path), and ``requests`` leaves them out.

``hold(route)`` makes the next call of ``route`` be carried out and then wait for
``release()`` before it is answered (``held`` is set meanwhile): a sender still in its call
while another replica goes on.

``FubServer`` keeps people and events (``POST /v1/events``; a source in ``archived`` gets
204), matching people by email or phone as FUB does. ``HubSpotServer`` keeps contacts,
notes and tasks; a create with a known email is answered 409 ``Contact already exists.
Existing ID: N``, and search sees a contact only ``search_lag`` seconds after its create,
and its properties as they were ``search_lag`` ago (an update, too, reaches the index
late), as HubSpot's index lags its writes; ``GET`` by id reads the contact as it is.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Answer = tuple[int, Any, dict[str, str]]


@dataclass
class Request:
    """One request a server received."""

    route: str
    method: str
    path: str
    query: dict[str, str]
    body: Any
    raw: bytes
    headers: dict[str, str]
    at: float  # time.perf_counter() on arrival
    status: int = 0  # what it was answered


@dataclass
class Scripted:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0
    process: bool = False


class ApiServer:
    """The common part: routing, recording, scripting, the sliding-window limit."""

    #: (HTTP method, path regex, route name)
    routes: tuple[tuple[str, str, str], ...] = ()

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.rejected = 0
        #: requests cut off before their whole body arrived (not carried out, not recorded)
        self.aborted: list[tuple[str, str]] = []
        self.down = False
        self.limit: tuple[int, float] | None = None
        self.route_limits: dict[str, tuple[int, float]] = {}
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._script: dict[str, deque[Scripted]] = defaultdict(deque)
        self._holds: dict[str, threading.Event] = {}
        self._holding: list[threading.Event] = []  # holds taken by a call now waiting
        self.held = threading.Event()
        self.lock = threading.RLock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in two writes: without this, the client's delayed
            # ACK stalls every answer ~40 ms
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    raw = self.rfile.read(length) if length else b""
                except ConnectionError:
                    raw = b""
                if len(raw) < length:
                    # the client went away before its body was all sent (a process killed
                    # between writing the headers and the body): a real server never hands
                    # such a request to the application, so it is not carried out
                    outer._abort(self.command, self.path)
                    self.close_connection = True
                    return
                status, body, headers = outer._handle(self.command, self.path, raw, dict(self.headers.items()))
                data = b"" if body is None or status == 204 else (
                    body.encode() if isinstance(body, str) else json.dumps(body).encode())
                try:
                    self.send_response(status)
                    if data:
                        self.send_header("Content-Type", "application/json;charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout we scripted)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    # -- control ----------------------------------------------------------------------

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, route: str, status: int = 503, *, retry_after: float | None = None,
                  body: Any = None, hang: float = 0.0, process: bool = False) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if body is None:
            body = {"status": "error", "message": f"scripted {status}"}
        self._script[route].append(Scripted(status, body, headers, hang, process))

    def hold(self, route: str) -> None:
        """The next call of ``route`` is carried out, then not answered until ``release()``."""
        self._holds[route] = threading.Event()

    def release(self) -> None:
        for event in [*self._holds.values(), *self._holding]:
            event.set()
        self._holds.clear()
        self._holding.clear()

    def named(self, route: str, status: int | None = None) -> list[Request]:
        """The requests of ``route`` (answered ``status``, if given), in order of arrival."""
        with self.lock:
            return [r for r in self.requests if r.route == route and (status is None or r.status == status)]

    def statuses(self, route: str) -> list[int]:
        return [r.status for r in self.named(route)]

    def wait_for(self, route: str, n: int = 1, timeout: float = 10.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.named(route)
            if len(got) >= n:
                return got
            time.sleep(0.005)
        raise AssertionError(f"{route}: {len(self.named(route))} requests after {timeout}s, wanted {n}")

    # -- the machinery ------------------------------------------------------------------

    def _handle(self, method: str, target: str, raw: bytes, headers: dict[str, str]) -> Answer:
        now = time.perf_counter()
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        route, match = next(((name, m) for verb, pattern, name in self.routes
                             if verb == method and (m := re.fullmatch(pattern, parts.path))), ("?", None))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        req = Request(route, method, parts.path, query, body, raw, headers, now)
        scripted = None
        with self.lock:
            self.requests.append(req)
            answer = self._gate("*", self.limit, now) or self._gate(route, self.route_limits.get(route), now)
            if answer is None and self._script[route]:
                scripted = self._script[route].popleft()
        if answer is None and self.down:
            answer = (503, {"status": "error", "message": "Service Unavailable"}, {})
        if answer is None and scripted is not None:
            if scripted.process and match is not None:
                with self.lock:
                    self._serve(route, match, req)
            req.status = scripted.status
            if scripted.hang:
                time.sleep(scripted.hang)
            answer = (scripted.status, scripted.body, scripted.headers)
        if answer is None:
            if match is None:
                answer = (404, {"status": "error", "message": f"no route {method} {parts.path}"}, {})
            elif not self.authorized(headers):
                answer = (401, {"status": "error", "message": "Authentication credentials not found."}, {})
            else:
                with self.lock:
                    answer = self._serve(route, match, req)
                    hold = self._holds.pop(route, None)
                    if hold is not None:
                        self._holding.append(hold)
                if hold is not None:
                    self.held.set()
                    hold.wait(60)
        req.status = answer[0]
        return answer

    def _abort(self, method: str, target: str) -> None:
        with self.lock:
            self.aborted.append((method, urlsplit(target).path))

    def _gate(self, key: str, limit: tuple[int, float] | None, now: float) -> Answer | None:
        """A sliding window: 429 when ``limit`` calls were accepted in the last window."""
        if limit is None:
            return None
        n, window = limit
        accepted = self._windows[key]
        while accepted and accepted[0] <= now - window:
            accepted.popleft()
        if len(accepted) >= n:
            self.rejected += 1
            wait = max(1, math.ceil(accepted[0] + window - now))
            return (429, {"errorMessage": "Too many requests"}, {"Retry-After": str(wait)})
        accepted.append(now)
        return None

    def _serve(self, route: str, match: re.Match[str], req: Request) -> Answer:
        handler: Callable[[re.Match[str], Request], Answer] = getattr(self, f"on_{route}")
        return handler(match, req)

    def authorized(self, headers: dict[str, str]) -> bool:
        return True


class FubServer(ApiServer):
    """Follow Up Boss: ``POST /v1/events``, ``GET /v1/me``; Basic auth, key as user name."""

    routes = (("POST", r"/v1/events", "events"), ("GET", r"/v1/me", "me"))

    def __init__(self) -> None:
        super().__init__()
        self.people: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.archived: set[str] = set()
        self._ids = itertools.count(1)

    def authorized(self, headers: dict[str, str]) -> bool:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return False
        user = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
        return bool(user)

    def on_me(self, m: re.Match[str], req: Request) -> Answer:
        return 200, {"id": 1, "name": "Broker Owner", "email": "owner@example.com"}, {}

    def on_events(self, m: re.Match[str], req: Request) -> Answer:
        body = req.body or {}
        if not isinstance(body, dict) or not body.get("person") or not body.get("type"):
            return 400, {"errorMessage": "person and type are required"}, {}
        if body.get("source") in self.archived:
            return 204, None, {}
        person_in = body["person"]
        emails = {e["value"].lower() for e in person_in.get("emails") or ()}
        phones = {p["value"] for p in person_in.get("phones") or ()}
        person = next((p for p in self.people if emails & p["emails"] or phones & p["phones"]), None)
        created = person is None
        if person is None:
            person = {"id": next(self._ids), "emails": set(), "phones": set(),
                      "assignedUserId": person_in.get("assignedUserId"), "tags": set()}
            self.people.append(person)
        person["emails"] |= emails
        person["phones"] |= phones
        person["tags"] |= set(person_in.get("tags") or ())
        event = {"id": next(self._ids), "personId": person["id"], **body}
        self.events.append(event)
        return (201 if created else 200), {"id": event["id"], "personId": person["id"],
                                           "type": body["type"], "source": body.get("source")}, {}


class HubSpotServer(ApiServer):
    """HubSpot CRM v3: contacts (search, create, read, update), notes, tasks; Bearer auth."""

    routes = (
        ("POST", r"/crm/v3/objects/contacts/search", "search"),
        ("POST", r"/crm/v3/objects/contacts", "create"),
        ("GET", r"/crm/v3/objects/contacts", "list"),
        ("GET", r"/crm/v3/objects/contacts/(\d+)", "read"),
        ("PATCH", r"/crm/v3/objects/contacts/(\d+)", "update"),
        ("POST", r"/crm/v3/objects/notes", "notes"),
        ("POST", r"/crm/v3/objects/tasks", "tasks"),
    )

    def __init__(self, search_lag: float = 0.0) -> None:
        super().__init__()
        self.search_lag = search_lag
        self.contacts: dict[str, dict[str, Any]] = {}
        self.notes: list[dict[str, Any]] = []
        self.tasks: list[dict[str, Any]] = []
        self._ids = itertools.count(501)

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("Authorization", "").startswith("Bearer ")

    def add_contact(self, properties: dict[str, str], *, searchable: bool = True) -> str:
        """A contact that exists before the test (``searchable=False``: created just now)."""
        with self.lock:
            cid = str(next(self._ids))
            born = time.perf_counter() - (self.search_lag if searchable else 0.0)
            self.contacts[cid] = {"id": cid, "properties": dict(properties), "born": born,
                                  "versions": [(born, dict(properties))]}
            return cid

    def edit_contact(self, cid: str, properties: dict[str, str]) -> None:
        """Someone changes the contact in HubSpot now (an agent, another integration)."""
        with self.lock:
            self._write(self.contacts[cid], properties)

    def _write(self, c: dict[str, Any], properties: dict[str, Any]) -> None:
        c["properties"].update(properties)
        c["versions"].append((time.perf_counter(), dict(c["properties"])))

    def _indexed(self, c: dict[str, Any], now: float) -> dict[str, Any] | None:
        """The contact's properties as the search index has them: ``search_lag`` ago."""
        seen = [props for at, props in c["versions"] if now - at >= self.search_lag]
        return seen[-1] if seen else None

    def _object(self, c: dict[str, Any], props: list[str] | None = None,
                properties: dict[str, Any] | None = None) -> dict[str, Any]:
        have = c["properties"] if properties is None else properties
        shown = have if props is None else {k: have.get(k) for k in props}
        return {"id": c["id"], "properties": shown, "createdAt": "2026-11-03T14:00:00.000Z",
                "updatedAt": "2026-11-03T14:00:00.000Z", "archived": False}

    def on_search(self, m: re.Match[str], req: Request) -> Answer:
        body = req.body or {}
        now = time.perf_counter()
        visible = [(c, indexed) for c in self.contacts.values()
                   if (indexed := self._indexed(c, now)) is not None]

        def matches(indexed: dict[str, Any], f: dict[str, Any]) -> bool:
            have = str(indexed.get(f["propertyName"]) or "")
            return f.get("operator") == "EQ" and have.lower() == str(f["value"]).lower()

        found = [(c, indexed) for c, indexed in visible
                 if any(all(matches(indexed, f) for f in g.get("filters", ()))
                        for g in body.get("filterGroups", ()))]
        props = body.get("properties") or None
        return 200, {"total": len(found),
                     "results": [self._object(c, props, indexed) for c, indexed in found]}, {}

    def on_create(self, m: re.Match[str], req: Request) -> Answer:
        props = dict((req.body or {}).get("properties") or {})
        email = str(props.get("email") or "").lower()
        for c in self.contacts.values():
            if email and str(c["properties"].get("email") or "").lower() == email:
                return 409, {"status": "error", "message": f"Contact already exists. Existing ID: {c['id']}",
                             "correlationId": "c0ffee", "category": "CONFLICT"}, {}
        cid = str(next(self._ids))
        born = time.perf_counter()
        self.contacts[cid] = {"id": cid, "properties": props, "born": born,
                              "versions": [(born, dict(props))]}
        return 201, self._object(self.contacts[cid]), {}

    def on_list(self, m: re.Match[str], req: Request) -> Answer:
        return 200, {"results": [self._object(c) for c in list(self.contacts.values())[:1]]}, {}

    def on_read(self, m: re.Match[str], req: Request) -> Answer:
        c = self.contacts.get(m.group(1))
        if c is None:
            return 404, {"status": "error", "message": "resource not found"}, {}
        wanted = req.query.get("properties")
        return 200, self._object(c, wanted.split(",") if wanted else None), {}

    def on_update(self, m: re.Match[str], req: Request) -> Answer:
        c = self.contacts.get(m.group(1))
        if c is None:
            return 404, {"status": "error", "message": "resource not found"}, {}
        self._write(c, dict((req.body or {}).get("properties") or {}))
        return 200, self._object(c), {}

    def _engagement(self, kept: list[dict[str, Any]], req: Request) -> Answer:
        body = req.body or {}
        for a in body.get("associations") or ():
            if a["to"]["id"] not in self.contacts:
                return 400, {"status": "error", "message": f"contact {a['to']['id']} does not exist"}, {}
        obj = {"id": str(next(self._ids)), "properties": body.get("properties") or {},
               "associations": body.get("associations") or []}
        kept.append(obj)
        return 201, {"id": obj["id"], "properties": obj["properties"]}, {}

    def on_notes(self, m: re.Match[str], req: Request) -> Answer:
        return self._engagement(self.notes, req)

    def on_tasks(self, m: re.Match[str], req: Request) -> Answer:
        return self._engagement(self.tasks, req)


class WebhookReceiver(ApiServer):
    """Any URL: ``POST /hook`` answered 200 ``{"ok": true}``; ``base_url`` + ``/hook``."""

    routes = (("POST", r"/hook", "hook"),)

    def on_hook(self, m: re.Match[str], req: Request) -> Answer:
        return 200, {"ok": True}, {}

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"
