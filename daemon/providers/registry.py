"""The providers by configured name, one table per kind (``geocoder.provider``,
``enrichment.provider``), as convention 3 asks: a dict, and an unknown name is a
``ConfigError`` listing the valid ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from daemon.config import ProviderSettings
from daemon.errors import ConfigError
from daemon.providers.base import Enricher, Geocoder
from daemon.providers.census import Census
from daemon.providers.google import Google
from daemon.providers.nominatim import Nominatim
from daemon.providers.peopledatalabs import PeopleDataLabs
from daemon.providers.person_http import PersonHttp

P = TypeVar("P")

GEOCODERS: dict[str, type[Geocoder]] = {
    Census.name: Census,
    Nominatim.name: Nominatim,
    Google.name: Google,
}

ENRICHERS: dict[str, type[Enricher]] = {
    PersonHttp.name: PersonHttp,
    PeopleDataLabs.name: PeopleDataLabs,
}


def provider_class(table: Mapping[str, type[P]], section: str, name: str) -> type[P]:
    """The provider of ``table`` configured as ``name``; raises ``ConfigError`` naming the
    ``section`` and listing the valid names."""
    try:
        return table[name]
    except KeyError:
        valid = ", ".join(sorted(table))
        problem = f"unknown provider {name!r}; valid providers: {valid}"
        raise ConfigError(f"{section}.provider: {problem}", key="provider", problem=problem) from None


def geocoder_class(name: str) -> type[Geocoder]:
    return provider_class(GEOCODERS, "geocoder", name)


def enricher_class(name: str) -> type[Enricher]:
    return provider_class(ENRICHERS, "enrichment", name)


def build_geocoder(settings: ProviderSettings) -> Geocoder | None:
    """The configured geocoder, or ``None`` when ``geocoder.provider`` is not set (the default)."""
    return geocoder_class(settings.provider).from_config(settings) if settings.provider else None


def build_enricher(settings: ProviderSettings) -> Enricher | None:
    """The configured enricher, or ``None`` when ``enrichment.provider`` is not set (the default)."""
    return enricher_class(settings.provider).from_config(settings) if settings.provider else None
