"""The model endpoint as the last resort for an email neither a rule nor the reader can read,
against a local stand-in of an OpenAI-compatible server: what it reads is kept only where
the email holds it, and a made-up contact never reaches a lead."""

from __future__ import annotations

from pathlib import Path

import pytest
from modelserver import ModelServer

from daemon.lead import DeadLetter, DeadLetterReason, Lead
from daemon.pipeline import Engine, parse_email
from daemon.providers.model import ChatModel

REPO = Path(__file__).resolve().parents[2]

# The reader does not take a number written with slashes, nor an address spelled out, so
# no rule and not the reader can read this lead: without a model it is a dead letter.
UNREADABLE = b"""From: "Lakeside Lead Desk" <desk@lakeside-leads.example>
To: leads@brokerage.example
Subject: New inquiry
Date: Wed, 02 Dec 2026 10:00:00 -0500
Message-ID: <m1@lakeside-leads.example>
Content-Type: text/plain; charset=utf-8

Dana Whitfield wants a showing of 88 Birch Hollow Rd, Asheville, NC 28801 on Saturday.
Her number: 828 / 555 / 0147. Email her at dana.whitfield at example dot net.
"""


@pytest.fixture
def server():
    with ModelServer() as s:
        yield s


def _engine(server: ModelServer | None, **kw) -> Engine:
    model = None if server is None else ChatModel(f"{server.base_url}/v1", "qwen2.5:7b", timeout=2.0, **kw)
    return Engine.load(REPO / "rules", model=model)


def test_without_a_model_the_email_is_a_dead_letter():
    out = parse_email(UNREADABLE, _engine(None))
    assert isinstance(out, DeadLetter) and out.reason is DeadLetterReason.NO_MATCHING_RULE


def test_the_model_reads_the_lead_and_its_invented_email_is_dropped_and_the_lead_says_so(server):
    server.answer({"is_lead": True, "full_name": "Dana Whitfield", "phone": "828-555-0147",
                   "email": "dana.whitfield@example.net",  # spelled out in the email, never written
                   "address": "88 Birch Hollow Rd", "city": "Asheville", "state": "NC",
                   "postal_code": "28801", "intent": "buy", "message": None, "price": None})
    out = parse_email(UNREADABLE, _engine(server))
    assert isinstance(out, Lead), out
    assert out.phone == "+18285550147" and out.email is None
    assert out.full_name == "Dana Whitfield" and out.property.address == "88 Birch Hollow Rd"
    assert out.rule_version == "model-qwen2.5:7b"
    assert any(w.startswith("read by the model qwen2.5:7b") for w in out.warnings)
    dropped = [w for w in out.warnings if w.startswith("the model qwen2.5:7b: email")]
    assert len(dropped) == 1 and dropped[0].endswith("dropped")
    assert "dana.whitfield@example.net" not in " ".join(out.warnings)
    # the model was shown the email's sender, subject and text
    (req,) = server.named("chat")
    assert "Subject: New inquiry" in req.body["messages"][1]["content"]


def test_an_invented_phone_number_is_dropped_and_with_no_contact_left_it_stays_a_dead_letter(server):
    server.answer({"is_lead": True, "full_name": "Dana Whitfield", "phone": "+1 828 555 0199",
                   "email": None, "intent": "buy"})
    out = parse_email(UNREADABLE, _engine(server))
    assert isinstance(out, DeadLetter) and out.reason is DeadLetterReason.NO_MATCHING_RULE
    assert "the model's reading has no contact the email holds" in out.detail
    assert "phone a number ending 99 is not a number written in the email" in out.detail
    assert "0199" not in out.detail


def test_a_model_that_says_it_is_not_a_lead_leaves_the_dead_letter_to_a_person(server):
    server.answer({"is_lead": False})
    out = parse_email(UNREADABLE, _engine(server))
    assert isinstance(out, DeadLetter) and "does not read a lead in it either" in out.detail


def test_a_model_that_is_down_or_slow_leaves_the_dead_letter_and_says_why(server):
    server.down = True
    out = parse_email(UNREADABLE, _engine(server))
    assert isinstance(out, DeadLetter) and "the model did not answer" in out.detail and "503" in out.detail
    server.down = False
    server.fail_next("chat", 200, hang=3.0)
    out = parse_email(UNREADABLE, _engine(server))
    assert isinstance(out, DeadLetter) and "no answer within" in out.detail


def test_an_email_a_rule_reads_never_asks_the_model(server):
    fixture = REPO / "fixtures" / "emails" / "zillow" / "current_layout_multipart.eml"
    out = parse_email(fixture.read_bytes(), _engine(server))
    assert isinstance(out, Lead) and out.source == "zillow"
    assert server.named("chat") == []


def test_a_model_used_for_intent_only_is_not_asked_to_read_emails(server):
    out = parse_email(UNREADABLE, _engine(server, uses=("intent",)))
    assert isinstance(out, DeadLetter) and server.named("chat") == []


# -- the model for intent --------------------------------------------------------------

ZILLOW = REPO / "fixtures" / "emails" / "zillow" / "current_layout_multipart.eml"


def test_a_model_used_for_intent_gives_its_findings_and_the_evidence_says_so(server):
    built_in = parse_email(ZILLOW.read_bytes(), _engine(None))
    assert isinstance(built_in, Lead) and built_in.inquiry.pre_approved is None
    server.answer({"intent": "buy", "urgency": "now", "pre_approved": True, "cash": None,
                   "investor": None, "timeline_days": 3})
    out = parse_email(ZILLOW.read_bytes(), _engine(server, uses=("intent",)))
    assert isinstance(out, Lead)
    assert out.inquiry.pre_approved is True and out.inquiry.timeline_days == 3
    assert "pre_approved True: the model qwen2.5:7b" in out.inquiry.evidence
    assert "pre-approved" in [line.name for line in out.score_breakdown]
    (req,) = server.named("chat")
    assert req.body["messages"][1]["content"] == built_in.message
    assert "2026-11-03" in req.body["messages"][0]["content"]  # dates count from the email's


def test_a_rules_intent_field_still_wins_over_the_model(server):
    server.answer({"intent": "rent", "urgency": None, "pre_approved": None, "cash": None,
                   "investor": None, "timeline_days": None})
    built_in = parse_email(ZILLOW.read_bytes(), _engine(None))
    out = parse_email(ZILLOW.read_bytes(), _engine(server, uses=("intent",)))
    assert isinstance(out, Lead) and out.intent == "buy"
    # the inquiry keeps the rule's intent too, so the score and the flows agree with it
    assert out.inquiry.intent == built_in.inquiry.intent == "buy" and out.score == built_in.score


def test_a_model_that_does_not_answer_leaves_the_built_in_reading_and_the_lead_says_so(server):
    built_in = parse_email(ZILLOW.read_bytes(), _engine(None))
    server.fail_next("chat", 429, retry_after=60)
    out = parse_email(ZILLOW.read_bytes(), _engine(server, uses=("intent",)))
    assert isinstance(out, Lead) and out.inquiry == built_in.inquiry and out.score == built_in.score
    assert any("did not read the message" in w and "built-in reading stands" in w for w in out.warnings)


def test_a_page_that_is_not_json_answered_200_leaves_the_built_in_reading(tmp_path):
    from crmservers import ApiServer

    class Portal(ApiServer):  # a proxy or captive portal in front of the endpoint
        routes = (("POST", r"/v1/chat/completions", "chat"),)

        def on_chat(self, match, req):
            return (200, "<html><body>Sign in to the guest network</body></html>", {})

    with Portal() as portal:
        model = ChatModel(f"{portal.base_url}/v1", "m", timeout=2.0, rate=100, uses=("intent", "reading"))
        out = parse_email(ZILLOW.read_bytes(), Engine.load(REPO / "rules", model=model))
        assert isinstance(out, Lead) and any("built-in reading stands" in w for w in out.warnings)
        dead = parse_email(UNREADABLE, Engine.load(REPO / "rules", model=model))
        assert isinstance(dead, DeadLetter) and "not JSON" in dead.detail
