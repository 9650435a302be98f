"""The HTTP edge of the CRM and webhook notifiers: httpx with timeouts, errors made ours.

One ``JsonApi`` per notifier holds an ``httpx.Client`` (connection pooling, connect and
read timeouts, no retries of its own). ``call`` returns the response for a 2xx answer (or
for a status the caller said it handles) and otherwise raises:

- ``TransientDeliveryError`` for a timeout, a refused or dropped connection, 408, 429 (with
  the server's ``Retry-After``) and 5xx;
- ``PermanentDeliveryError`` for any other 4xx (bad key, bad request, gone).

A request that is not idempotent may have been carried out although no answer came back
(a read timeout, a connection dropped after the body was sent, a 5xx). ``settle`` says how
long such a retry must wait at least, e.g. until a lagging search can see what the lost
request created.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from daemon.errors import PermanentDeliveryError, TransientDeliveryError
from notifiers.base import RESPONSE_LIMIT

USER_AGENT = "leadpipe/0.1 (+https://github.com/leadpipe)"


class JsonApi:
    """An HTTP API spoken in JSON. ``label`` names it in errors (``hubspot``)."""

    def __init__(self, label: str, base_url: str, *, timeout: float, connect_timeout: float,
                 headers: Mapping[str, str] | None = None, auth: httpx.Auth | tuple[str, str] | None = None,
                 clock: Callable[[], datetime] | None = None):
        self.label = label
        self.clock = clock or (lambda: datetime.now(UTC))
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),  # "": every call gives a whole URL
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
            auth=auth,
            follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    def call(self, method: str, path: str, *, json_body: Any = None, content: bytes | None = None,
             params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
             handles: Collection[int] = (), settle: float | None = None,
             shown: str | None = None, timeout: float | None = None) -> httpx.Response:
        """One request. Returns the response for 2xx and for the statuses in ``handles``;
        raises ``TransientDeliveryError`` / ``PermanentDeliveryError`` otherwise. ``shown``
        names the target in errors instead of ``path`` (a URL with a token in it);
        ``timeout`` bounds this request instead of the client's timeouts: a third of it to
        connect, the rest to read the answer (a budget, not a per-step limit)."""
        what = f"{self.label} {method} {shown or path}"
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = httpx.Timeout(timeout * 2 / 3, connect=timeout / 3)
        try:
            resp = self.client.request(method, path, json=json_body, content=content,
                                       params=params, headers=headers, **extra)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # never reached the server: safe to retry at once
            raise TransientDeliveryError(f"{what}: cannot connect: {_reason(exc)}") from exc
        except httpx.TimeoutException as exc:
            raise TransientDeliveryError(f"{what}: no answer within {_timeout_of(exc)}",
                                         retry_after=self._settled(settle)) from exc
        except httpx.HTTPError as exc:  # a dropped connection, a protocol error
            raise TransientDeliveryError(f"{what}: {_reason(exc)}",
                                         retry_after=self._settled(settle)) from exc
        status = resp.status_code
        if 200 <= status < 300 or status in handles:
            return resp
        body = text_of(resp)
        detail = _error_message(resp) or resp.reason_phrase
        if status == 429:
            raise TransientDeliveryError(f"{what}: rate limited (429): {detail}", status_code=status,
                                         response=body, retry_after=retry_after(resp, self.clock()))
        if status >= 500 or status == 408:
            later = _latest(retry_after(resp, self.clock()), self._settled(settle))
            raise TransientDeliveryError(f"{what}: {status} {detail}", status_code=status,
                                         response=body, retry_after=later)
        raise PermanentDeliveryError(f"{what}: {status} {detail}", status_code=status, response=body)

    def _settled(self, settle: float | None) -> datetime | None:
        return None if settle is None else self.clock() + timedelta(seconds=settle)


def retry_after(resp: httpx.Response, now: datetime) -> datetime | None:
    """The time a ``Retry-After`` header (seconds, or an HTTP date) names, if any."""
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return now + timedelta(seconds=max(0.0, float(value)))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when, now)


def text_of(resp: httpx.Response) -> str:
    """The first 2 KB of the answer, for the delivery log."""
    if resp.status_code == 204 or not resp.content:
        return f"{resp.status_code} {resp.reason_phrase}"
    return resp.content[:RESPONSE_LIMIT].decode("utf-8", "replace")


def json_of(resp: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object; ``{}`` when it is not one (a proxy's page, an empty body)."""
    try:
        data = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _error_message(resp: httpx.Response) -> str | None:
    data = json_of(resp)
    for key in ("message", "errorMessage", "error"):
        if isinstance(data.get(key), str):
            return str(data[key])[:300]
    return None


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((x for x in (a, b) if x is not None), default=None)


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _timeout_of(exc: httpx.TimeoutException) -> str:
    kind = {httpx.ReadTimeout: "the read timeout", httpx.WriteTimeout: "the write timeout"}
    return kind.get(type(exc), "the timeout")
