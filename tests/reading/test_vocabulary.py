"""Drift tolerance: the label vocabulary (rules/labels.yaml), lead metadata tags, the
generic rule, and rules that match on sender and subject only.

When one of these fails, a provider's template change (``Phone:`` → ``Cell Phone:``) drops
a lead or fills a field with something that is not what it claims to be.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from clikit import cli
from test_parsing import engine_of, make_email, make_rule

from daemon.errors import RuleError
from daemon.lead import DeadLetter, DeadLetterReason, Ignored, Lead
from daemon.pipeline import Engine, parse_email
from daemon.reading import goldens
from daemon.reading.message import Message
from daemon.reading.parsing import extract, is_drift_warning
from daemon.reading.vocabulary import Vocabulary, has_shape, label_key, load_vocabulary, split_label

REPO = Path(__file__).resolve().parents[2]
SHIPPED = load_vocabulary(REPO / "rules" / "labels.yaml")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labels.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def with_labels(*rules: Any, labels: Vocabulary = SHIPPED) -> Engine:
    import dataclasses

    return dataclasses.replace(engine_of(*rules), labels=labels)


# -- labels.yaml -----------------------------------------------------------------------------


def test_shipped_vocabulary_loads_and_knows_the_labels_of_sources_md():
    assert SHIPPED.version == "2"
    for label, name in [("Phone Number", "phone"), ("Phone #", "phone"), ("PHONE#:", "phone"),
                        ("Verified phone", "phone"), ("Cell Phone", "phone"), ("E-mail", "email"),
                        ("Email Address", "email"), ("Consumer Name", "full_name"),
                        ("First Name", "first_name"), ("Surname", "last_name"),
                        ("Question/Comments", "message"), ("Property Address", "address"),
                        ("List Price", "price"), ("MLSID #", "mls_id"), ("Zip Code", "postal_code"),
                        ("City", "city"), ("State", "state")]:
        assert SHIPPED.field_of(label) == name, label


def test_labels_compare_ignoring_case_punctuation_and_spaces():
    assert label_key("Phone #:") == label_key("phone") == label_key("PHONE")
    assert label_key("E-mail") == label_key("Email")
    assert label_key("Email Address") != label_key("Address")


def test_vocabulary_errors_name_file_line_and_key(tmp_path: Path):
    path = write(tmp_path, """\
        version: 1
        fields:
          phone: [Phone, Mobile]
          adress: [Street]
        """)
    with pytest.raises(RuleError) as caught:
        load_vocabulary(path)
    assert (caught.value.file, caught.value.line, caught.value.key) == (str(path), 4, "fields.adress")


def test_a_label_meaning_two_fields_is_refused_where_it_is_written_the_second_time(tmp_path: Path):
    path = write(tmp_path, """\
        version: 1
        fields:
          phone:
            - Phone
            - Contact
          email:
            - Email
            - contact
        """)
    with pytest.raises(RuleError) as caught:
        load_vocabulary(path)
    assert (caught.value.line, caught.value.key) == (8, "fields.email[1]")
    assert "one field only" in caught.value.message


def test_vocabulary_yaml_syntax_error_is_located(tmp_path: Path):
    path = write(tmp_path, "version: 1\nfields:\n  phone: [Phone, Mobile\n")
    with pytest.raises(RuleError) as caught:
        load_vocabulary(path)
    assert caught.value.line == 3


def test_a_broken_labels_file_is_a_rule_error_of_the_engine_not_a_crash(tmp_path: Path):
    (tmp_path / "labels.yaml").write_text("version: 1\nfields: {phone: Phone}\n", encoding="utf-8")
    engine = Engine.load(tmp_path)
    assert [e.key for e in engine.rules.errors] == ["fields.phone"]
    assert not engine.labels


def test_rules_check_reports_labels_yaml_problems(tmp_path: Path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "labels.yaml").write_text("version: 1\nfields:\n  phone: [Phone]\n  colour: [Hue]\n",
                                       encoding="utf-8")
    r = cli(tmp_path, "rules", "check")
    assert r.returncode == 1
    assert "rules/labels.yaml:4: fields.colour: unknown key" in r.stdout


# -- shapes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value", "ok"), [
    ("phone", "(804)555-0163", True),
    ("phone", "call me", False),
    ("phone", "2231456", False),
    ("email", "amkreed@example.com", True),
    ("email", "amkreed at example", False),
    ("full_name", "Anne-Marie Kowalski-Reed", True),
    ("full_name", "Jan van der Berg", True),
    ("full_name", "KWAME ASANTE", True),
    ("full_name", "Cher", False),  # one word: could be anything
    ("full_name", "Harbor & Pine Realty", False),
    ("full_name", "Within 30 days", False),
    ("full_name", "I would like to see the house on Saturday", False),
    ("first_name", "Zoë", True),
    ("address", "2210 Monument Ave", True),
    ("address", "Single Family", False),
    ("price", "$615,000", True),
    ("price", "ask me", False),
    ("mls_id", "A11234567", True),
    ("mls_id", "Active", False),
])
def test_values_are_kept_only_in_their_fields_shape(name: str, value: str, ok: bool):
    assert has_shape(name, value) is ok


@pytest.mark.parametrize(("line", "pair"), [
    ("Phone Number: (804)555-0163", ("Phone Number", "(804)555-0163")),
    ("Name\tPriya Raghunathan", ("Name", "Priya Raghunathan")),
    ("MLSID # 2231456", ("MLSID #", "2231456")),
    ("Property Address:", ("Property Address", "")),
    ("Phone - 305 555 0142", ("Phone", "305 555 0142")),
    ("https://www.zillow.com/homedetails/1", None),
    ("Questions? Write to editors@rate-digest.example or call (312) 555-0100.", None),
])
def test_label_lines_are_split_into_label_and_value(line: str, pair: tuple[str, str] | None):
    assert split_label(line) == pair


# -- a rule's field found under a synonym --------------------------------------------------


RULE = make_rule({
    "full_name": {"label": "Name"},
    "email": {"label": "Email"},
    "phone": [{"label": ["Phone", "Phone Number"]}],
    "message": {"label": "Message", "filters": ["collapse"]},
}, require_any=[["phone", "email"]], required=["full_name"])


def parse(text: str, **kw: Any) -> Lead | DeadLetter | Ignored:
    return parse_email(make_email(text, **kw), with_labels(RULE))


def test_a_renamed_phone_label_keeps_the_lead_and_says_what_drifted():
    lead = parse("Name: Dana Whitfield\nCell Phone: (312) 555-0172\nEmail: dana@example.com\n")
    assert isinstance(lead, Lead)
    assert lead.phone == "+13125550172"
    assert lead.warnings == (
        "portal v1: field `phone` found under label 'Cell Phone' instead of Phone, Phone Number "
        "(template drift?)",)
    assert all(is_drift_warning(w) for w in lead.warnings)


def test_synonyms_compare_ignoring_case_and_punctuation_and_work_in_table_cells():
    html = ("<table><tr><td>FULL-NAME</td><td>Dana Whitfield</td></tr>"
            "<tr><td>E-Mail:</td><td>dana@example.com</td></tr></table>")
    lead = parse_email(make_email(html=html), with_labels(RULE))
    assert isinstance(lead, Lead)
    assert (lead.full_name, lead.email) == ("Dana Whitfield", "dana@example.com")
    assert "label 'FULL-NAME' instead of Name" in lead.warnings[0]
    assert "label 'E-Mail' instead of Email" in lead.warnings[1]


def test_a_synonym_label_standing_alone_takes_the_next_line():
    lead = parse("Name: Dana Whitfield\nMobile\n(312) 555-0172\n")
    assert isinstance(lead, Lead) and lead.phone == "+13125550172"


def test_a_value_without_the_fields_shape_stays_empty_rather_than_wrong():
    """`Tel: ask at the desk` is not a phone; the next synonym with a real number is."""
    lead = parse("Name: Dana Whitfield\nTel: ask at the desk\nMobile: none\nCell: 312.555.0172\n")
    assert isinstance(lead, Lead) and lead.phone == "+13125550172"
    lead = parse("Name: Dana Whitfield\nEmail: dana@example.com\nTelephone: call me after five\n")
    assert isinstance(lead, Lead) and lead.phone is None
    assert not any("phone" in w for w in lead.warnings)


def test_the_synonym_uses_the_rules_own_filters_for_the_field():
    lead = parse("Name: Dana Whitfield\nEmail: dana@example.com\nComments: Is   the dog\n")
    assert isinstance(lead, Lead) and lead.message == "Is the dog"


def test_a_bare_phone_line_near_the_name_is_recognised():
    lead = parse("Name: Dana Whitfield\n(312) 555-0172\nEmail: dana@example.com\n")
    assert isinstance(lead, Lead) and lead.phone == "+13125550172"
    assert lead.warnings == (
        "portal v1: field `phone` found on an unlabelled line near the name instead of Phone, "
        "Phone Number (template drift?)",)


def test_two_bare_phones_near_the_name_are_not_guessed_between():
    lead = parse("Name: Dana Whitfield\n(312) 555-0172\n(312) 555-0199\nEmail: dana@example.com\n")
    assert isinstance(lead, Lead) and lead.phone is None


def test_a_bare_phone_far_from_the_name_is_not_taken():
    filler = "\n".join(f"line {i} of the listing" for i in range(12))
    lead = parse(f"Name: Dana Whitfield\nEmail: dana@example.com\n{filler}\nOffice: x\n(312) 555-0100\n")
    assert isinstance(lead, Lead) and lead.phone is None


def test_the_senders_own_address_is_never_the_leads_bare_email():
    lead = parse("Name: Dana Whitfield\nalerts@portal.example\nPhone: 312-555-0172\n")
    assert isinstance(lead, Lead) and lead.email is None


def test_without_a_vocabulary_the_engine_does_not_guess():
    lead = parse_email(make_email("Name: Dana Whitfield\nCell Phone: (312) 555-0172\n"), engine_of(RULE))
    assert isinstance(lead, DeadLetter)
    assert lead.reason is DeadLetterReason.MISSING_REQUIRED_FIELD


def test_the_rules_own_label_wins_over_a_synonym_and_adds_no_warning():
    lead = parse("Name: Dana Whitfield\nCell: (312) 555-0199\nPhone: (312) 555-0172\n")
    assert isinstance(lead, Lead) and lead.phone == "+13125550172" and lead.warnings == ()


# -- lead metadata tags ----------------------------------------------------------------------


META = ('<html><head><meta name="lead_name" content="Jan van der Berg">'
        '<meta name="lead_email" content="jan@example.nl"></head><body>'
        '<meta name="lead_phone" content="+1 720 555 0155">'
        '<meta name="lead_mls" content="REC8812345"><meta name="lead_type" content="seller">'
        '<p>Courtesy lead</p></body></html>')


def test_lead_metadata_tags_are_read_anywhere_in_the_html():
    assert Message(make_email(html=META)).lead_meta == {
        "name": "Jan van der Berg", "email": "jan@example.nl", "phone": "+1 720 555 0155",
        "mls": "REC8812345", "type": "seller"}


def test_lead_metadata_tags_fill_what_any_rule_misses_without_a_warning():
    lead = parse_email(make_email(html=META), with_labels(RULE))
    assert isinstance(lead, Lead)
    assert (lead.full_name, lead.email, lead.phone) == ("Jan van der Berg", "jan@example.nl", "+17205550155")
    assert lead.property.mls_id == "REC8812345" and lead.intent == "sell"
    assert lead.warnings == ()


def test_extract_reports_a_field_the_tags_filled_as_found_not_missing():
    found = extract(Message(make_email(html=META)), RULE)
    assert found.fields["phone"] == "+1 720 555 0155"
    assert "phone" not in {t.field for t in found.missing}


# -- the generic rule ------------------------------------------------------------------------


def unknown(text: str | None = None, html: str | None = None, **kw: Any) -> Lead | DeadLetter | Ignored:
    kw.setdefault("sender", "Website <noreply@somebroker.example>")
    return parse_email(make_email(text, html, **kw), with_labels(RULE))


def test_a_contact_form_from_an_unknown_sender_becomes_a_lead_named_after_its_domain():
    lead = unknown("New contact form submission\n\nYour Name: Pat Doe\nTelephone: 555-201-3344\n"
                   "Message: Call me about 12 Oak St\n", subject="Contact form")
    assert isinstance(lead, Lead)
    assert (lead.source, lead.rule_version) == ("somebroker.example", f"reader-{SHIPPED.version}")
    assert (lead.full_name, lead.phone, lead.message) == ("Pat Doe", "+15552013344", "Call me about 12 Oak St")
    assert lead.warnings[0].startswith("reader: no rule knows the sender noreply@somebroker.example")
    assert "leadpipe rules new somebroker.example" in lead.warnings[0]


def test_the_reader_reads_first_and_last_name_and_metadata_tags():
    lead = unknown("First Name: Pat\nLast Name: Doe\nE-mail: pat@example.com\n")
    assert isinstance(lead, Lead) and (lead.full_name, lead.email) == ("Pat Doe", "pat@example.com")
    lead = unknown(html=META)
    assert isinstance(lead, Lead) and lead.source == "somebroker.example" and lead.full_name == "Jan van der Berg"


@pytest.mark.parametrize(("text", "subject"), [
    # a phone and an email in a newsletter's footer
    ("This week in rates\nQuestions? Write to editors@rates.example or call (312) 555-0100.\n",
     "This week in rates"),
    ("Rates digest\nEmail: editors@rates.example\nPhone: (312) 555-0100\n", "Your weekly rates digest"),
    # a name label whose value is not a name, in an announcement
    ("Name: Spring Open House Schedule For All Listings\nPhone: 312-555-0100\n", "Spring open houses this weekend"),
    # nothing of a lead at all
    ("Hello, just checking in about Friday.\n", "Friday"),
])
def test_mail_that_is_not_a_lead_is_ignored_neither_a_lead_nor_a_dead_letter(text: str, subject: str):
    outcome = unknown(text, subject=subject)
    assert isinstance(outcome, Ignored), outcome


@pytest.mark.parametrize("text", [
    # a labelled name, but no way to reach them
    "Name: Pat Doe\nMessage: hello\n",
    # a labelled name and phone-shaped nonsense
    "Name: Pat Doe\nPhone: see website\n",
])
def test_a_lead_without_a_way_to_reach_the_person_is_a_dead_letter_not_a_lead(text: str):
    """It reads like a lead ("New lead", a labelled name) but gives no phone or email:
    an agent could do nothing with it, so someone must look at it."""
    outcome = unknown(text)
    assert isinstance(outcome, DeadLetter) and outcome.reason is DeadLetterReason.NO_MATCHING_RULE


def test_an_auto_reply_with_labels_is_still_ignored_not_read_as_a_lead():
    outcome = unknown("Name: Pat Doe\nPhone: 555-201-3344\n", headers={"Auto-Submitted": "auto-replied"})
    assert outcome == Ignored("auto_reply")


def test_the_shipped_newsletter_fixture_is_not_a_lead():
    """Its golden: a digest from an unknown domain with a phone and an email in it is not
    a lead, and not a dead letter either: it is ignored as the market report it is."""
    eml = REPO / "fixtures" / "emails" / "_hostile" / "newsletter_unknown_sender.eml"
    outcome = parse_email(eml.read_bytes(), Engine.load(REPO / "rules"))
    assert goldens.record(outcome) == goldens.load(eml)


# -- a rule that matches on sender and subject, but its body pattern drifted ---------------


FORM = make_rule({"full_name": {"label": "Consumer Name"}, "phone": {"label": "Phone"}},
                 match={"from": ["*@portal.example"], "subject": ["website inquiry"],
                        "body": ["Consumer Name:"]},
                 required=["full_name"], require_any=[["phone"]])


def test_a_rule_whose_body_pattern_drifted_still_reads_the_lead_with_a_warning():
    data = make_email("Full Name: Pat Doe\nPhone: 555-201-3344\n", subject="Website Inquiry: 9 Ship St")
    lead = parse_email(data, with_labels(FORM))
    assert isinstance(lead, Lead) and lead.source == "portal" and lead.full_name == "Pat Doe"
    assert lead.warnings[0] == ("portal v1: matched on sender and subject only; no body pattern "
                                "('Consumer Name:') is in the email (template drift?)")


def test_a_near_match_that_is_the_senders_newsletter_is_ignored_not_a_lead():
    data = make_email("Our newsletter\nCall 555-201-3344\n", subject="Website inquiry digest")
    outcome = parse_email(data, with_labels(FORM))
    assert isinstance(outcome, Ignored)


def test_a_sender_match_alone_still_reads_the_lead_as_that_source_with_a_drift_warning():
    """The provider changed both its subject and its body: the email is still the known
    sender's lead (issue 14), not a dead letter, and the warning says what no longer matches."""
    data = make_email("Full Name: Pat Doe\nPhone: 555-201-3344\n", subject="You have a new inquiry")
    outcome = parse_email(data, with_labels(FORM))
    assert isinstance(outcome, Lead) and (outcome.source, outcome.full_name, outcome.phone) == (
        "portal", "Pat Doe", "+15552013344")
    assert outcome.warnings[0].startswith("portal v1: matched on sender only")
    assert is_drift_warning(outcome.warnings[0])


# -- hostile sizes ---------------------------------------------------------------------------


def test_labels_are_looked_for_in_the_top_of_an_email_only():
    from daemon.reading.layout import MAX_LINES

    filler = "\n".join(f"note {i}" for i in range(MAX_LINES))
    lead = parse(f"Name: Dana Whitfield\nEmail: dana@example.com\n{filler}\nCell: 312.555.0172\n")
    assert isinstance(lead, Lead) and lead.phone is None


def test_a_huge_label_only_email_from_an_unknown_sender_is_read_and_is_no_lead():
    """300,000 'Label: value' lines: the reader reads only the top of the email (its cost
    against a small email is bench/parse_cost.py's), and none of it is a prospect's contact."""
    engine = Engine.load(REPO / "rules")
    data = make_email("Name: x\nsome line of text here: value\n" * 150_000, sender="a@unknown.example")
    outcome = parse_email(data, engine)
    assert not isinstance(outcome, Lead)


def test_the_reader_reads_a_forwarded_contact_form_from_the_original():
    lead = unknown("Can someone call this one?\n\n---------- Forwarded message ---------\n"
                   "From: Cedar Website <forms@cedar.example>\nDate: Wed, Nov 4, 2026 at 10:40 AM\n"
                   "Subject: Contact form\nTo: <dana@gmail.example>\n\n"
                   "Your Name: Pat Doe\nYour Email: pat@example.com\n",
                   sender="Dana <dana@gmail.example>", subject="Fwd: Contact form")
    assert isinstance(lead, Lead) and (lead.source, lead.full_name, lead.email) == (
        "cedar.example", "Pat Doe", "pat@example.com")
    assert "the sender forms@cedar.example" in lead.warnings[0]
