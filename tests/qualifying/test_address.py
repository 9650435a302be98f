"""Address verification (daemon/qualifying/address.py) against the real, offline ZIP data.

When one of these fails, an agent is told a wrong address checks out (or a right one does
not), a lead gets a city or state nobody typed, a unit number is lost, or the "verified
address" points go to the wrong leads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from daemon.lead import Lead, Property
from daemon.pipeline import Engine, parse_email
from daemon.pipeline.parse import parse_webhook
from daemon.qualifying.address import check_address, verify_property
from daemon.qualifying.normalize import normalize_fields
from daemon.qualifying.scoring import Scoring, load_scoring

RULES = Path(__file__).resolve().parents[2] / "rules"


def lead_of(address: str, **fields: str) -> Lead:
    return normalize_fields({"full_name": "Ana Ruiz", "address": address, **fields}, source="test",
                            rule_version="1", message_id=None, received_at=None)


# --- what the ZIP code database says ------------------------------------------------------


def test_the_right_city_and_state_for_a_zip_code_verify() -> None:
    check = check_address("1487 Coral Way", "Miami", "FL", "33145")
    assert (check.verified, check.reason) == (True, "ZIP 33145 is in Miami, FL")
    assert check.filled == ()


def test_an_accepted_other_name_of_a_zip_codes_city_verifies() -> None:
    """33134's USPS city is Miami; Coral Gables is an accepted name for it."""
    check = check_address("123 Main St", "Coral Gables", "FL", "33134")
    assert check.verified is True
    assert check.reason == "ZIP 33134 is in Miami, FL; Coral Gables is one of its names"
    assert check.city == "Coral Gables"  # the lead's own name for the place is kept


def test_a_local_name_the_usps_knows_for_a_zip_code_verifies() -> None:
    check = check_address("350 5th Ave", "Manhattan", "NY", "10001")
    assert check.verified is True
    assert "Manhattan is a local name" in (check.reason or "")


def test_saint_and_st_are_the_same_city() -> None:
    assert check_address("250 Central Ave", "St. Petersburg", "FL", "33701").verified is True


def test_a_zip_code_in_another_state_does_not_verify() -> None:
    check = check_address("1 Main St", "Miami", "FL", "60601")
    assert (check.verified, check.reason) == (False, "ZIP 60601 is in IL, not FL")
    assert (check.city, check.state, check.filled) == ("Miami", "FL", ())


def test_a_zip_code_that_does_not_exist_does_not_verify() -> None:
    check = check_address("1 Main St", "Miami", "FL", "00000")
    assert (check.verified, check.reason) == (False, "ZIP 00000 does not exist")


def test_a_retired_zip_code_does_not_verify() -> None:
    """10048 was the World Trade Center's."""
    check = check_address("1 World Trade Center", "New York", "NY", "10048")
    assert check.verified is False
    assert check.reason == "ZIP 10048 is no longer in use (it was New York, NY)"


def test_a_zip_code_of_another_city_far_away_does_not_verify() -> None:
    check = check_address("1 Main St", "Orlando", "FL", "33145")
    assert (check.verified, check.reason) == (False, "ZIP 33145 is in Miami, FL, not Orlando")


def test_a_neighbouring_city_is_unknown_not_wrong() -> None:
    """ZIP codes cross town lines: Miami Beach with a Miami ZIP code is not evidence of a fake."""
    check = check_address("1 Main St", "Miami Beach", "FL", "33145")
    assert check.verified is None
    assert check.reason == "ZIP 33145 is in Miami, FL, not Miami Beach (a neighbouring city)"


def test_a_misspelt_city_with_its_zip_code_verifies_and_is_kept_as_typed() -> None:
    check = check_address("1 Main St", "Maimi", "FL", "33145")
    assert check.verified is True
    assert check.reason == "ZIP 33145 is in Miami, FL; 'Maimi' looks like a misspelling of Miami"
    assert check.city == "Maimi"


def test_zip_plus_4_is_checked_by_its_first_five_digits_and_kept() -> None:
    check = check_address("1487 Coral Way", "Miami", "FL", "33145-1234")
    assert (check.verified, check.reason) == (True, "ZIP 33145 is in Miami, FL")
    lead = lead_of("1487 Coral Way, Miami, FL 33145-1234")
    assert lead.property.postal_code == "33145-1234"
    assert lead.property.address_verified is True


def test_a_state_given_by_name_is_checked() -> None:
    assert check_address("1 Main St", "Chicago", "Illinois", "60601").verified is True
    assert check_address("1 Main St", "Chicago", "Florida", "60601").reason == "ZIP 60601 is in IL, not FL"


# --- without a ZIP code -------------------------------------------------------------------


def test_a_city_that_exists_in_its_state_verifies_without_a_zip_code() -> None:
    check = check_address("1 Alhambra Cir", "Coral Gables", "FL", None)
    assert (check.verified, check.reason) == (True, "Coral Gables is a city in FL (no ZIP code given)")
    assert check.filled == ()  # a city has many ZIP codes: none is guessed


def test_a_misspelt_city_without_a_zip_code_is_unknown_with_a_suggestion() -> None:
    check = check_address("1 Main St", "Maimi", "FL", None)
    assert (check.verified, check.reason) == (None, "no city 'Maimi' in FL; perhaps Miami")
    assert check.city == "Maimi"


def test_a_street_alone_has_nothing_to_check() -> None:
    check = check_address("1487 Coral Way")
    assert (check.verified, check.reason) == (None, "no ZIP code or city to check")


def test_a_city_without_state_or_zip_code_has_nothing_to_check_it_against() -> None:
    assert check_address("1487 Coral Way", "Miami").verified is None


def test_no_address_at_all_gives_no_verdict_and_no_reason() -> None:
    assert (check_address(None).verified, check_address(None).reason) == (None, None)
    lead = normalize_fields({"full_name": "Ana Ruiz"}, source="t", rule_version="1", message_id=None,
                            received_at=None)
    p = lead.property
    assert (p.address_verified, p.address_check, p.address_usps) == (None, None, None)
    assert lead.warnings == ()


def test_a_place_without_a_street_is_an_area_not_a_verified_address() -> None:
    check = check_address(None, "Miami", "FL", "33145")
    assert check.verified is None
    assert check.reason == "ZIP 33145 is in Miami, FL; no street given"


# --- filling from the ZIP code, never inventing ---------------------------------------------


def test_a_missing_city_and_state_are_filled_from_the_zip_code_with_a_warning() -> None:
    lead = lead_of("1487 Coral Way 33145")
    p = lead.property
    assert (p.address, p.city, p.state, p.postal_code) == ("1487 Coral Way", "Miami", "FL", "33145")
    assert p.address_verified is True
    assert "city Miami and state FL filled from ZIP code 33145" in lead.warnings


def test_a_missing_state_is_filled_when_the_city_agrees_with_the_zip_code() -> None:
    lead = lead_of("123 Main St", city="Coral Gables", postal_code="33134")
    assert (lead.property.city, lead.property.state) == ("Coral Gables", "FL")
    assert "state FL filled from ZIP code 33134" in lead.warnings


def test_nothing_is_filled_from_a_zip_code_that_contradicts_the_address() -> None:
    lead = lead_of("1 Main St", state="FL", postal_code="60601")
    assert (lead.property.city, lead.property.state) == (None, "FL")
    assert lead.property.address_verified is False
    assert not any("filled" in w for w in lead.warnings)


def test_nothing_is_filled_from_a_zip_code_that_does_not_exist() -> None:
    lead = lead_of("1 Main St 00000")
    assert (lead.property.city, lead.property.state) == (None, None)
    assert lead.property.address_check == "ZIP 00000 does not exist"


def test_a_foreign_address_is_unknown_and_its_postcode_fills_nothing() -> None:
    """75001 is Paris's postcode and also Addison, TX's ZIP code: Addison must not appear."""
    for line, country in (("12 Rue de Rivoli, 75001 Paris, France", "France"),
                          ("100 Queen St W, Toronto, ON M5H 2N2", "a foreign postcode")):
        lead = lead_of(line)
        assert lead.property.address_verified is None
        assert lead.property.address_check == f"not a US address ({country})"
        assert (lead.property.city, lead.property.state) == (None, None)
        assert lead.property.address == line


def test_a_us_town_named_after_a_country_is_american() -> None:
    assert check_address("1 Main St", "Mexico", "NY", "13114").verified is True
    assert check_address("1 Main St", "Paris", "TX", "75460").verified is True


# --- PO boxes, units, the USPS street -------------------------------------------------------


def test_a_po_box_is_a_mailing_address_not_a_verified_property() -> None:
    lead = lead_of("P.O. Box 4410, Miami, FL 33145")
    p = lead.property
    assert p.address_verified is None
    assert p.address_check == "a PO box is a mailing address, not a property; ZIP 33145 is in Miami, FL"
    assert (p.address, p.address_usps) == ("P.O. Box 4410", "PO BOX 4410")


def test_a_po_box_with_a_wrong_zip_code_is_still_wrong() -> None:
    assert check_address("PO Box 12", "Miami", "FL", "60601").verified is False


def test_the_unit_number_is_kept_in_the_street_and_in_the_usps_line() -> None:
    lead = lead_of("123 Main Street Apt 4B, Coral Gables, FL 33134")
    p = lead.property
    assert p.address == "123 Main Street Apt 4B"
    assert p.address_usps == "123 MAIN ST APT 4B"
    assert lead_of("88 W Schiller St #4B, Chicago, IL 60610").property.address_usps == "88 W SCHILLER ST # 4B"


def test_the_street_is_kept_as_written_beside_its_usps_line() -> None:
    """USPS style would turn a loft into a unit and drop accents: it goes beside the street."""
    p = lead_of("1100 Washington Ave Loft 502, Miami Beach, FL 33139").property
    assert p.address == "1100 Washington Ave Loft 502"
    assert p.address_usps == "1100 WASHINGTON AVE UNIT 502"
    assert lead_of("4321 Avenida Montaña, Tucson, AZ 85718").property.address == "4321 Avenida Montaña"


def test_verify_property_keeps_every_other_part_of_the_property() -> None:
    prop = Property(address="1487 Coral Way", postal_code="33145", price=450000.0, mls_id="A1", url="u")
    checked, warnings = verify_property(prop)
    assert (checked.price, checked.mls_id, checked.url) == (450000.0, "A1", "u")
    assert warnings == ("city Miami and state FL filled from ZIP code 33145",)


def test_digits_of_other_scripts_are_not_a_zip_code() -> None:
    """zipcodes panics (a BaseException) on them: they must never reach it."""
    check = check_address("1 Main St", "Miami", "FL", "٣٣١٤٥")
    assert (check.verified, check.reason) == (False, "'٣٣١٤٥' is not a ZIP code")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.one_of(st.none(), st.text(max_size=30)),
       st.one_of(st.none(), st.text(max_size=20), st.sampled_from(["FL", "NY", "Texas", "PR"])),
       st.one_of(st.none(), st.text(max_size=12), st.from_regex(r"\d{5}(-\d{4})?", fullmatch=True)))
def test_checking_never_raises(street: str, city: str | None, state: str | None, zip_code: str | None) -> None:
    check = check_address(street, city, state, zip_code)
    assert check.verified in (True, False, None)
    lead_of(street, **({"postal_code": zip_code} if zip_code else {}))


# --- scoring ----------------------------------------------------------------------------


def test_a_verified_address_gets_the_shipped_verified_address_points() -> None:
    scoring = load_scoring(RULES / "scoring.yaml")
    (condition,) = [c for c in scoring.conditions if c.is_true == "property.address_verified"]
    verified = lead_of("1487 Coral Way, Miami, FL 33145")
    wrong = lead_of("1487 Coral Way, Miami, FL 60601")
    unknown = lead_of("1487 Coral Way")
    scored = {name: scoring.score(lead) for name, lead in
              (("verified", verified), ("wrong", wrong), ("unknown", unknown))}
    assert condition.name in [line.name for line in scored["verified"].score_breakdown]
    assert condition.points == 15
    for other in ("wrong", "unknown"):
        assert condition.name not in [line.name for line in scored[other].score_breakdown]


def test_is_true_holds_only_for_true() -> None:
    scoring = Scoring.model_validate(
        {"conditions": [{"name": "verified", "points": 15, "is_true": "property.address_verified"}]})
    for value, points in ((True, 15), (False, 0), (None, 0)):
        lead = Lead(source="t", rule_version="1", property=Property(address_verified=value))
        assert scoring.score(lead).score == points


def test_is_true_refuses_a_field_that_is_not_yes_or_no() -> None:
    with pytest.raises(ValidationError, match=r"property\.address_verified"):
        Scoring.model_validate({"conditions": [{"name": "x", "points": 5, "is_true": "phone"}]})


# --- through the pipeline -----------------------------------------------------------------

RULE = """\
source: portal
version: 1
match:
  from: ["*@portal.example"]
fields:
  full_name:
    - label: Name
  phone:
    - label: Phone
  address:
    - label: Property
required: [full_name, phone]
"""


def portal_email(address: str) -> bytes:
    return (
        "From: Portal Leads <leads@portal.example>\r\nTo: inbox@brokerage.example\r\n"
        "Subject: New lead\r\nMessage-ID: <a.1@portal.example>\r\n"
        "Date: Tue, 03 Nov 2026 14:22:05 -0500\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Name: Ana Ruiz\r\nPhone: (305) 555-0142\r\nProperty: {address}\r\n"
    ).encode()


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "portal.yaml").write_text(RULE, encoding="utf-8")
    (folder / "scoring.yaml").write_text((RULES / "scoring.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return Engine.load(folder)


def test_a_parsed_emails_lead_carries_the_verification_and_its_points(engine: Engine) -> None:
    lead = parse_email(portal_email("123 Main St Apt 4B, Coral Gables, FL 33134"), engine)
    assert isinstance(lead, Lead)
    p = lead.property
    assert (p.address, p.city, p.state, p.postal_code) == ("123 Main St Apt 4B", "Coral Gables", "FL", "33134")
    assert (p.address_verified, p.address_usps) == (True, "123 MAIN ST APT 4B")
    assert lead.to_json()["property"]["address_check"] == "ZIP 33134 is in Miami, FL; Coral Gables is one of its names"
    assert "verified address" in [line.name for line in lead.score_breakdown]


def test_a_parsed_email_with_a_wrong_zip_code_says_so_and_gets_no_points(engine: Engine) -> None:
    lead = parse_email(portal_email("123 Main St, Miami, FL 60601"), engine)
    assert isinstance(lead, Lead)
    assert lead.to_json()["property"]["address_verified"] is False
    assert lead.property.address_check == "ZIP 60601 is in IL, not FL"
    assert "verified address" not in [line.name for line in lead.score_breakdown]


def test_a_parsed_email_missing_its_city_gets_it_from_the_zip_code_with_a_warning(engine: Engine) -> None:
    lead = parse_email(portal_email("1487 Coral Way 33145"), engine)
    assert isinstance(lead, Lead)
    assert (lead.property.city, lead.property.state) == ("Miami", "FL")
    assert "city Miami and state FL filled from ZIP code 33145" in lead.warnings


def test_a_webhook_lead_is_verified_the_same_way() -> None:
    engine = Engine.load(RULES)
    mapping = engine.webhooks.get("website_form")
    assert mapping is not None
    body = json.dumps({"id": "sub_1", "contact": {"name": "Ana Ruiz", "phone": "(305) 555-0142"},
                       "listing": {"address": "1487 Coral Way Unit 3", "zip": "33145"}}).encode()
    lead = parse_webhook(body, mapping, engine)
    assert isinstance(lead, Lead)
    p = lead.property
    assert (p.address, p.city, p.state) == ("1487 Coral Way Unit 3", "Miami", "FL")
    assert (p.address_verified, p.address_usps) == (True, "1487 CORAL WAY UNIT 3")
    assert "city Miami and state FL filled from ZIP code 33145" in lead.warnings
