"""A generic person enricher: any HTTP service that answers leadpipe's own small JSON
shape, e.g. a brokerage's in-house lookup or a thin proxy in front of a vendor.

``GET <base_url>?email=<email>`` (``base_url`` is the whole endpoint URL; with ``api_key``,
``Authorization: Bearer <api_key>``) answers ``200 {"company": str|null, "title":
str|null, "profiles": [{"network": "linkedin", "url": "https://…"}], "likelihood":
int|null}``. No match is ``404`` or ``200 {"found": false}``. ``402`` (out of credits),
``401`` and ``403`` are permanent; ``429`` (with ``Retry-After``) and 5xx transient. Any
other key of the answer is ignored, and nothing but the email is ever sent.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from daemon.config import ProviderSettings
from daemon.errors import ConfigError, TransientDeliveryError
from daemon.lead import Enrichment, Lead
from daemon.providers.base import Published, email_of, person, user_agent
from notifiers.http import JsonApi, json_of


class PersonHttp:
    """The generic person enricher. Raises ``DeliveryError`` subclasses; never sleeps."""

    name: ClassVar[str] = "generic"
    kind: ClassVar[str] = "enrichment"
    published: ClassVar[Published] = Published(
        base_url="", needs_key=False, rate=None, cost="whatever the service behind it charges")

    def __init__(self, url: str, *, api_key: str | None = None, user_agent_: str | None = None,
                 timeout: float = 10.0):
        self.url = url
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        if user_agent_:
            headers["User-Agent"] = user_agent_
        self.api = JsonApi(self.name, "", timeout=timeout, connect_timeout=min(timeout, 10.0),
                           headers=headers)

    @classmethod
    def from_config(cls, settings: ProviderSettings) -> PersonHttp:
        url = settings.base_url or ""
        if not url.startswith(("https://", "http://")):
            raise ConfigError("enrichment.base_url: the generic enricher needs the endpoint's "
                              "URL (https://…)", key="base_url", problem="required for generic")
        return cls(url, api_key=settings.api_key, user_agent_=user_agent(settings),
                   timeout=settings.timeout.total_seconds())

    def question(self, lead: Lead) -> str | None:
        return email_of(lead)

    def ask(self, question: str, *, timeout: float) -> Enrichment:
        # errors name the host and path only: never the email in the query
        shown = "".join(urlsplit(self.url)[1:3])
        resp = self.api.call("GET", self.url, timeout=timeout, params={"email": question},
                             handles=(404,), shown=shown)
        if resp.status_code == 404:
            return Enrichment(self.name, found=False)
        return parse(json_of(resp))

    def close(self) -> None:
        self.api.close()


def parse(data: dict[str, Any]) -> Enrichment:
    """The generic answer as one ``Enrichment``; an answer that is not a JSON object with
    any of its keys is a ``TransientDeliveryError`` (a proxy's page, a half-written body)."""
    if data.get("found") is False:
        return Enrichment(PersonHttp.name, found=False)
    if not data or not {"company", "title", "profiles", "found"} & set(data):
        raise TransientDeliveryError("generic: an answer without company, title or profiles")
    pairs = [(p.get("network"), p.get("url")) for p in data.get("profiles") or ()
             if isinstance(p, dict)]
    return person(PersonHttp.name, company=data.get("company"), title=data.get("title"),
                  pairs=pairs, likelihood=data.get("likelihood"))
