"""The provider interface: one small class per outside service, chosen by name from config.

A provider answers one kind of question (``kind``: ``geocode``, ``enrichment``) about a lead. ``question``
says what would be asked about a lead (``None``: nothing to ask, e.g. no address), and
``ask`` asks it once within ``timeout`` seconds and returns the answer — a value, where "no
match" is an answer too — or raises ``TransientDeliveryError`` (timeouts, refused
connections, 429 and 5xx, with the server's ``Retry-After``) or ``PermanentDeliveryError``
(a bad key, a blocked client). It never sleeps, never retries and never touches the
database: the cache, the rate limit, the quota and the retries are ``asking``'s.

The registries of geocoders and enrichers by configured name are ``daemon.providers.registry``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from daemon.config import ProviderSettings
from daemon.lead import Enrichment, Geocode, Lead, Profile, Property
from notifiers.http import USER_AGENT

A = TypeVar("A", covariant=True)


@dataclass(frozen=True)
class Published:
    """What a provider publishes about itself: the public endpoint, whether a key is
    needed, its request rate (per second; ``None``: none published) and its price."""

    base_url: str
    needs_key: bool
    rate: float | None
    cost: str


class Provider(Protocol[A]):
    """One outside service answering one kind of question about a lead."""

    name: ClassVar[str]
    kind: ClassVar[str]
    published: ClassVar[Published]

    @classmethod
    def from_config(cls, settings: ProviderSettings) -> Provider[A]:
        """Build it from its settings; raises ``ConfigError`` for a missing key."""
        ...

    def question(self, lead: Lead) -> str | None:
        """What would be asked about ``lead`` (``None``: nothing to ask)."""
        ...

    def ask(self, question: str, *, timeout: float) -> A:
        """Ask once; raises ``TransientDeliveryError`` / ``PermanentDeliveryError``."""
        ...

    def close(self) -> None: ...


Geocoder = Provider[Geocode]
Enricher = Provider[Enrichment]


def one_line(p: Property) -> str | None:
    """The property's address on one line (``12 Palm Ave, Miami, FL 33101``), the question
    every geocoder is asked; ``None`` without a street address, or with a street but
    neither a city, a state nor a postal code to place it (a guess would cost a call)."""
    if not p.address or not (p.city or p.state or p.postal_code):
        return None
    place = " ".join(x for x in (p.state, p.postal_code) if x)
    return ", ".join(x for x in (p.address, p.city, place) if x)


_NOISE = re.compile(r"[.,;#]+")


def address_key(question: str) -> str:
    """The cache key of a question: case, punctuation and spacing do not make it another
    address (``12 Palm Ave., Miami`` is ``12 palm ave miami``)."""
    return " ".join(_NOISE.sub(" ", question).casefold().split())[:500]


def email_key(question: str) -> str:
    """The cache key of a person asked about by email: sha256 of the email case-folded and
    trimmed, hex — the cache of answers never holds the email itself."""
    return hashlib.sha256(question.strip().casefold().encode()).hexdigest()


def email_of(lead: Lead) -> str | None:
    """The question every enricher is asked: the lead's email (``None``: no email, nothing
    to ask). Only the email: an enricher is never sent the name or the phone."""
    email = (lead.email or "").strip()
    return email if "@" in email else None


#: at most this many profiles are kept of one answer
MAX_PROFILES = 6
_HOST = re.compile(r"^[a-z0-9.-]+\.[a-z]{2,}(?::\d+)?(?:/\S*)?$", re.IGNORECASE)


def https_url(value: Any) -> str | None:
    """A provider's profile URL as ``https://…`` (``linkedin.com/in/x`` gains the scheme);
    ``None`` for anything else — another scheme, spaces, no host — since it is shown to
    agents as a link."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    for scheme in ("https://", "http://"):
        if url.lower().startswith(scheme):
            url = url[len(scheme):]
            break
    return f"https://{url}" if _HOST.match(url) else None


def profiles_of(pairs: Iterable[tuple[Any, Any]]) -> tuple[Profile, ...]:
    """``(network, url)`` pairs as profiles: bad URLs dropped, one per network (the first),
    at most ``MAX_PROFILES``."""
    out: dict[str, Profile] = {}
    for network, url in pairs:
        name = text(network)
        link = https_url(url)
        if name and link and name.lower() not in out and len(out) < MAX_PROFILES:
            out[name.lower()] = Profile(name.lower(), link)
    return tuple(out.values())


def person(provider: str, *, company: Any, title: Any, pairs: Iterable[tuple[Any, Any]],
           likelihood: Any) -> Enrichment:
    """An enricher's match, cleaned: the strings trimmed, the profiles checked; a match with
    neither a company, a title nor a profile tells an agent nothing and counts as no match."""
    found = Enrichment(provider, True, company=text(company), title=text(title),
                       profiles=profiles_of(pairs),
                       likelihood=likelihood if isinstance(likelihood, int) else None)
    if not (found.company or found.title or found.profiles):
        return Enrichment(provider, False)
    return found


def text(value: Any, limit: int = 300) -> str | None:
    """A provider's string, trimmed (``None`` when empty or not a string)."""
    if not isinstance(value, str) or not value.strip():
        return None
    return " ".join(value.split())[:limit]


def user_agent(settings: ProviderSettings) -> str:
    """The User-Agent to send: the configured one, else leadpipe's."""
    return settings.user_agent or USER_AGENT
