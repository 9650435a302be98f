"""Each geocoder adapter against a stand-in of its API (tests/geoservers.py): its answer
mapped to one ``Geocode``, "no match" as a result, and its errors as ours — 429 and 5xx
and a silent server transient (with ``Retry-After``), a bad key permanent. When one of
these fails, a lead gets wrong coordinates or county, a provider outage is mistaken for
"no such address" (or the reverse), or a bad key is retried forever."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from geoservers import GeoServer

from daemon.config import ProviderSettings, Settings
from daemon.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from daemon.lead import Lead, Property
from daemon.providers.base import address_key, one_line
from daemon.providers.census import Census
from daemon.providers.google import Google
from daemon.providers.nominatim import Nominatim
from daemon.providers.registry import GEOCODERS, build_geocoder, geocoder_class

MIAMI = "12 Palm Ave, Miami, FL 33101"


@pytest.fixture
def census():
    with GeoServer("census") as server:
        yield server


def settings(**kw: object) -> ProviderSettings:
    return ProviderSettings(**kw)


def test_census_maps_its_answer_to_coordinates_county_and_quality(census: GeoServer):
    geo = Census(base_url=census.base_url).ask(MIAMI, timeout=2)
    assert (geo.provider, geo.found, geo.latitude, geo.longitude, geo.county, geo.quality,
            geo.matched_address) == ("census", True, 25.77427, -80.19366, "Miami-Dade County",
                                     "Match", "12 PALM AVE, MIAMI, FL, 33101")
    assert census.queries == [MIAMI]


def test_census_no_match_is_a_result_not_an_error(census: GeoServer):
    geo = Census(base_url=census.base_url).ask("1 Nowhere Rd, Faketown, ZZ 00000", timeout=2)
    assert geo.found is False and geo.latitude is None and geo.county is None


def test_a_429_is_transient_and_keeps_its_retry_after(census: GeoServer):
    census.set_mode("429")
    census.retry_after = 30
    before = datetime.now(UTC)
    with pytest.raises(TransientDeliveryError) as caught:
        Census(base_url=census.base_url).ask(MIAMI, timeout=2)
    assert caught.value.status_code == 429
    assert caught.value.retry_after is not None
    assert before + timedelta(seconds=29) <= caught.value.retry_after <= before + timedelta(seconds=32)


def test_a_5xx_is_transient(census: GeoServer):
    census.set_mode("503")
    with pytest.raises(TransientDeliveryError):
        Census(base_url=census.base_url).ask(MIAMI, timeout=2)


def test_a_silent_server_is_a_transient_error_within_the_timeout(census: GeoServer):
    census.set_mode("silent")
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError, match="no answer"):
        Census(base_url=census.base_url).ask(MIAMI, timeout=0.3)
    assert time.monotonic() - started < 1.0


def test_nominatim_maps_its_answer_and_sends_the_configured_user_agent():
    with GeoServer("nominatim") as server:
        geo = Nominatim(user_agent="acme-leads/1.0 (ops@acme.example)",
                        base_url=server.base_url).ask(MIAMI, timeout=2)
        empty = Nominatim(user_agent="acme-leads/1.0", base_url=server.base_url).ask(
            "1 Nowhere Rd, X, ZZ", timeout=2)
    assert (geo.found, geo.latitude, geo.longitude, geo.county, geo.quality) == (
        True, 25.77427, -80.19366, "Miami-Dade County", "house")
    assert empty.found is False
    assert server.user_agents[0] == "acme-leads/1.0 (ops@acme.example)"


def test_nominatim_refusing_a_client_is_permanent():
    with GeoServer("nominatim") as server, pytest.raises(PermanentDeliveryError):
        Nominatim(user_agent="python-httpx/0.27", base_url=server.base_url).ask(MIAMI, timeout=2)


def test_the_public_nominatim_server_needs_a_user_agent_and_at_most_one_request_a_second():
    with pytest.raises(ConfigError, match="User-Agent"):
        Nominatim.from_config(settings(provider="nominatim"))
    with pytest.raises(ConfigError, match="at most 1 request per second"):
        Nominatim.from_config(settings(provider="nominatim", user_agent="acme/1", rate=5))
    # a self-hosted server may be asked faster
    Nominatim.from_config(settings(provider="nominatim", base_url="http://127.0.0.1:1", rate=50)).close()


def test_google_maps_its_answer_status_and_location_type():
    with GeoServer("google", key="k-123") as server:
        g = Google("k-123", base_url=server.base_url)
        geo = g.ask(MIAMI, timeout=2)
        none = g.ask("1 Nowhere Rd, X, ZZ", timeout=2)
        server.set_mode("over_query_limit")
        with pytest.raises(TransientDeliveryError, match="OVER_QUERY_LIMIT"):
            g.ask(MIAMI, timeout=2)
    assert (geo.found, geo.latitude, geo.longitude, geo.county, geo.quality) == (
        True, 25.77427, -80.19366, "Miami-Dade County", "ROOFTOP")
    assert none.found is False


def test_a_bad_google_key_is_permanent_and_never_shown():
    with GeoServer("google", key="right") as server, \
            pytest.raises(PermanentDeliveryError, match="REQUEST_DENIED") as caught:
        Google("wrong-secret", base_url=server.base_url).ask(MIAMI, timeout=2)
    assert "wrong-secret" not in str(caught.value)


def test_google_needs_a_key():
    with pytest.raises(ConfigError, match="needs a key"):
        Google.from_config(settings(provider="google"))


def test_an_unknown_provider_name_is_a_config_error_listing_the_valid_ones():
    with pytest.raises(ConfigError) as caught:
        geocoder_class("mapbox")
    assert "'mapbox'" in str(caught.value)
    assert "census, google, nominatim" in str(caught.value)
    with pytest.raises(ConfigError, match="valid providers"):
        build_geocoder(Settings(geocoder={"provider": "mapquest"}).geocoder)


def test_no_provider_configured_builds_no_geocoder():
    assert Settings().geocoder.provider is None
    assert build_geocoder(Settings().geocoder) is None
    assert set(GEOCODERS) == {"census", "nominatim", "google"}


def test_the_question_is_the_address_on_one_line_and_its_key_ignores_case_and_punctuation():
    p = Property(address="12 Palm Ave.", city="Miami", state="FL", postal_code="33101")
    assert one_line(p) == "12 Palm Ave., Miami, FL 33101"
    assert address_key("12 Palm Ave., Miami, FL 33101") == address_key("12  PALM AVE MIAMI FL 33101")
    assert one_line(Property(address="12 Palm Ave")) is None  # nowhere to place it
    assert one_line(Property(city="Miami")) is None
    assert Census(base_url="http://127.0.0.1:1").question(Lead("x", "1", property=p)) == one_line(p)


def test_the_daemon_refuses_an_unknown_provider_naming_the_file_line_and_key(tmp_path):
    from daemon.config import load_settings
    from daemon.service import Service

    path = tmp_path / "leadpipe.yaml"
    path.write_text(f"database_url: sqlite:///{tmp_path}/lp.db\ninbox_dir: {tmp_path}/inbox\n"
                    "geocoder:\n  provider: mapbox\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Service(load_settings(path))
    assert str(caught.value).startswith(f"{path}:4: geocoder.provider: unknown provider 'mapbox'")
    assert "valid providers: census, google, nominatim" in str(caught.value)


def test_the_daemon_with_no_geocoder_configured_has_none(tmp_path):
    from daemon.service import Service

    svc = Service(Settings(database_url=f"sqlite:///{tmp_path}/lp.db", inbox_dir=tmp_path / "inbox"))
    try:
        assert svc.geocoding is None and svc.worker.geocoding is None
    finally:
        svc.db.dispose()
