"""The inquiry reader (daemon/qualifying/intent.py): intent, urgency, financing and timeline
read from sentences, not keywords. Every sentence here is written for the test; the blind
corpus (fixtures/intent) is measured as a whole at the end, against the keyword baseline."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from daemon.lead import Inquiry, Lead
from daemon.qualifying.inquiry import with_inquiry
from daemon.qualifying.intent import read_inquiry
from daemon.qualifying.timeline import find_times

ROOT = Path(__file__).resolve().parents[2]
WED = date(2026, 12, 2)  # a Wednesday, the intent corpus's today
YEAR_END = date(2026, 12, 30)  # a Wednesday, two days before a new year
MONTH_END = date(2027, 1, 29)  # a Friday


def read(text: str, context: str | None = "zillow buyer contact form", today: date | None = WED) -> Inquiry:
    return read_inquiry(text, today=today, context=context)


# -- intent -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "context", "intent"), [
    ("We'd love to buy a place near the lake this year.", None, "buy"),
    ("I'm not looking to buy, I just want to rent a 2 bedroom for a year.", None, "rent"),
    ("Not looking to buy for another year, but keep us posted on new listings.", None, "buy"),
    ("Thinking of selling my condo, what would it be worth?", None, "sell"),
    ("We're not selling until we find something bigger in the same school district.", None, "buy_and_sell"),
    ("We have to sell our ranch before we can buy the next one.", None, "buy_and_sell"),
    ("Can you sell me on this neighborhood? Moving from out of state.", "zillow buyer contact form", "buy"),
    ("My buyer backed out last week, I'm selling my house myself.", None, "sell"),
    ("Is this unit still available?", "hotpads rental inquiry", "rent"),
    ("Is this unit still available?", "text to a sign rider (sign type not recorded)", None),
    ("Not sure if we want to rent or buy yet.", None, None),
    ("hi", "zillow buyer contact form", None),
    ("Is the seller willing to do owner financing?", None, "buy"),
    ("Just wondering what homes like mine are selling for around here.", None, "sell"),
    ("We're moving in June and need to sell our house first, then buy there.", None, "buy_and_sell"),
    ("The landlord sold the building, so I need a new apartment to rent.", None, "rent"),
    ("Quiero comprar una casa de tres recámaras.", None, "buy"),
    ("Busco rentar un apartamento cerca del centro.", None, "rent"),
    ("Quiero vender mi casa este año.", None, "sell"),
])
def test_intent_is_the_transaction_the_writer_wants(text: str, context: str | None, intent: str | None):
    """Routing a seller to a buyer's agent (or a renter to a listing agent) starts here."""
    assert read(text, context).intent == intent


def test_a_rule_field_intent_wins_except_that_buy_and_sell_stays():
    assert read_inquiry("What is my home worth?", intent="buy").intent == "buy"
    assert read_inquiry("We'll list our 3 bedroom and buy a condo.", intent="sell").intent == "buy_and_sell"
    assert read_inquiry("We'll list our 3 bedroom and buy a condo.", intent="rent").intent == "rent"


# -- urgency ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "urgency"), [
    ("Can we see it tomorrow after work?", "now"),
    ("Please call me ASAP about this one.", "now"),
    ("No rush, just looking at what's out there.", "browsing"),
    ("Just curious what the HOA covers.", "browsing"),
    ("No rush, maybe next spring.", "later"),
    ("We want to move in about two months.", "soon"),
    ("Was hoping to move ASAP but my transfer got pushed to June 1.", "later"),
    ("We can close in 10 days if needed.", None),
    ("Please call me.", None),
])
def test_urgency_reads_hedges_and_timeframes(text: str, urgency: str | None):
    """A "no rush" lead offered as hot wastes an agent's claim; a stated time beats a hedge."""
    assert read(text).urgency == urgency


# -- financing ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "pre_approved", "cash", "investor"), [
    ("We are not pre-approved yet, meeting a lender next week.", False, False, None),
    ("We're pre-approved with our credit union.", True, False, None),
    # the later statement wins; they will be pre-approved, so the purchase is financed
    ("We're pre-approved — well, we will be next week.", False, False, None),
    ("Pre-approved? No", False, None, None),
    ("The listing says cash only?? We'd need a mortgage.", None, False, None),
    ("Cash flow is tight this month, is the seller flexible on closing?", None, None, None),
    ("We'll pay cash. Actually scratch that, we'll get a conventional loan.", None, False, None),
    ("All cash, no inspection contingency.", None, True, None),
    ("My neighbor is an investor and said this is a good street. We're not investors, it's for our family.",
     None, None, False),
    ("Looking to buy a duplex to rent out both units.", None, None, True),
    ("hi im intrested in the hous, we hav a morgage pre aproval", True, False, None),
    ("Quiero comprar para rentarla, pago de contado.", None, True, True),
])
def test_financing_facts_understand_negation_traps_and_corrections(text, pre_approved, cash, investor):
    """"Not pre-approved yet" must not score as pre-approved; "cash only" is the listing's term."""
    found = read(text)
    assert (found.pre_approved, found.cash, found.investor) == (pre_approved, cash, investor)


def test_financing_facts_are_only_about_purchases():
    found = read("Does the landlord accept cash for rent? I'm approved for Section 8.", "zumper tenant lead")
    assert found.intent == "rent"
    assert (found.pre_approved, found.cash, found.investor) == (None, None, None)


# -- timeline -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "today", "days"), [
    ("We'd like to close within 30 days.", WED, 30),
    ("Moving by the end of the month.", WED, 29),
    ("Looking to move next spring.", WED, 180),
    ("We'd like to list after the holidays.", WED, 36),
    ("Need to move by Feb.", WED, 61),
    ("Move in: 01/15/2027", WED, 44),
    # across the year's end
    ("We'd like to close within 30 days.", YEAR_END, 30),
    ("Moving by the end of the month.", YEAR_END, 1),
    ("We want to move in January.", YEAR_END, 32),
    ("Need to move by Feb.", YEAR_END, 33),
    ("Looking to move next spring.", YEAR_END, 152),
    ("We'd like to list after the holidays.", YEAR_END, 8),
    ("We'd like to tour next week.", YEAR_END, 11),
    # across a month's end
    ("Moving by the end of the month.", MONTH_END, 2),
    ("We need a place by March 1.", MONTH_END, 31),
    ("Sometime next month.", MONTH_END, 30),
    ("Our lease ends the 5th.", MONTH_END, 7),
])
def test_relative_dates_count_from_the_day_the_email_came(text: str, today: date, days: int):
    assert read(text, today=today).timeline_days == days


def test_the_latest_wanted_date_is_the_timeline_and_the_earliest_sets_urgency():
    found = read("Could we see it Saturday? We need to be settled by January 19 for school.")
    assert (found.urgency, found.timeline_days) == ("now", 48)


def test_without_a_day_to_count_from_no_date_is_converted():
    found = read("Need to move ASAP, by Feb at the latest.", today=None)
    assert (found.urgency, found.timeline_days) == ("now", None)
    assert [t.phrase for t in find_times("by feb", None)] == []


def test_someone_elses_dates_and_past_events_are_not_the_timeline():
    assert read("The tenant in place until February is fine with showings.").timeline_days is None
    assert read("We had a baby in May, so we need more room.").timeline_days is None


def test_evidence_names_the_phrase_that_decided():
    found = read("Not pre-approved yet. We'd like to move within 30 days.")
    assert "pre_approved false: 'not pre-approved'" in found.evidence
    assert any(e.startswith("timeline_days 30:") and "within 30 days" in e for e in found.evidence)


# -- on the lead ----------------------------------------------------------------------------


def lead(message: str, source: str = "website", intent: str | None = None) -> Lead:
    return Lead(source=source, rule_version="1", message=message, intent=intent,  # type: ignore[arg-type]
                received_at=datetime(2026, 12, 2, 15, 0, tzinfo=UTC))


def test_the_lead_carries_the_findings_and_buy_and_sell_is_a_seller():
    """The lead contract's intent stays buy | sell | rent; someone doing both is routed as a seller."""
    out = with_inquiry(lead("Need to sell my house and buy something closer to work by feb."))
    assert out.intent == "sell"
    assert out.to_json()["inquiry"] == {"intent": "buy_and_sell", "urgency": "soon", "pre_approved": None,
                                        "cash": None, "investor": False, "timeline_days": 61}


def test_a_rule_intent_stays_and_the_source_is_context():
    assert with_inquiry(lead("What is my home worth?", intent="buy")).intent == "buy"
    assert with_inquiry(lead("Is it still available?", source="zumper")).intent == "rent"
    assert with_inquiry(lead("hello")).intent is None


# -- the blind corpus -------------------------------------------------------------------------


def _bench():
    spec = importlib.util.spec_from_file_location("bench_intent", ROOT / "bench" / "intent.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_intent"] = module
    spec.loader.exec_module(module)
    return module


def test_the_reader_beats_the_keywords_on_every_label_of_the_blind_corpus():
    """Issue 18's acceptance: better than the keyword approach on every label, ≥ 90 % on intent,
    over all 158 messages (development and held-out halves together)."""
    bench = _bench()
    cases = bench.load()
    assert len(cases) == 158
    shares = bench.measure(cases)
    for label, row in shares.items():
        assert row["reader"] > row["baseline"], label
    assert shares["intent"]["reader"] >= bench.TARGET_INTENT


# -- negations a review found (written for this test, not taken from the corpus) ----------

@pytest.mark.parametrize(("text", "cash", "pre"), [
    ("We will not be paying cash, we have a lender. Want to buy.", None, None),
    ("I am not a cash buyer, looking to buy a condo.", False, None),
    ("We will be pre-approved next week, want to buy.", False, False),
    ("I need to get pre-approved first before I buy.", False, False),
    ("We are paying cash for the house we want to buy.", True, None),
])
def test_negated_cash_and_a_pre_approval_still_to_come_say_no(text: str, cash: bool | None, pre: bool | None):
    found = read_inquiry(text, today=date(2026, 12, 2))
    assert found.intent == "buy"
    assert found.cash is not True if cash is None else found.cash is cash
    assert found.pre_approved is not True if pre is None else found.pre_approved is pre


@pytest.mark.parametrize("text", [
    "Looking to buy a condo. I don't need it ASAP, no rush at all.",
    "Not this week, maybe in the spring. Want to buy.",
    "Can't see it today or tomorrow but want to buy it.",
])
def test_a_negated_now_is_not_urgent(text: str):
    assert read_inquiry(text, today=date(2026, 12, 2)).urgency != "now"


def test_a_wait_until_a_near_date_keeps_the_date():
    found = read_inquiry("We cannot move before March, want to buy.", today=date(2026, 12, 2))
    assert found.urgency == "soon" and found.timeline_days is not None
