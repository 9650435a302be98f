"""The inquiry reader in the pipeline (daemon/pipeline/parse.py): emails and webhook bodies
come out with `inquiry` read from their message, scored on it, and a rule's intent wins."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

from daemon.lead import Lead
from daemon.pipeline import Engine, parse_email
from daemon.pipeline.parse import parse_webhook

SHIPPED = Path(__file__).resolve().parents[2] / "rules"

RULE = """\
source: portal
version: 1
match:
  from: ["*@portal.example"]
{intent}fields:
  full_name:
    - label: Name
  email:
    - label: Email
  message:
    - label: Comments
required: [full_name]
"""


def engine(tmp_path: Path, intent: str = "") -> Engine:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "portal.yaml").write_text(RULE.format(intent=intent), encoding="utf-8")
    (folder / "scoring.yaml").write_text((SHIPPED / "scoring.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return Engine.load(folder)


def email(comments: str) -> bytes:
    m = EmailMessage()
    m["From"] = "Portal Leads <leads@portal.example>"
    m["To"] = "inbox@brokerage.example"
    m["Subject"] = "New lead: Ana Ruiz"
    m["Message-ID"] = "<lead.1@portal.example>"
    m["Date"] = "Wed, 02 Dec 2026 09:15:00 -0500"
    m.set_content(f"Name: Ana Ruiz\nEmail: ana@example.com\nComments: {comments}\n")
    return bytes(m)


def test_an_email_lead_carries_its_inquiry_counted_from_its_date(tmp_path: Path):
    """`leadpipe parse --json` shows the findings; "by Feb" is counted from the email's Date."""
    lead = parse_email(email("Need to sell my house and buy a condo closer to work by Feb."), engine(tmp_path))
    assert isinstance(lead, Lead)
    assert lead.intent == "sell"  # buy_and_sell is routed as a seller
    assert lead.to_json()["inquiry"] == {"intent": "buy_and_sell", "urgency": "soon", "pre_approved": None,
                                         "cash": None, "investor": False, "timeline_days": 61}
    assert "acting within three months" in [line.name for line in lead.score_breakdown]


def test_a_rules_intent_field_wins_over_the_reader(tmp_path: Path):
    lead = parse_email(email("What is my home worth? Just curious."), engine(tmp_path, "constants:\n  intent: buy\n"))
    assert isinstance(lead, Lead)
    assert (lead.intent, lead.inquiry.intent, lead.inquiry.urgency) == ("buy", "buy", "browsing")


def test_a_webhook_lead_is_read_and_scored_on_sentences_not_keywords():
    """"not pre-approved yet" scored as pre-approved under the old keyword lists."""
    shipped = Engine.load(SHIPPED)
    mapping = shipped.webhooks.get("website_form")
    assert mapping is not None
    body = {"id": "sub_1", "contact": {"name": "Ana Ruiz", "email": "ana@example.com"},
            "message": "We're not pre-approved yet and there's no rush, just looking.", "interest": "buying"}
    lead = parse_webhook(json.dumps(body).encode(), mapping, shipped)
    assert isinstance(lead, Lead)
    assert (lead.intent, lead.inquiry.pre_approved, lead.inquiry.urgency) == ("buy", False, "browsing")
    names = [line.name for line in lead.score_breakdown]
    assert "pre-approved" not in names and "ready to act" not in names and "just browsing" in names
