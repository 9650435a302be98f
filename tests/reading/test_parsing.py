"""The rule engine (daemon/reading/parsing.py): each extractor strategy, each filter, rule order.

Every email here is built with ``email.message.EmailMessage`` so the test shows the exact
layout a rule author faces. When one of these fails, a rule written as ``rules/README.md``
documents it stops finding its field in real provider emails.
"""

from __future__ import annotations

import time
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from daemon.lead import DeadLetter, DeadLetterReason, Ignored, Lead
from daemon.pipeline import Engine, parse_email
from daemon.qualifying.scoring import Scoring
from daemon.reading.message import Message
from daemon.reading.parsing import extract, find_rule
from daemon.reading.rules import LoadedRule, Rule, RuleSet, load_rules

PHONE = "(305) 555-0142"


def make_email(
    text: str | None = None,
    html: str | None = None,
    *,
    sender: str = "Lead Alerts <alerts@portal.example>",
    subject: str = "New lead",
    headers: dict[str, str] | None = None,
) -> bytes:
    """A real MIME email: text only, HTML only, or multipart/alternative with both."""
    m = EmailMessage()
    m["From"] = sender
    m["To"] = "leads@brokerage.example"
    m["Subject"] = subject
    m["Message-ID"] = "<test.0001@portal.example>"
    for name, value in (headers or {}).items():
        m[name] = value
    if text is not None:
        m.set_content(text)
        if html is not None:
            m.add_alternative(html, subtype="html")
    elif html is not None:
        m.set_content(html, subtype="html")
    return bytes(m)


def make_rule(fields: dict[str, Any], **extra: Any) -> Rule:
    doc: dict[str, Any] = {
        "source": "portal",
        "version": "1",
        "match": {"from": ["*@portal.example"]},
        "fields": fields,
        "require_any": [],
    }
    doc.update(extra)
    return Rule.model_validate(doc)


def find(spec: dict[str, Any] | list[dict[str, Any]], data: bytes, field: str = "message") -> str | None:
    """What one field's extractor(s) yield on ``data`` (raw, before normalizing)."""
    return extract(Message(data), make_rule({field: spec})).fields.get(field)


def engine_of(*rules: Rule, regex_timeout: timedelta = timedelta(seconds=1)) -> Engine:
    return Engine(
        rules=RuleSet(tuple(LoadedRule(r, f"{r.source}.yaml") for r in rules)),
        scoring=Scoring(),
        regex_timeout=regex_timeout,
    )


# -- label ------------------------------------------------------------------------------


def test_label_finds_value_on_the_same_line():
    data = make_email(f"Name: Ana Ruiz\nPhone: {PHONE}\nEmail: ana@example.com\n")
    assert find({"label": "Phone"}, data) == PHONE


def test_label_is_case_insensitive_and_accepts_dash_separator():
    data = make_email(f"PHONE - {PHONE}\n")
    assert find({"label": "phone"}, data) == PHONE


def test_label_alone_on_its_line_takes_the_next_line():
    data = make_email(f"Name: Ana Ruiz\nPhone\n{PHONE}\nEmail: ana@example.com\n")
    assert find({"label": "Phone"}, data) == PHONE


def test_label_with_colon_alone_skips_blank_lines_to_the_value():
    data = make_email(f"Phone:\n\n{PHONE}\n")
    assert find({"label": "Phone"}, data) == PHONE


def test_label_alone_followed_by_another_label_is_not_found():
    """An empty field must not swallow the next label as its value."""
    data = make_email("Phone:\nEmail:\nana@example.com\n")
    assert find({"label": "Phone"}, data) is None


def test_label_lines_takes_a_multi_line_address():
    data = make_email(
        "Property Address:\n1487 Coral Way\nUnit 4\nMiami, FL 33145\nPhone: 305 555 0142\n"
    )
    assert find({"label": "Property Address", "lines": 3, "join": ", "}, data, "address") == (
        "1487 Coral Way, Unit 4, Miami, FL 33145"
    )


def test_label_reads_a_two_cell_html_table_row():
    html = (
        "<table><tr><td>Name</td><td>Ana Ruiz</td></tr>"
        f"<tr><td><b>Phone</b></td><td>{PHONE}</td></tr></table>"
    )
    assert find({"label": "Phone"}, make_email(html=html)) == PHONE


def test_label_reads_dt_dd_pairs():
    html = f"<dl><dt>Name</dt><dd>Ana Ruiz</dd><dt>Phone</dt><dd>{PHONE}</dd></dl>"
    assert find({"label": "Phone"}, make_email(html=html)) == PHONE


def test_label_phone_does_not_match_phone_number():
    """Realtor.com writes ``Phone Number:``; a ``Phone`` label must not read its value."""
    data = make_email(f"Phone Number: {PHONE}\n")
    assert find({"label": "Phone"}, data) is None
    assert find({"label": "Phone Number"}, data) == PHONE


def test_label_list_tries_each_label_in_order():
    data = make_email(f"Phone Number: {PHONE}\nCell: (305) 555-0199\n")
    assert find({"label": ["Mobile", "Phone Number", "Cell"]}, data) == PHONE


# -- regex ------------------------------------------------------------------------------


def test_regex_returns_the_named_group_value():
    data = make_email("Ref: 1234\nLead ID: AB-77 (new)\n")
    assert find({"regex": r"Lead ID: (\w+)-(?P<value>\d+)"}, data) == "77"


def test_regex_without_value_group_returns_the_first_group():
    data = make_email("Lead ID: AB-77 (new)\n")
    assert find({"regex": r"Lead ID: (\w+)-(\d+)"}, data) == "AB"


def test_regex_without_groups_returns_the_whole_match():
    data = make_email("Contact me at ana@example.com please\n")
    assert find({"regex": r"[\w.]+@[\w.]+\w"}, data, "email") == "ana@example.com"


def test_regex_is_multiline_and_case_insensitive():
    data = make_email("first line\nPRICE $450,000\nlast\n")
    assert find({"regex": r"^price (?P<value>\S+)$"}, data, "price") == "$450,000"


def test_regex_in_subject_searches_the_subject():
    data = make_email("body", subject="New lead - Ana Ruiz")
    assert find({"regex": r"lead - (?P<value>.+)$", "in": "subject"}, data, "full_name") == "Ana Ruiz"


def test_regex_in_html_searches_the_raw_html():
    data = make_email("text part", '<a href="https://homes.example/p/123">View</a>')
    spec = {"regex": r'href="(?P<value>https://homes\.example/[^"]+)"', "in": "html"}
    assert find(spec, data, "url") == "https://homes.example/p/123"


# -- selector ---------------------------------------------------------------------------


HTML_WITH_META = (
    '<html><head><meta name="lead_email" content="ana@example.com"></head><body>'
    '<div class="lead-name">Ana <b>Ruiz</b></div>'
    '<a class="listing" href="https://portal.example/l/9">the listing</a></body></html>'
)


def test_selector_returns_the_element_text():
    data = make_email("plain part", HTML_WITH_META)
    assert find({"selector": "div.lead-name"}, data, "full_name") == "Ana Ruiz"


def test_selector_with_attr_returns_the_attribute():
    data = make_email("plain part", HTML_WITH_META)
    spec = {"selector": 'meta[name="lead_email"]', "attr": "content"}
    assert find(spec, data, "email") == "ana@example.com"
    assert find({"selector": "a.listing", "attr": "href"}, data, "url") == "https://portal.example/l/9"


def test_selector_on_an_email_without_html_finds_nothing():
    assert find({"selector": "div.lead-name"}, make_email("Name: Ana"), "full_name") is None


# -- header -----------------------------------------------------------------------------


def test_header_reply_to_gives_the_address():
    data = make_email("hi", headers={"Reply-To": "Ana Ruiz <ana@example.com>"})
    assert find({"header": "reply_to"}, data, "email") == "ana@example.com"
    assert find({"header": "reply_to_name"}, data, "full_name") == "Ana Ruiz"


def test_header_from_name_and_subject():
    data = make_email("hi", sender='"Ana Ruiz via Portal" <alerts@portal.example>', subject="Tour request")
    assert find({"header": "from_name"}, data, "full_name") == "Ana Ruiz via Portal"
    assert find({"header": "from_address"}, data, "email") == "alerts@portal.example"
    assert find({"header": "subject"}, data) == "Tour request"


def test_header_by_raw_name():
    data = make_email("hi", headers={"X-Lead-Id": "L-9001"})
    assert find({"header": "X-Lead-Id"}, data, "mls_id") == "L-9001"


def test_header_missing_is_not_found():
    assert find({"header": "reply_to"}, make_email("hi"), "email") is None


def test_header_encoded_non_ascii_name_is_decoded():
    data = make_email("hi", headers={"Reply-To": "José Núñez <jose@example.com>"})
    assert find({"header": "reply_to_name"}, data, "full_name") == "José Núñez"


# -- after ------------------------------------------------------------------------------


SAYS = "Ana Ruiz says:\nIs the garage heated?\nWe have two cars.\nRespond within 10 minutes\n"


def test_after_takes_text_on_the_anchor_line():
    data = make_email("Ana Ruiz says: Is it still available?\nRespond within 10 minutes\n")
    assert find({"after": "says:"}, data) == "Is it still available?"


def test_after_takes_the_next_line_when_the_anchor_ends_its_line():
    assert find({"after": "says:"}, make_email(SAYS)) == "Is the garage heated?"


def test_after_skip_takes_a_later_line():
    assert find({"after": "says:", "skip": 1}, make_email(SAYS)) == "We have two cars."


def test_after_until_takes_the_block_up_to_the_end_pattern():
    spec = {"after": "says:", "until": r"Respond within \d+ minutes"}
    assert find(spec, make_email(SAYS)) == "Is the garage heated? We have two cars."


def test_after_anchor_missing_is_not_found():
    assert find({"after": "writes:"}, make_email(SAYS)) is None


# -- filters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "filters", "expected"),
    [
        ("Value:   * spaced out ;", ["trim"], "spaced out"),
        ("Value: Ana@Example.COM", ["lower"], "ana@example.com"),
        ("Value: fl", ["upper"], "FL"),
        ("Value: ana maría ruiz", ["title"], "Ana María Ruiz"),
        ("Value: (305) 555-0142 ext", ["digits"], "3055550142"),
        ("Value: listed at $1,250,000 firm", ["money"], "$1,250,000"),
        ("Value: budget 450k or so", ["money"], "450k"),
        ("Value: a    b \t c", ["collapse"], "a b c"),
        ("Value: “Is it available?”", ["unquote"], "Is it available?"),
        ("Value: MLS# A11234567 listed", [{"regex": r"MLS#\s*(?P<value>\w+)"}], "A11234567"),
        ("Value: 305.555.0142", [{"replace": [r"\.", "-"]}], "305-555-0142"),
        ("Value: Ana Ruiz (via portal)", [{"before": r"\s*\("}], "Ana Ruiz"),
        ("Value: I want to Purchase", [{"map": {"sell": "sell", "buy|purchase": "buy"}}], "buy"),
        ("Value: Ana Ruiz", [{"before": "nothing-here"}], "Ana Ruiz"),
    ],
    ids=["trim", "lower", "upper", "title", "digits", "money", "money-k", "collapse", "unquote",
         "regex", "replace", "before", "map", "before-no-match-keeps-value"],
)
def test_filter(line: str, filters: list[Any], expected: str):
    assert find({"label": "Value", "filters": filters}, make_email(line + "\n")) == expected


def test_first_line_filter_keeps_the_first_non_empty_line():
    data = make_email("Message:\n\nfirst words\nsecond line\n")
    spec = {"regex": r"Message:(?P<value>[\s\S]*)", "filters": ["first_line"]}
    assert find(spec, data) == "first words"


def test_filters_apply_in_order():
    data = make_email("Value: Ana RUIZ (portal)\n")
    spec = {"label": "Value", "filters": [{"before": r"\("}, "lower", "title"]}
    assert find(spec, data, "full_name") == "Ana Ruiz"


def test_filter_that_yields_nothing_falls_through_to_the_next_extractor():
    data = make_email("Intent: maybe\nType: rental\n")
    specs = [
        {"label": "Intent", "filters": [{"map": {"buy": "buy", "sell": "sell"}}]},
        {"label": "Type", "filters": [{"map": {"rent": "rent"}}]},
    ]
    assert find(specs, data, "intent") == "rent"


def test_regex_filter_without_match_makes_the_extractor_miss():
    data = make_email("Value: no digits here\n")
    assert find({"label": "Value", "filters": [{"regex": r"\d+"}]}, data) is None


@pytest.mark.parametrize("placeholder", ["N/A", "n/a", "none", "-", "--", "Not provided", "unknown"])
def test_placeholder_values_count_as_not_found(placeholder: str):
    data = make_email(f"Phone: {placeholder}\nCell: {PHONE}\n")
    assert find({"label": "Phone"}, data, "phone") is None
    # …and the next extractor in the list gets its turn
    assert find([{"label": "Phone"}, {"label": "Cell"}], data, "phone") == PHONE


def test_placeholder_phone_makes_a_required_phone_a_dead_letter_naming_what_was_tried():
    rule = make_rule({"full_name": {"label": "Name"}, "phone": {"label": ["Phone", "Cell"]}},
                     required=["phone"])
    out = parse_email(make_email("Name: Ana Ruiz\nPhone: N/A\n"), engine_of(rule))
    assert isinstance(out, DeadLetter)
    assert out.reason is DeadLetterReason.MISSING_REQUIRED_FIELD
    assert out.rule == "portal v1"
    assert "`phone` not found" in out.detail
    assert "labels Phone, Cell" in out.detail


def test_constants_fill_fields_no_extractor_found():
    rule = make_rule({"email": {"label": "Email"}}, constants={"intent": "rent"})
    found = extract(Message(make_email("Email: ana@example.com\n")), rule)
    assert found.fields == {"email": "ana@example.com", "intent": "rent"}


def test_missing_field_trace_lists_each_extractor_tried():
    rule = make_rule({"phone": [{"label": ["Phone", "Mobile"]}, {"regex": r"tel:(\d+)"}]})
    found = extract(Message(make_email("nothing\n")), rule)
    assert found.missing[0].field == "phone"
    assert found.missing[0].tried == ("labels Phone, Mobile", r"regex `tel:(\d+)`")


# -- the text rules read ----------------------------------------------------------------


def test_html_only_email_derives_text_for_labels_and_regexes():
    html = (
        "<html><head><style>p {color: red}</style><title>ignored</title></head><body>"
        "<p>New lead from <b>Ana&nbsp;Ruiz</b></p>"
        f"<table><tr><th>Phone</th><td>{PHONE}</td></tr></table>"
        "<p>Email:<br>ana@example.com</p><!-- a comment --></body></html>"
    )
    msg = Message(make_email(html=html))
    assert msg.plain == ""
    # a line per block, a tab between cells, no style/title/comment, &nbsp; as a space
    assert [line for line in msg.lines if line] == [
        "New lead from Ana Ruiz", f"Phone\t{PHONE}", "Email:", "ana@example.com"]
    rule = make_rule({"phone": {"label": "Phone"}, "email": {"label": "Email"},
                      "full_name": {"regex": r"New lead from (?P<value>.+)$"}})
    assert extract(msg, rule).fields == {"phone": PHONE, "email": "ana@example.com",
                                         "full_name": "Ana Ruiz"}


def test_html_only_email_becomes_a_lead_through_parse_email():
    html = f"<table><tr><td>Name</td><td>Ana Ruiz</td></tr><tr><td>Phone</td><td>{PHONE}</td></tr></table>"
    rule = make_rule({"full_name": {"label": "Name"}, "phone": {"label": "Phone"}},
                     required=["full_name"], require_any=[["phone", "email"]])
    out = parse_email(make_email(html=html), engine_of(rule))
    assert isinstance(out, Lead), out
    assert (out.full_name, out.phone, out.source, out.rule_version) == (
        "Ana Ruiz", "+13055550142", "portal", "1")


def test_plain_part_is_preferred_over_html_when_both_exist():
    data = make_email("Phone: (305) 555-0100\n", f"<p>Phone: {PHONE}</p>")
    assert find({"label": "Phone"}, data) == "(305) 555-0100"
    assert find({"regex": r"Phone: (?P<value>.+)$", "in": "all"}, data) == "(305) 555-0100"


# -- which rule runs --------------------------------------------------------------------


def write_rule(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


RULE_TEMPLATE = """\
source: {source}
version: 1
{priority}
match:
{match}
fields:
  email:
    - header: reply_to
"""


def rule_file(source: str, match: str, priority: int | None = None) -> str:
    return RULE_TEMPLATE.format(
        source=source, match=match, priority=f"priority: {priority}" if priority is not None else ""
    )


def source_of(rule: Rule | None) -> str | None:
    return None if rule is None else rule.source


def test_more_specific_rule_wins_over_a_broad_one(tmp_path: Path):
    """A layout rule (sender + subject) must beat the catch-all for the same sender."""
    write_rule(tmp_path, "a_broad.yaml", rule_file("broad", '  from: ["*@portal.example"]'))
    write_rule(tmp_path, "b_specific.yaml", rule_file(
        "specific", '  from: ["*@portal.example"]\n  subject: ["tour request"]'))
    rules = load_rules(tmp_path)
    assert not rules.errors
    tour = Message(make_email("hi", subject="Tour request for 1 Main St"))
    other = Message(make_email("hi", subject="Price drop"))
    assert source_of(find_rule(tour, rules)) == "specific"
    assert source_of(find_rule(other, rules)) == "broad"


def test_priority_beats_specificity(tmp_path: Path):
    write_rule(tmp_path, "a.yaml", rule_file(
        "specific", '  from: ["*@portal.example"]\n  subject: ["tour"]\n  body: ["garage"]'))
    write_rule(tmp_path, "b.yaml", rule_file("preferred", '  from: ["*@portal.example"]', priority=5))
    rules = load_rules(tmp_path)
    msg = Message(make_email("the garage", subject="tour"))
    assert source_of(find_rule(msg, rules)) == "preferred"


def test_every_kind_of_match_must_hold(tmp_path: Path):
    write_rule(tmp_path, "x.yaml", rule_file(
        "x", '  from: ["*@portal.example"]\n  subject: ["new lead"]\n  body: ["says:"]'))
    rules = load_rules(tmp_path)
    assert find_rule(Message(make_email("Ana says: hi", subject="New lead")), rules) is not None
    assert find_rule(Message(make_email("Ana wrote: hi", subject="New lead")), rules) is None
    assert find_rule(Message(make_email("Ana says: hi", subject="Digest")), rules) is None
    assert find_rule(Message(make_email("Ana says: hi", subject="New lead",
                                        sender="x@other.example")), rules) is None


def test_body_match_also_looks_at_the_html_part(tmp_path: Path):
    write_rule(tmp_path, "x.yaml", rule_file("x", '  body: ["courtesy lead"]'))
    rules = load_rules(tmp_path)
    msg = Message(make_email("plain words only", "<p>Courtesy <b>lead</b></p>"))
    assert find_rule(msg, rules) is not None


def test_sender_glob_is_case_insensitive(tmp_path: Path):
    write_rule(tmp_path, "x.yaml", rule_file("x", '  from: ["*@Portal.Example"]'))
    rules = load_rules(tmp_path)
    assert find_rule(Message(make_email("hi", sender="ALERTS@PORTAL.EXAMPLE")), rules) is not None


def test_an_email_no_rule_matches_with_nothing_of_a_lead_is_ignored_not_a_dead_letter():
    """A stray "hello" from a sender no rule knows pages nobody (issue 14): ignored, with why."""
    rule = make_rule({"email": {"header": "reply_to"}})
    out = parse_email(make_email("hello", sender="someone@elsewhere.example"), engine_of(rule))
    assert isinstance(out, Ignored)
    assert out.reason == "no_prospect_contact"


def test_an_email_no_rule_matches_that_reads_like_a_lead_without_a_contact_is_a_dead_letter():
    """It looks like a lead (a lead subject, an inquiry) but holds no phone or email of the
    prospect: someone must look at it, so it is a dead letter naming the sender and the
    command that drafts its rule."""
    rule = make_rule({"email": {"header": "reply_to"}})
    body = "You have a new lead!\nAna Ruiz is interested in 12 Elm St and would like a tour.\n"
    out = parse_email(make_email(body, subject="New lead from Ana Ruiz", sender="leads@elsewhere.example"),
                      engine_of(rule))
    assert isinstance(out, DeadLetter)
    assert out.reason is DeadLetterReason.NO_MATCHING_RULE
    assert "leads@elsewhere.example" in out.detail
    assert "leadpipe rules new elsewhere.example --dlq" in out.detail


# -- runaway patterns -------------------------------------------------------------------

# ``(a|aa)+$`` backtracks exponentially on a run of a's that ends in something else; the
# ``regex`` module needs seconds for 35 of them. (``(a+)+$`` does not: the module spots it.)
CATASTROPHIC = r"(a|aa)+$"
VICTIM = "a" * 40 + "b\n"


def test_catastrophic_extractor_regex_becomes_rule_timeout_not_a_hang():
    rule = make_rule({"message": {"regex": CATASTROPHIC}})
    engine = engine_of(rule, regex_timeout=timedelta(milliseconds=50))
    started = time.monotonic()
    out = parse_email(make_email(VICTIM), engine)
    assert time.monotonic() - started < 5
    assert isinstance(out, DeadLetter)
    assert out.reason is DeadLetterReason.RULE_TIMEOUT
    assert out.rule == "portal v1"
    assert CATASTROPHIC in out.detail


def test_catastrophic_match_pattern_becomes_rule_timeout_not_a_hang():
    rule = make_rule({"email": {"header": "reply_to"}},
                     match={"from": ["*@portal.example"], "body": [CATASTROPHIC]})
    engine = engine_of(rule, regex_timeout=timedelta(milliseconds=50))
    started = time.monotonic()
    out = parse_email(make_email(VICTIM), engine)
    assert time.monotonic() - started < 5
    assert isinstance(out, DeadLetter)
    assert out.reason is DeadLetterReason.RULE_TIMEOUT
    assert out.rule == "portal v1"


def test_catastrophic_filter_pattern_becomes_rule_timeout():
    rule = make_rule({"message": {"label": "Note", "filters": [{"replace": [CATASTROPHIC, ""]}]}})
    engine = engine_of(rule, regex_timeout=timedelta(milliseconds=50))
    out = parse_email(make_email("Note: " + VICTIM), engine)
    assert isinstance(out, DeadLetter)
    assert out.reason is DeadLetterReason.RULE_TIMEOUT
