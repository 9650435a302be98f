"""People Data Labs' Person Enrichment API: a person looked up by email; needs a key.

``GET /v5/person/enrich?email=…`` with the key in ``X-Api-Key`` answers ``200 {"status":
200, "likelihood": 1–10, "data": {"full_name", "job_title", "job_company_name",
"linkedin_url", "twitter_url", "facebook_url", "github_url", "profiles": [{"network",
"url", …}], …}}``; ``404`` when no person matches (an answer, and free: PDL charges per
match); ``402`` when the account has no credits left (permanent until someone buys more);
``401``/``403`` a bad key (permanent); ``429`` rate limited (transient: ``Retry-After``, else
PDL's ``x-ratelimit-reset``); 5xx transient. Errors carry ``{"status", "error": {"type",
"message"}}``. PDL's URLs come without a scheme (``linkedin.com/in/…``): kept as https.

Only the company, the job title, the profiles and the likelihood are kept; the name,
emails, phones and addresses PDL may return are never read (an enrichment is never a
contact value). The key is never named in an error: it travels in a header.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

from daemon.config import ProviderSettings
from daemon.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from daemon.lead import Enrichment, Lead
from daemon.providers.base import Published, email_of, user_agent
from daemon.providers.base import person as person_of
from notifiers.http import JsonApi, json_of, retry_after

PATH = "/v5/person/enrich"
#: the single-URL profile fields, before the ``profiles`` list
URL_FIELDS = (("linkedin", "linkedin_url"), ("twitter", "twitter_url"),
              ("facebook", "facebook_url"), ("github", "github_url"))


class PeopleDataLabs:
    """The People Data Labs person enricher. Raises ``DeliveryError`` subclasses; never sleeps."""

    name: ClassVar[str] = "peopledatalabs"
    kind: ClassVar[str] = "enrichment"
    published: ClassVar[Published] = Published(
        base_url="https://api.peopledatalabs.com", needs_key=True, rate=100 / 60,
        cost="one credit per match (a 404 no-match is free); free plan 100 credits a month; "
             "100 requests a minute free, 1,000 paid; price per credit by plan, not published "
             "as one number")

    def __init__(self, api_key: str, *, base_url: str | None = None,
                 user_agent_: str | None = None, timeout: float = 10.0,
                 clock: Any = None):
        headers = {"X-Api-Key": api_key}
        if user_agent_:
            headers["User-Agent"] = user_agent_
        self.clock = clock or (lambda: datetime.now(UTC))
        self.api = JsonApi(self.name, base_url or self.published.base_url, timeout=timeout,
                           connect_timeout=min(timeout, 10.0), headers=headers, clock=self.clock)

    @classmethod
    def from_config(cls, settings: ProviderSettings) -> PeopleDataLabs:
        if not settings.api_key:
            raise ConfigError("enrichment.api_key: People Data Labs needs an API key; give "
                              "api_key_file (or api_key)", key="api_key",
                              problem="required for peopledatalabs")
        return cls(settings.api_key, base_url=settings.base_url, user_agent_=user_agent(settings),
                   timeout=settings.timeout.total_seconds())

    def question(self, lead: Lead) -> str | None:
        return email_of(lead)

    def ask(self, question: str, *, timeout: float) -> Enrichment:
        resp = self.api.call("GET", PATH, timeout=timeout, params={"email": question},
                             handles=(402, 404, 429))
        if resp.status_code == 404:
            return Enrichment(self.name, found=False)
        if resp.status_code == 402:
            raise PermanentDeliveryError(f"peopledatalabs: 402 out of credits: {_error(resp)}",
                                         status_code=402)
        if resp.status_code == 429:
            now = self.clock()
            raise TransientDeliveryError(f"peopledatalabs: rate limited (429): {_error(resp)}",
                                         status_code=429,
                                         retry_after=retry_after(resp, now) or _reset(resp, now))
        return parse(json_of(resp))

    def close(self) -> None:
        self.api.close()


def parse(data: dict[str, Any]) -> Enrichment:
    """PDL's 200 answer as one ``Enrichment``; one without ``data`` (a proxy's page, a
    half-written body) is a ``TransientDeliveryError``."""
    record = data.get("data")
    if not isinstance(record, dict):
        raise TransientDeliveryError("peopledatalabs: an answer without `data`")
    pairs: list[tuple[Any, Any]] = [(net, record.get(key)) for net, key in URL_FIELDS]
    pairs += [(p.get("network"), p.get("url")) for p in record.get("profiles") or ()
              if isinstance(p, dict)]
    return person_of(PeopleDataLabs.name, company=record.get("job_company_name"),
                     title=record.get("job_title"), pairs=pairs, likelihood=data.get("likelihood"))


def _error(resp: httpx.Response) -> str:
    err = json_of(resp).get("error")
    if isinstance(err, dict):
        return str(err.get("message") or err.get("type") or "")[:300]
    return resp.reason_phrase


def _reset(resp: httpx.Response, now: datetime) -> datetime | None:
    """PDL's ``x-ratelimit-reset`` (when the window resets, UTC), if it gives one."""
    value = resp.headers.get("x-ratelimit-reset")
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            when = datetime.fromtimestamp(float(value), UTC)
        except (ValueError, OverflowError):
            return None
    return max(when if when.tzinfo else when.replace(tzinfo=UTC), now)
