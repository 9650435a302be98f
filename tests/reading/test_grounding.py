"""Grounding: a model's value is kept only when the email itself holds it."""

from __future__ import annotations

from daemon.reading.grounding import ground

EMAIL = """From: Zillow <leads@mail.example.zillow.com>
Subject: New lead for 1487 Coral Way

Name: José Núñez
Phone: (305) 555-0142
Email: Jose.Nunez@example.com
Property: 1487 Coral Way, Miami, Florida 33145 — listed at $450,000 (budget up to 1.2M)

“I’d like to see it this weekend.”
"""


def test_values_the_email_holds_are_kept_however_they_are_written():
    got = ground({"full_name": "Jose NUNEZ", "phone": "+13055550142", "email": "jose.nunez@example.com",
                  "address": "1487 Coral Way", "city": "Miami", "state": "FL", "postal_code": "33145",
                  "price": 450000, "budget_max": 1200000.0, "intent": "buy",
                  "message": "I'd like to see it this weekend."}, EMAIL)
    assert got.dropped == ()
    assert set(got.fields) == {"full_name", "phone", "email", "address", "city", "state", "postal_code",
                               "price", "budget_max", "intent", "message"}


def test_an_invented_phone_is_dropped_with_a_warning_that_does_not_give_it_away():
    got = ground({"phone": "+1 (786) 555-0199", "email": "jose.nunez@example.com"}, EMAIL)
    assert "phone" not in got.fields and got.fields["email"] == "jose.nunez@example.com"
    (warning,) = got.dropped
    assert warning.startswith("the model: phone ") and warning.endswith("dropped")
    assert "786) 555-0199" not in warning and "7865550199" not in warning


def test_an_invented_email_or_one_changed_letter_is_dropped():
    for invented in ("jose@example.com", "jose.nunes@example.com", "leads@example.zillow.com"):
        got = ground({"email": invented}, EMAIL)
        assert got.fields == {} and "email" in got.dropped[0], invented


def test_a_phone_made_of_digits_scattered_in_the_email_is_not_a_number_written_in_it():
    # 1487, 33145, 450,000: digits that are in the email, but not one phone number
    got = ground({"phone": "1487331454"}, EMAIL)
    assert got.fields == {}


def test_a_name_or_city_with_a_word_not_in_the_email_is_dropped():
    got = ground({"full_name": "José Martínez", "city": "Coral Gables", "first_name": "José"}, EMAIL)
    assert got.fields == {"first_name": "José"}
    assert len(got.dropped) == 2


def test_a_rephrased_message_and_an_unwritten_price_are_dropped():
    got = ground({"message": "Wants a tour on the weekend", "price": 475000, "budget_max": 1300000}, EMAIL)
    assert got.fields == {} and len(got.dropped) == 3


def test_a_state_given_by_name_or_code_and_an_unknown_key_is_refused():
    assert ground({"state": "FL"}, EMAIL).fields == {"state": "FL"}
    assert ground({"state": "GA"}, EMAIL).fields == {}
    got = ground({"ssn": "123"}, EMAIL)
    assert got.fields == {} and "not a field" in got.dropped[0]


def test_empty_and_null_values_are_skipped_not_warned_about():
    assert ground({"phone": None, "email": "", "full_name": "  "}, EMAIL).dropped == ()


def test_an_email_that_is_only_part_of_an_address_written_in_the_email_is_dropped():
    text = "Contact: juana@example.com.br or call"
    assert ground({"email": "ana@example.com"}, text).fields == {}
    assert ground({"email": "Juana@Example.com.br"}, text).fields == {"email": "Juana@Example.com.br"}


def test_a_phone_beside_another_number_on_its_line_or_the_next_is_kept():
    for text in ("Phone: 305-555-0142\n12 Palm Ave", "305-555-0142\n33139", "305-555-0142\n\n2 beds",
                 "ZIP 33139 (305) 555-0142", "305-555-0142 / 2 beds", "tel +1 305 555 0142."):
        assert ground({"phone": "+13055550142"}, text).fields == {"phone": "+13055550142"}, text


def test_a_dropped_phone_shows_only_its_last_two_digits():
    (warning,) = ground({"phone": "+1 786 555 0199"}, EMAIL).dropped
    assert "a number ending 99" in warning and "0199" not in warning and "786" not in warning
