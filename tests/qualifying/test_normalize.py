"""normalize: the raw strings a rule extracted become one clean lead.

Each test says which promise to agents and CRMs breaks if it fails: a phone the dialer
cannot call, a name shouted in capitals in Slack, a budget the scorer misreads, an
empty string where the lead contract promises ``null``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from daemon.lead import Lead
from daemon.qualifying.normalize import (
    Address,
    case_name,
    normalize_email,
    normalize_fields,
    normalize_phone,
    parse_intent,
    parse_money,
    parse_money_range,
    split_address,
    split_name,
)

PLACEHOLDERS = ["", "   ", "\t\n", "N/A", "n/a", "NA", "none", "None", "NULL", "-", "--", "—",
                "unknown", "Not provided", "?", "."]
RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def lead(fields: dict[str, str], **kwargs: object) -> Lead:
    """normalize_fields with the bookkeeping arguments every call needs."""
    options: dict[str, object] = {"source": "zillow", "rule_version": "3", "message_id": "<m@x>",
                                  "received_at": RECEIVED}
    options.update(kwargs)
    return normalize_fields(fields, **options)  # type: ignore[arg-type]


# --- phone ---------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("970.924.0423", "+19709240423"),
    ("(804)477-7777", "+18044777777"),
    ("(804) 477-7777", "+18044777777"),
    ("517-881-7829", "+15178817829"),
    ("5178817829", "+15178817829"),
    ("+15555555555", "+15555555555"),
    ("1-970-924-0423", "+19709240423"),
    ("+1 (970) 924-0423", "+19709240423"),
    ("970-924-0423 x123", "+19709240423"),
    ("970.924.0423 ext. 45", "+19709240423"),
    ("970-924-0423#9", "+19709240423"),
    ("+13055550142", "+13055550142"),
    ("305-555-0142", "+13055550142"),
    ("(555) 555-0142", "+15555550142"),
    ("(804) 477-7777 (mobile)", "+18044777777"),
    ("804-477-7777 / 303-555-1212", "+18044777777"),
    ("📞 804-477-7777", "+18044777777"),
    ("+44 20 7946 0958", "+442079460958"),
    ("  970.924.0423  ", "+19709240423"),
])
def test_phone_numbers_as_typed_in_lead_emails_become_dialable_e164(raw: str, expected: str) -> None:
    """Agents click to call and CRMs dedupe on phone: every common US spelling is one E.164."""
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", [
    "12345", "477-7777", "123-456-7890", "911", "555-0142", "0000000000", "call me",
    "not a phone", "9" * 300, "☎️", "+1 (212) 555-01", *PLACEHOLDERS,
])
def test_phone_that_cannot_be_dialled_is_no_phone(raw: str) -> None:
    """A lead never carries a number an agent would dial in vain."""
    assert normalize_phone(raw) is None


def test_phone_without_country_code_uses_the_configured_region() -> None:
    """A UK brokerage (default_region: GB) gets UK numbers, not US guesses."""
    assert normalize_phone("020 7946 0958", region="GB") == "+442079460958"
    assert normalize_phone("020 7946 0958", region="gb") == "+442079460958"


def test_phone_with_unknown_region_is_no_phone_rather_than_a_crash() -> None:
    """A misconfigured region never stops the daemon."""
    assert normalize_phone("970-924-0423", region="XX") is None


# --- email ---------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("John.Doe@Example.COM", "john.doe@example.com"),
    ("jane@example.com", "jane@example.com"),
    ("  jane@example.com ", "jane@example.com"),
    ("<jane@example.com>", "jane@example.com"),
    ("mailto:Jane@Example.com", "jane@example.com"),
    ("jane@example.com.", "jane@example.com"),
    ("jane+zillow@gmail.com", "jane+zillow@gmail.com"),
    ("JOSÉ@EXAMPLE.COM", "josé@example.com"),
])
def test_email_is_lower_cased_so_the_same_person_is_one_lead(raw: str, expected: str) -> None:
    """Dedup matches emails case-insensitively: the stored form is wholly lower-case."""
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", [
    "x", "jane", "jane@", "@example.com", "jane@localhost", "jane@example", "jane doe@example.com",
    "jane@@example.com", "a" * 300 + "@example.com", "jane@exa mple.com", *PLACEHOLDERS,
])
def test_invalid_email_is_no_email(raw: str) -> None:
    """The CRM never receives an address it would reject or bounce."""
    assert normalize_email(raw) is None


# --- names ---------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("JOHN MCDONALD", ("John McDonald", "John", "McDonald")),
    ("mary o'brien", ("Mary O'Brien", "Mary", "O'Brien")),
    ("JAN VAN DER BERG", ("Jan van der Berg", "Jan", "van der Berg")),
    ("josé garcía", ("José García", "José", "García")),
    ("MARY-JANE SMITH-JONES", ("Mary-Jane Smith-Jones", "Mary-Jane", "Smith-Jones")),
    ("Smith, John", ("John Smith", "John", "Smith")),
    ("O'NEIL, SHAUNA", ("Shauna O'Neil", "Shauna", "O'Neil")),
    ("Cher", ("Cher", "Cher", None)),
    ("bob", ("Bob", "Bob", None)),
    ("Dr. Ana Ruiz Jr.", ("Ana Ruiz Jr.", "Ana", "Ruiz")),
    ("DR. ANA RUIZ JR.", ("Ana Ruiz Jr.", "Ana", "Ruiz")),
    ("Mrs. Jane Doe", ("Jane Doe", "Jane", "Doe")),
    ("Dr. Smith", ("Smith", None, "Smith")),
    ("ronald mcdonald iii", ("Ronald McDonald III", "Ronald", "McDonald")),
    ("John Smith, Jr.", ("John Smith Jr.", "John", "Smith")),
    ("DeShawn Williams", ("DeShawn Williams", "DeShawn", "Williams")),
    ("Patrick McDonald", ("Patrick McDonald", "Patrick", "McDonald")),
    ("LUDWIG VAN BEETHOVEN", ("Ludwig van Beethoven", "Ludwig", "van Beethoven")),
    ("maria de la cruz", ("Maria de la Cruz", "Maria", "de la Cruz")),
    ("DA SILVA, JOÃO", ("João da Silva", "João", "da Silva")),
    ("JEAN-LUC PICARD", ("Jean-Luc Picard", "Jean-Luc", "Picard")),
    ("JOSE MACHADO", ("Jose Machado", "Jose", "Machado")),
    ("ana macias", ("Ana Macias", "Ana", "Macias")),
    ("MACKENZIE JONES", ("Mackenzie Jones", "Mackenzie", "Jones")),
    ("ANA MARIA RUIZ-LOPEZ", ("Ana Maria Ruiz-Lopez", "Ana", "Ruiz-Lopez")),
    ("Björn Ångström", ("Björn Ångström", "Björn", "Ångström")),
    ("SEAN O'CONNOR", ("Sean O'Connor", "Sean", "O'Connor")),
    ("J. R. R. Tolkien", ("J. R. R. Tolkien", "J.", "Tolkien")),
    ("李小龙", ("李小龙", "李小龙", None)),
    ("김민준", ("김민준", "민준", "김")),
    ('"John Smith"', ("John Smith", "John", "Smith")),
    ("“Ana Ruiz”", ("Ana Ruiz", "Ana", "Ruiz")),
    ("John Smith.", ("John Smith", "John", "Smith")),
    ("John Smith,", ("John Smith", "John", "Smith")),
    ("  John   Smith  ", ("John Smith", "John", "Smith")),
    ("john smith 😀", ("John Smith", "John", "Smith")),
    ("👍 Ana Ruiz", ("Ana Ruiz", "Ana", "Ruiz")),
    ("J\ufffdrgen Wei\ufffd", ("J\ufffdrgen Wei\ufffd", "J\ufffdrgen", "Wei\ufffd")),
])
def test_names_are_cased_and_split_the_way_people_write_them(
    raw: str, expected: tuple[str | None, str | None, str | None],
) -> None:
    """Agents greet leads by first name and CRMs file them by last name: both must be right."""
    assert split_name(raw) == expected


@pytest.mark.parametrize("raw", [
    "jane@example.com", "(555) 555-0142", "5555550142", "12345", "!!!", "😀😀", "x" * 101,
    *PLACEHOLDERS,
])
def test_text_that_is_not_a_name_gives_no_name(raw: str) -> None:
    """A lead is never greeted as "Jane@Example.Com" or "(555) 555-0142"."""
    assert split_name(raw) == (None, None, None)


@pytest.mark.parametrize(("raw", "expected"), [
    ("JOHN MCDONALD", "John McDonald"),
    ("jan van der berg", "Jan van der Berg"),
    ("VAN", "Van"),
    ("o'brien", "O'Brien"),
    ("DeShawn", "DeShawn"),
    ("McDonald", "McDonald"),
    ("Smith, John", "Smith, John"),
    ("SMITH, JOHN", "Smith, John"),
    ("mary-jane", "Mary-Jane"),
    ("MACHADO", "Machado"),
    ("'Ana'", "Ana"),
    ("", ""),
    ("N/A", ""),
    ("jane@example.com", "jane@example.com"),
])
def test_case_name_fixes_shouted_or_lower_case_names_and_keeps_deliberate_spellings(
    raw: str, expected: str,
) -> None:
    """A name typed in one case is repaired; "DeShawn" is never flattened to "Deshawn"."""
    assert case_name(raw) == expected


# --- money ---------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("$1.2M", 1_200_000), ("$1.15M", 1_150_000), ("450k", 450_000), ("450K", 450_000),
    ("450 K", 450_000), ("$450,000", 450_000), ("1,200,000.00", 1_200_000),
    ("$3,175+", 3175), ("$3,175/mo", 3175), ("$3,175 per month", 3175), ("USD 450,000", 450_000),
    ("450000 USD", 450_000), ("$2 million", 2_000_000), ("$1.5mm", 1_500_000),
    ("$1bn", 1_000_000_000), ("~$500k", 500_000), ("$99.50", 99.5), (".5M", 500_000),
    ("0", 0), (" $450,000 ", 450_000),
])
def test_money_in_any_common_spelling_is_a_number_of_dollars(raw: str, expected: float) -> None:
    """Scoring and the CRM compare prices as numbers; "$1.2M" and "1,200,000" are the same."""
    assert parse_money(raw) == expected


@pytest.mark.parametrize("raw", [
    "garbage", "call for price", "$", "k", "-5", "1,2", "1,2345", "$1.2.3", "$450,000 - $600,000",
    "1e6", "💰", "9" * 50 + "x", *PLACEHOLDERS,
])
def test_text_that_is_not_an_amount_is_no_amount(raw: str) -> None:
    """A lead never carries a made-up price."""
    assert parse_money(raw) is None


@pytest.mark.parametrize(("raw", "expected"), [
    ("$450,000 - $600,000", (450_000, 600_000)),
    ("$450,000-$600,000", (450_000, 600_000)),
    ("$450K–$500K", (450_000, 500_000)),
    ("$400K to $500K", (400_000, 500_000)),
    ("between $300,000 and $400,000", (300_000, 400_000)),
    ("from 400k to 500k", (400_000, 500_000)),
    ("400-500k", (400_000, 500_000)),
    ("$1.2-1.5M", (1_200_000, 1_500_000)),
    ("1-2M", (1_000_000, 2_000_000)),
    ("$600k-$450k", (450_000, 600_000)),
    ("$3,000/mo - $3,500/mo", (3000, 3500)),
    ("Under $500K", (None, 500_000)),
    ("up to 500k", (None, 500_000)),
    ("Max $750,000", (None, 750_000)),
    ("less than 1M", (None, 1_000_000)),
    ("500k+", (500_000, None)),
    ("over $1M", (1_000_000, None)),
    ("at least $300k", (300_000, None)),
    ("500k and up", (500_000, None)),
    ("400k or more", (400_000, None)),
    ("$1M - $2M+", (1_000_000, 2_000_000)),
    ("450k", (None, 450_000)),
    ("$450,000", (None, 450_000)),
])
def test_budget_text_becomes_a_minimum_and_maximum(
    raw: str, expected: tuple[float | None, float | None],
) -> None:
    """Scoring and routing read budget_min/budget_max; a single amount is the buyer's ceiling."""
    assert parse_money_range(raw) == expected


@pytest.mark.parametrize("raw", ["lots", "$450,000 - abc", "under nothing", "under 400-500k", "5-",
                                 "-5", "💰💰", *PLACEHOLDERS])
def test_budget_that_does_not_parse_is_no_budget(raw: str) -> None:
    """A lead never carries half of a budget it could not read."""
    assert parse_money_range(raw) == (None, None)


# --- intent --------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("buy", "buy"), ("Buying", "buy"), ("BUYER", "buy"), ("I want to purchase", "buy"),
    ("Home Search", "buy"), ("looking for a home", "buy"), ("buy an apartment", "buy"),
    ("sell", "sell"), ("Selling", "sell"), ("Seller lead", "sell"), ("list my home", "sell"),
    ("Home Value request", "sell"), ("valuation", "sell"), ("What is my home worth?", "sell"),
    ("rent", "rent"), ("renting", "rent"), ("Rental inquiry", "rent"), ("lease", "rent"),
    ("apartment", "rent"), ("looking for a home to rent", "rent"),
    ("I want to sell my home and buy another", "sell"),
])
def test_intent_is_read_from_how_the_lead_describes_itself(raw: str, expected: str) -> None:
    """Buyers, sellers and renters go to different agents: the intent must be right."""
    assert parse_intent(raw) == expected


@pytest.mark.parametrize("raw", ["hello", "more info", "bye", "résumé", "🏠", *PLACEHOLDERS])
def test_text_without_an_intent_keyword_is_no_intent(raw: str) -> None:
    """An unclear lead is routed as unknown, never guessed into the wrong team."""
    assert parse_intent(raw) is None


# --- address -------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("123 Main St, Springfield, IL 62704", Address("123 Main St", "Springfield", "IL", "62704")),
    ("123 Main St, Springfield, Illinois 62704-1234",
     Address("123 Main St", "Springfield", "IL", "62704-1234")),
    ("4500 N Ocean Dr Apt 12B, Fort Lauderdale, FL 33308",
     Address("4500 N Ocean Dr Apt 12B", "Fort Lauderdale", "FL", "33308")),
    ("55 Elm St., Apt. 2, Boston, MA 02115", Address("55 Elm St., Apt. 2", "Boston", "MA", "02115")),
    ("742 Evergreen Terrace Springfield OR 97477",
     Address("742 Evergreen Terrace", "Springfield", "OR", "97477")),
    ("1600 Pennsylvania Ave NW, Washington, DC 20500",
     Address("1600 Pennsylvania Ave NW", "Washington", "DC", "20500")),
    ("PO Box 123, Austin, TX 78701", Address("PO Box 123", "Austin", "TX", "78701")),
    ("77 Harbor View Dr #12, Seattle, WA 98101",
     Address("77 Harbor View Dr #12", "Seattle", "WA", "98101")),
    ("Apt 4, 12 Oak Ave, Miami, FL 33101", Address("Apt 4, 12 Oak Ave", "Miami", "FL", "33101")),
    ("123 Main Street, Saint Paul, minnesota 55101",
     Address("123 Main Street", "Saint Paul", "MN", "55101")),
    ("123 Main St, Springfield, IL 62704, USA", Address("123 Main St", "Springfield", "IL", "62704")),
    ("123 Main St\nSpringfield, IL 62704", Address("123 Main St", "Springfield", "IL", "62704")),
    ('"123 Main St, Springfield, IL 62704"', Address("123 Main St", "Springfield", "IL", "62704")),
    ("Springfield, IL", Address(None, "Springfield", "IL", None)),
    ("12 Oak Ave, Miami", Address("12 Oak Ave", "Miami", None, None)),
    # usaddress finds a label twice: read from the right instead.
    ("123 Main St, 123 Main St, Boston MA", Address("123 Main St, 123 Main St", "Boston", "MA", None)),
    ("123 Main St, 123 Main St, Fort Lauderdale, Florida 33308",
     Address("123 Main St, 123 Main St", "Fort Lauderdale", "FL", "33308")),
])
def test_address_line_is_split_into_street_city_state_and_zip(raw: str, expected: Address) -> None:
    """Agents search the MLS by street and route by state: each part lands in its field."""
    assert split_address(raw) == expected


@pytest.mark.parametrize(("raw", "street"), [
    ("123 Main St", "123 Main St"),
    ("lot 5 somewhere", "lot 5 somewhere"),
    ("Call me about the house", "Call me about the house"),
    ("Miami", "Miami"),
    ("12 Oak Ave Miami FL 3310", "12 Oak Ave Miami FL 3310"),
    ("123 Main St, Springfield, ZZ 62704", "123 Main St, Springfield, ZZ 62704"),
    ("  123   Main St  ", "123 Main St"),
    ("x" * 2000, "x" * 2000),
])
def test_address_that_cannot_be_split_is_kept_whole_as_the_street(raw: str, street: str) -> None:
    """No part of an address the lead typed is lost because it could not be read."""
    assert split_address(raw) == Address(street=street)


@pytest.mark.parametrize("raw", PLACEHOLDERS)
def test_blank_address_is_no_address(raw: str) -> None:
    """The lead contract has null, never "", for a missing address."""
    assert split_address(raw) == Address()


# --- normalize_fields ----------------------------------------------------------------

def test_a_typical_lead_comes_out_clean_and_complete() -> None:
    """The lead contract: E.164 phone, lower-case email, cased names, numbers for money."""
    out = lead({
        "full_name": "JOHN MCDONALD", "email": "John.McDonald@Example.COM",
        "phone": "(804)477-7777", "address": "123 Main St, Springfield, Illinois 62704",
        "price": "$450,000", "mls_id": "MLS123", "url": "https://zillow.com/h/1",
        "budget": "$400K to $500K", "intent": "Buying", "message": '"Is it still   available?"',
    })
    assert out.to_json() == {
        "source": "zillow", "rule_version": "3", "message_id": "<m@x>",
        "received_at": "2026-03-01T12:00:00+00:00",
        "full_name": "John McDonald", "first_name": "John", "last_name": "McDonald",
        "email": "john.mcdonald@example.com", "phone": "+18044777777",
        "property": {"address": "123 Main St", "city": "Springfield", "state": "IL",
                     "postal_code": "62704", "price": 450000, "mls_id": "MLS123",
                     "url": "https://zillow.com/h/1",
                     # checked against the ZIP code database (daemon/qualifying/address.py)
                     "address_verified": True, "address_check": "ZIP 62704 is in Springfield, IL",
                     "address_usps": "123 MAIN ST",
                     # filled by a geocoder, when one is configured (daemon/providers/)
                     "latitude": None, "longitude": None, "county": None,
                     "geocode_quality": None, "geocoder": None},
        "budget_min": 400000, "budget_max": 500000, "intent": "buy",
        # the inquiry reader runs after normalizing (daemon/qualifying/intent.py): all null here
        "inquiry": {"intent": None, "urgency": None, "pre_approved": None, "cash": None,
                    "investor": None, "timeline_days": None},
        "message": "Is it still available?", "score": 0, "tier": "standard", "warnings": [],
        # filled by an enrichment provider, when one is configured (daemon/providers/)
        "enrichment": None,
    }


def test_empty_fields_give_a_lead_of_nulls_never_empty_strings() -> None:
    """Tools reading `leadpipe parse --json` rely on null for every absent value."""
    out = lead({})
    assert out == Lead(source="zillow", rule_version="3", message_id="<m@x>",
                       received_at=RECEIVED)
    assert out.property.is_empty()


FIELDS = ["full_name", "first_name", "last_name", "email", "phone", "address", "city", "state",
          "postal_code", "price", "mls_id", "url", "budget", "budget_min", "budget_max",
          "intent", "message"]


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
def test_placeholder_in_any_field_is_absent_without_a_warning(placeholder: str) -> None:
    """"N/A" typed into a web form is no value, not a value to warn about or store."""
    out = lead(dict.fromkeys(FIELDS, placeholder))
    assert out == Lead(source="zillow", rule_version="3", message_id="<m@x>",
                       received_at=RECEIVED)


@pytest.mark.parametrize(("field", "raw", "warning"), [
    ("phone", "12345", "phone '12345' is not a valid phone number; left empty"),
    ("email", "x", "email 'x' is not a valid address; left empty"),
    ("price", "call", "price 'call' is not an amount of money; left empty"),
    ("budget", "lots", "budget 'lots' is not an amount or range of money; left empty"),
    ("budget_min", "some", "budget min 'some' is not an amount of money; left empty"),
    ("budget_max", "more", "budget max 'more' is not an amount of money; left empty"),
    ("intent", "hmm", "intent 'hmm' is not buy, sell or rent; left empty"),
    ("state", "Ontario", "state 'Ontario' is not a US state; left empty"),
    ("postal_code", "K1A 0B1", "postal code 'K1A 0B1' is not a US ZIP code; left empty"),
    ("full_name", "jane@example.com",
     "full name 'jane@example.com' looks like an email address; ignored"),
    ("first_name", "555-555-0142", "first name '555-555-0142' looks like a phone number; ignored"),
    ("last_name", "###", "last name '###' has no letters; ignored"),
])
def test_value_that_cannot_be_normalized_is_left_empty_and_explained(
    field: str, raw: str, warning: str,
) -> None:
    """Nothing is dropped silently: the lead says which value was unusable and why."""
    out = lead({field: raw})
    assert out.warnings == (warning,)
    assert out.full_name is None
    assert out.email is None and out.phone is None and out.intent is None
    assert out.property.is_empty()
    assert (out.budget_min, out.budget_max) == (None, None)


def test_warnings_from_the_parser_come_before_normalize_warnings() -> None:
    """The dead-letter and lead views show problems in the order the pipeline met them."""
    out = lead({"phone": "12345"}, warnings=["rule: price not found"])
    assert out.warnings == ("rule: price not found",
                            "phone '12345' is not a valid phone number; left empty")


def test_very_long_value_is_shortened_in_its_warning() -> None:
    """A rule that captured a whole page makes a readable warning, not a megabyte of text."""
    out = lead({"phone": "9" * 5000})
    assert out.phone is None
    assert len(out.warnings[0]) < 150


@pytest.mark.parametrize(("fields", "expected"), [
    ({"first_name": "JOHN", "last_name": "MCDONALD"}, ("John McDonald", "John", "McDonald")),
    ({"first_name": "jan", "last_name": "VAN DER BERG"},
     ("Jan van der Berg", "Jan", "van der Berg")),
    ({"first_name": "john", "last_name": "McDonald"}, ("John McDonald", "John", "McDonald")),
    ({"first_name": "DeShawn", "last_name": "WILLIAMS"},
     ("DeShawn Williams", "DeShawn", "Williams")),
    ({"first_name": "Cher"}, ("Cher", "Cher", None)),
    ({"last_name": "o'brien"}, ("O'Brien", None, "O'Brien")),
    ({"first_name": "mary-jane", "last_name": "smith-jones"},
     ("Mary-Jane Smith-Jones", "Mary-Jane", "Smith-Jones")),
    ({"full_name": "JOHN Q MCDONALD", "first_name": "Johnny"},
     ("John Q McDonald", "Johnny", "McDonald")),
    ({"full_name": "Ana Ruiz", "first_name": "ANA", "last_name": "RUIZ LOPEZ"},
     ("Ana Ruiz", "Ana", "Ruiz Lopez")),
    ({"full_name": "jane@example.com", "first_name": "jane", "last_name": "doe"},
     ("Jane Doe", "Jane", "Doe")),
    ({"full_name": "N/A", "first_name": "ana"}, ("Ana", "Ana", None)),
])
def test_first_and_last_name_fields_win_and_full_name_is_built_when_missing(
    fields: dict[str, str], expected: tuple[str | None, str | None, str | None],
) -> None:
    """When a provider sends separate name fields, the CRM gets exactly those, cased."""
    out = lead(fields)
    assert (out.full_name, out.first_name, out.last_name) == expected


def test_explicit_city_state_and_zip_win_over_the_split_address() -> None:
    """A provider's own city/state/ZIP fields are more reliable than splitting a line."""
    out = lead({"address": "123 Main St, Springfield, IL 62704", "city": "Chatham",
                "state": "missouri", "postal_code": "62629"})
    assert out.property.address == "123 Main St"
    assert (out.property.city, out.property.state, out.property.postal_code) == (
        "Chatham", "MO", "62629")


@pytest.mark.parametrize(("raw", "expected"), [
    ("IL", "IL"), ("il", "IL"), ("Illinois", "IL"), ("ILLINOIS", "IL"), ("new  york", "NY"),
    ("D.C.", "DC"), ("District of Columbia", "DC"), ("Washington DC", "DC"), ("Puerto Rico", "PR"),
    ("TX.", "TX"),
])
def test_state_is_stored_as_its_two_letter_code(raw: str, expected: str) -> None:
    """Routing by state compares codes: "Illinois" and "IL" must be the same state."""
    out = lead({"state": raw})
    assert (out.property.state, out.warnings) == (expected, ())


@pytest.mark.parametrize(("raw", "expected"), [
    ("62704", "62704"), ("62704-1234", "62704-1234"), ("02115", "02115"),
])
def test_zip_code_is_kept_as_given(raw: str, expected: str) -> None:
    """A ZIP+4 is never cut to five digits and a leading zero is never lost."""
    assert lead({"postal_code": raw}).property.postal_code == expected


@pytest.mark.parametrize("raw", ["6270", "627041", "ABCDE", "62704-12"])
def test_malformed_zip_code_is_left_empty(raw: str) -> None:
    """A lead never carries a ZIP code that matches no place."""
    out = lead({"postal_code": raw})
    assert out.property.postal_code is None
    assert len(out.warnings) == 1


def test_address_that_cannot_be_split_is_stored_whole() -> None:
    """The agent still sees everything the lead typed as the property address."""
    out = lead({"address": "the blue house  near the lake", "state": "FL"})
    assert out.property.address == "the blue house near the lake"
    assert out.property.state == "FL"
    assert out.warnings == ()


@pytest.mark.parametrize(("fields", "expected"), [
    ({"budget": "$450,000 - $600,000"}, (450_000, 600_000)),
    ({"budget": "450k"}, (None, 450_000)),
    ({"budget": "500k+"}, (500_000, None)),
    ({"budget_min": "$300k", "budget_max": "$400k"}, (300_000, 400_000)),
    ({"budget": "$450,000 - $600,000", "budget_max": "$650,000"}, (450_000, 650_000)),
    ({"budget": "under 1M", "budget_min": "0"}, (0, 1_000_000)),
])
def test_budget_fields_fill_budget_min_and_max(
    fields: dict[str, str], expected: tuple[float | None, float | None],
) -> None:
    """Scoring reads one budget range, whichever way the provider sent it."""
    out = lead(fields)
    assert (out.budget_min, out.budget_max) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("buy", "buy"), ("sell", "sell"), ("rent", "rent"), ("Home Value", "sell"),
    ("Rental Inquiry", "rent"),
])
def test_intent_field_becomes_the_lead_intent(raw: str, expected: str) -> None:
    """Routing sends the lead to the buyer, seller or rental team."""
    assert lead({"intent": raw}).intent == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ('"Is it still available?"', "Is it still available?"),
    ("“I'd like a tour”", "I'd like a tour"),
    ("'Hi'", "Hi"),
    ("Hello,\n\n  I am   interested.\r\n Thanks", "Hello, I am interested. Thanks"),
    ("We love it 😍🏡", "We love it 😍🏡"),
    ('""', None),
    ("  \n ", None),
    ("x" * 10_000, "x" * 10_000),
])
def test_message_is_one_tidy_line_with_the_leads_own_words(raw: str, expected: str | None) -> None:
    """Slack shows the message on one line, without the provider's quotation marks."""
    assert lead({"message": raw}).message == expected


@pytest.mark.parametrize(("fields", "expected"), [
    ({"mls_id": " MLS123 "}, ("MLS123", None)),
    ({"mls_id": "#A10234"}, ("A10234", None)),
    ({"url": " https://example.com/h/1 "}, (None, "https://example.com/h/1")),
    ({"url": "<https://example.com/h/1>"}, (None, "https://example.com/h/1")),
])
def test_mls_id_and_url_are_stored_trimmed(
    fields: dict[str, str], expected: tuple[str | None, str | None],
) -> None:
    """Agents look the listing up by MLS number and link: no stray spaces or brackets."""
    out = lead(fields)
    assert (out.property.mls_id, out.property.url) == expected


def test_unknown_field_names_are_ignored() -> None:
    """A rule with an extra capture never breaks normalization."""
    out = lead({"favourite_colour": "blue", "phone": "970.924.0423"})
    assert out.phone == "+19709240423"
    assert out.warnings == ()


def test_scoring_fields_are_left_for_the_scoring_stage() -> None:
    """Normalize never scores: every lead leaves it at 0/standard for scoring to decide."""
    out = lead({"full_name": "Ana Ruiz", "budget": "$2M+", "intent": "buy"})
    assert (out.score, out.tier, out.score_breakdown) == (0, "standard", ())


def test_phone_region_is_passed_through_for_local_numbers() -> None:
    """A brokerage's default_region decides how local numbers are read."""
    assert lead({"phone": "020 7946 0958"}, region="GB").phone == "+442079460958"


@pytest.mark.parametrize("value", [
    "\x00", "\u200b", "🙂" * 50, "a" * 100_000, "<script>alert(1)</script>", "Robert'); DROP--",
])
def test_hostile_values_never_stop_the_daemon(value: str) -> None:
    """Bad input never stops the daemon: every field survives any string."""
    out = lead(dict.fromkeys(FIELDS, value))
    assert isinstance(out, Lead)
    assert "" not in (out.full_name, out.first_name, out.last_name, out.email, out.phone,
                      out.message, out.property.address, out.property.city)
