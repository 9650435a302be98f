"""The reader (daemon/reading/reader.py) and the verdict (daemon/reading/triage.py) on emails no rule knows.

Each test names the promise of issue 14 it holds: a layout read, a value cleaned, a contact
that is someone else's passed over, a non-lead ignored. The layouts are the general ones of
shared SOURCES.md; the blind corpus (tests/system/test_accuracy.py) measures them at scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_parsing import make_email

from daemon.lead import DeadLetter, Ignored, Lead
from daemon.pipeline import Engine, parse_email

REPO = Path(__file__).resolve().parents[2]
ENGINE = Engine.load(REPO / "rules")
SENDER = "Nestfinder Leads <leads@mail.nestfinder.example>"


def read(text: str | None = None, html: str | None = None, **kw: Any) -> Lead | DeadLetter | Ignored:
    kw.setdefault("sender", SENDER)
    kw.setdefault("subject", "New lead for 12 Elm St")
    return parse_email(make_email(text, html, **kw), ENGINE)


def lead(text: str | None = None, html: str | None = None, **kw: Any) -> Lead:
    outcome = read(text, html, **kw)
    assert isinstance(outcome, Lead), outcome
    return outcome


# -- label layouts ---------------------------------------------------------------------------


@pytest.mark.parametrize("block", [
    "Name: Ann Lee\nPhone: (303) 555-0134\nEmail: ann@example.com",
    "Name:Ann Lee\nPhone:(303) 555-0134\nEmail:ann@example.com",
    "NAME: Ann Lee\nPHONE: (303) 555-0134\nEMAIL: ann@example.com",
    "Name - Ann Lee\nPhone - (303) 555-0134\nEmail - ann@example.com",
    "Name = Ann Lee\nPhone = (303) 555-0134\nEmail = ann@example.com",
    "Name | Ann Lee\nPhone | (303) 555-0134\nEmail | ann@example.com",
    "[Name] Ann Lee\n[Phone] (303) 555-0134\n[Email] ann@example.com",
    "*Name* Ann Lee\n*Phone* (303) 555-0134\n*Email* ann@example.com",
    "**Name:** Ann Lee\n**Phone:** (303) 555-0134\n**Email:** ann@example.com",
    "Your Name (required) *: Ann Lee\nBest number to reach you: (303) 555-0134\nRenter's e-mail: ann@example.com",
    "firstName: Ann\nlast_name = Lee\nphoneNumber: (303) 555-0134\ncontact.email: ann@example.com",
    "Name\nAnn Lee\n\nPhone\n\n(303) 555-0134\nEmail\nann@example.com",
    "| Name | Ann Lee |\n| Phone | (303) 555-0134 |\n| Email | ann@example.com |",
])
def test_every_label_layout_of_real_notifications_is_read(block: str):
    got = lead("You have a new lead.\n\n" + block + "\n")
    assert (got.full_name, got.phone, got.email) == ("Ann Lee", "+13035550134", "ann@example.com")


@pytest.mark.parametrize("html", [
    "<table><tr><td>Name</td><td>Ann Lee</td></tr><tr><td>Phone</td><td>(303) 555-0134</td></tr>"
    "<tr><td>Email</td><td>ann@example.com</td></tr></table>",
    "<table><tr><th>Name:</th><td>Ann Lee</td></tr><tr><th>Phone:</th><td>(303) 555-0134</td></tr>"
    "<tr><th>Email:</th><td>ann@example.com</td></tr></table>",
    "<dl><dt>Name</dt><dd>Ann Lee</dd><dt>Phone</dt><dd>(303) 555-0134</dd><dt>Email</dt>"
    "<dd>ann@example.com</dd></dl>",
    "<p><b>Name:</b> Ann Lee<br><b>Phone:</b> (303) 555-0134<br><b>Email:</b> ann@example.com</p>",
    "<ul><li><span>Name</span>: <span>Ann Lee</span></li><li>Phone: <a href='tel:3035550134'>(303) 555-0134</a>"
    "</li><li>Email: <a href='mailto:ann@example.com'>ann@example.com</a></li></ul>",
    "<div class='h-card'><span class='p-name'>Ann Lee</span> <span class='p-tel'>(303) 555-0134</span> "
    "<span class='p-email'>ann@example.com</span></div>",
    "<html><head><meta name='lead_name' content='Ann Lee'><meta name='lead_phone' content='3035550134'>"
    "<meta name='lead_email' content='ann@example.com'></head><body><p>New lead</p></body></html>",
])
def test_every_html_layout_is_read(html: str):
    got = lead(html=f"<html><body><p>You have a new lead.</p>{html}</body></html>")
    assert (got.full_name, got.phone, got.email) == ("Ann Lee", "+13035550134", "ann@example.com")


# -- no labels -------------------------------------------------------------------------------


def test_bare_lines_after_an_intro_sentence_are_read():
    got = lead("A new lead came in from your Facebook ad. Details below:\n\nAnn\nLee\nann@example.com\n"
               "303-555-0134\n")
    assert (got.first_name, got.last_name, got.email, got.phone) == ("Ann", "Lee", "ann@example.com",
                                                                      "+13035550134")


@pytest.mark.parametrize(("text", "subject"), [
    ("Ann Lee says:\n\"Is it still available?\"\n\nann@example.com\n(303) 555-0134\n", "New contact"),
    ("Ann Lee is interested in 12 Elm St.\nann@example.com\n(303) 555-0134\n", "New inquiry"),
    ("Meet Ann Lee!\nann@example.com\n(303) 555-0134\n", "You have a new match"),
    ("Information for Ann Lee\nann@example.com\n(303) 555-0134\n", "Lead details"),
    ("ann@example.com\n(303) 555-0134\n", "Rental lead from Ann Lee (Cedar Flats)"),
    ("Reach them at ann@example.com or (303) 555-0134.\n", "Ann Lee wants to tour 12 Elm St"),
])
def test_names_in_sentences_and_the_subject_are_read(text: str, subject: str):
    got = lead(text, subject=subject)
    assert (got.full_name, got.email, got.phone) == ("Ann Lee", "ann@example.com", "+13035550134")


def test_the_message_after_name_says_is_the_message():
    got = lead("Ann Lee says:\n\"Is the unit still available in May?\"\n\nann@example.com\n(303) 555-0134\n",
               subject="New contact")
    assert got.message == "Is the unit still available in May?"


@pytest.mark.parametrize("opening", [
    "New renter lead for 4410 Garnet Ave Unit 2\n\nJordan Pike",
    "Jordan Pike is looking at 4410 Garnet Ave Unit 2.",
])
def test_the_paragraph_after_bare_contact_lines_is_the_message(opening: str):
    got = lead(f"{opening}\njordan.pike@example.net\n(720) 555-0182\n\n"
               "Hi! Is the 2 bed still available? I'd love to see it this weekend.\n\n"
               "Reply to this lead from your dashboard.\n", subject="New renter lead")
    assert (got.full_name, got.email) == ("Jordan Pike", "jordan.pike@example.net")
    assert got.message == "Hi! Is the 2 bed still available? I'd love to see it this weekend."


def test_a_template_line_after_bare_contact_lines_is_no_message():
    got = lead("Jordan Pike\njordan.pike@example.net\n(720) 555-0182\n\n"
               "Respond within 5 minutes to improve your chances of converting this lead.\n",
               subject="New renter lead")
    assert got.email == "jordan.pike@example.net"
    assert got.message is None


def test_a_relays_display_name_and_reply_to_are_the_prospects():
    got = lead("Is the 2BR still available?\n", sender='"Ann Lee via Rentzilla" <relay-8f3a9c21@rentzilla.test>',
               subject="Rentzilla lead for 12 Elm St", headers={"Reply-To": "ann@example.com"})
    assert (got.source, got.full_name, got.email) == ("rentzilla.test", "Ann Lee", "ann@example.com")


def test_an_email_in_the_name_slot_is_moved_to_the_email_field_not_dropped():
    got = lead("Name: ann@example.com\nPhone: (303) 555-0134\n")
    assert (got.full_name, got.email) == (None, "ann@example.com")
    assert "reader: no name found" in got.warnings


# -- values cleaned --------------------------------------------------------------------------


def test_link_decorations_quotes_and_markers_are_removed_before_the_shape_is_checked():
    got = lead("Name: \"Ann Lee\" *\nEmail: ann@example.com<mailto:ann@example.com>\n"
               "Phone: (303) 555-0134<tel:3035550134> (optional)\n")
    assert (got.full_name, got.email, got.phone) == ("Ann Lee", "ann@example.com", "+13035550134")


@pytest.mark.parametrize("placeholder", ["N/A", "none", "-", "Not provided", "(none)", "No last name given"])
def test_placeholders_stand_for_nothing(placeholder: str):
    got = lead(f"First Name: Ann\nLast Name: {placeholder}\nPhone: {placeholder}\nEmail: ann@example.com\n")
    assert (got.full_name, got.last_name, got.phone) == ("Ann", None, None)


@pytest.mark.parametrize(("typed", "cased"), [
    ("griffin o'neil", "Griffin O'Neil"), ("JOHN MCDONALD", "John McDonald"),
    ("anne-marie núñez", "Anne-Marie Núñez"),
])
def test_names_come_out_in_name_case(typed: str, cased: str):
    assert lead(f"Name: {typed}\nPhone: (303) 555-0134\n").full_name == cased


def test_trailing_words_and_display_name_leftovers_are_not_part_of_a_name():
    got = lead("Please call back.\n", sender='"Ann Lee [example.com] via Zumpy" <lead.7731002@zumpy.example>',
               subject="New lead", headers={"Reply-To": "ann@example.com"})
    assert got.full_name == "Ann Lee"


# -- whose contact it is ---------------------------------------------------------------------


def test_the_senders_recipients_footers_and_agents_contacts_are_never_the_leads():
    got = lead("Name: Ann Lee\nPhone: (303) 555-0134\n\nListing Agent\nBob Stone\n(303) 555-0177\n"
               "bob@brokerage.example\n\nQuestions? Call us at (800) 555-0100 or support@nestfinder.example\n"
               "Nestfinder, 100 Main St, Denver, CO 80202 | (303) 555-0100\nUnsubscribe\n")
    assert (got.full_name, got.phone, got.email) == ("Ann Lee", "+13035550134", None)


def test_a_labelled_prospect_value_wins_over_reply_to_and_says_what_was_passed_over():
    got = lead("Name: Ann Lee\nEmail: ann@example.com\n", headers={"Reply-To": "ann.lee.work@example.net"})
    assert got.email == "ann@example.com"
    assert any("passed over 'ann.lee.work@example.net'" in w for w in got.warnings)


# -- rules and the reader together -----------------------------------------------------------


def test_a_lead_from_a_new_sender_is_named_after_its_domain_and_needs_no_name():
    got = lead("Phone: (303) 555-0134\nMessage: call me\n")
    assert (got.source, got.full_name, got.phone) == ("nestfinder.example", None, "+13035550134")
    assert got.warnings[0].startswith("reader: no rule knows the sender leads@mail.nestfinder.example")
    assert "leadpipe rules new nestfinder.example --lead ID" in got.warnings[0]
    assert "reader: no name found" in got.warnings


def test_a_field_a_rule_misses_is_filled_by_the_reader_with_a_drift_warning():
    eml = (REPO / "fixtures" / "emails" / "zillow" / "current_layout_multipart.eml").read_bytes()
    relabelled = eml.replace(b"Phone", b"Best number to reach you")
    got = parse_email(relabelled, ENGINE)
    assert isinstance(got, Lead) and got.source == "zillow" and got.phone is not None


# -- never a false lead, and no noise ----------------------------------------------------------


@pytest.mark.parametrize(("subject", "text", "headers", "kind"), [
    ("Price reduced: 12 Elm St", "Now $450,000. Agent: Bob Stone (303) 555-0177 bob@brokerage.example\n", {},
     "price_change"),
    ("Your weekly market report", "Home values in Denver rose 2%.\nCall us: (303) 555-0100\n",
     {"List-Unsubscribe": "<https://nestfinder.example/u>"}, "market_report"),
    ("Completed: Purchase agreement for 12 Elm St", "All parties have signed.\nSigner: Ann Lee ann@example.com\n",
     {}, "esign"),
    ("Re: 12 Elm St", "Thanks, see you at 3.\n\nOn Mon, Bob Stone <bob@brokerage.example> wrote:\n> Name: Ann Lee\n"
     "> Phone: (303) 555-0134\n", {}, "agent_reply"),
    ("Automatic reply: New lead", "I am out of the office until Monday. (303) 555-0134\n",
     {"X-Auto-Response-Suppress": "All"}, "auto_reply"),
    ("Out of Office", "I am away on vacation with limited access to email.\nCell: (303) 555-0134\n", {},
     "auto_reply"),
    ("Undeliverable: New lead", "Your message to ann@example.com couldn't be delivered.\n", {}, "bounce"),
    ("Invitation: Open house @ Sat 1pm", "Join us. Host: Bob Stone (303) 555-0177\n", {}, "calendar_invite"),
    ("Your receipt from Nestfinder", "Order #4411: Premier leads, $99.\nQuestions? (303) 555-0100\n", {},
     "receipt"),
    ("Daily digest: 3 new leads", "Ann Lee ann@example.com\nBo Chen bo@example.com\nCy Diaz cy@example.com\n", {},
     "crm_digest"),
])
def test_mail_that_is_not_a_lead_is_ignored_with_its_kind(subject: str, text: str, headers: dict[str, str],
                                                          kind: str):
    outcome = read(text, subject=subject, headers=headers)
    assert outcome == Ignored(kind)


def test_binary_garbage_is_an_unreadable_email_not_no_matching_rule():
    outcome = parse_email(b"\x00\xff\xfe garbage \x00\x89PNG\r\n" * 200, ENGINE)
    assert isinstance(outcome, DeadLetter) and outcome.reason.value == "unreadable_email"
    assert "None" not in outcome.detail


def _lead_fixtures() -> list[Path]:
    from daemon.reading import goldens

    return [p for p in goldens.fixtures(REPO / "fixtures" / "emails")
            if "lead" in (goldens.load(p) or {})]


@pytest.mark.parametrize("eml", _lead_fixtures(), ids=lambda p: str(p.relative_to(REPO / "fixtures" / "emails")))
def test_with_no_rule_at_all_the_reader_reads_the_contact_of_every_lead_fixture(eml: Path):
    """The fixtures were written for their rules; take the rules away and the reader alone
    still finds the same person (what a portal's brand-new template looks like to it)."""
    import dataclasses

    from daemon.reading import goldens
    from daemon.reading.rules import ruleset_of

    no_rules = dataclasses.replace(ENGINE, rules=ruleset_of([], (), REPO / "rules"))
    golden = (goldens.load(eml) or {})["lead"]
    got = parse_email(eml.read_bytes(), no_rules)
    assert isinstance(got, Lead), got
    assert (got.full_name, got.email, got.phone) == (golden["full_name"], golden["email"], golden["phone"])


def test_a_message_wrapped_by_the_senders_mail_program_is_read_whole():
    got = lead("Name: Ann Lee\nPhone: (303) 555-0134\nComments: We are relocating from Chicago in March and "
               "would like to see\nthe house on Elm Street this weekend if that works.\n\nThanks,\nThe Website\n")
    assert got.message == ("We are relocating from Chicago in March and would like to see the house on Elm "
                           "Street this weekend if that works.")


def test_a_name_field_holding_the_contacts_too_gives_each_its_own_field():
    got = lead("Contact: Ann Lee, 303-555-0134, ann@example.com\nMessage: Call after 5\n")
    assert (got.full_name, got.phone, got.email) == ("Ann Lee", "+13035550134", "ann@example.com")


def test_the_brokerages_own_website_form_is_read_as_a_lead_not_a_colleagues_note():
    got = lead("Name: Ann Lee\nPhone: (303) 555-0134\nMessage: Is 12 Elm St still available?\n",
               sender="Cedar Realty Website <website@brokerage.example>", subject="Website inquiry")
    assert (got.source, got.full_name) == ("brokerage.example", "Ann Lee")


def test_a_label_and_its_value_in_two_spans_without_a_colon_are_a_pair():
    """HTML that puts `<span>Email</span> <span>ann@…</span>` side by side reads as
    "Email ann@example.com": a label and a value with a space between."""
    got = lead(html="<html><body><h2>Meet Ann Lee</h2><p>A buyer matched your listing.</p><ul>"
                    "<li><span>Email</span> <span><a href='mailto:ann@example.com'>ann@example.com</a></span></li>"
                    "<li><span>Phone</span> <span>(303) 555-0134</span></li></ul></body></html>",
               subject="You have a new buyer")
    assert (got.full_name, got.email, got.phone) == ("Ann Lee", "ann@example.com", "+13035550134")
    assert got.message is None  # "A buyer matched your listing." is the portal's words, not hers


def test_a_name_written_surname_first_is_read_first_name_first():
    got = lead("Name: Okonkwo, Chidi\nPhone: 720-555-0133\n")
    assert (got.full_name, got.first_name, got.last_name) == ("Chidi Okonkwo", "Chidi", "Okonkwo")


def test_a_lead_notification_marked_auto_generated_is_still_a_lead():
    """RFC 3834: `Auto-Submitted: auto-generated` is any automatic mail (lead notifications
    are); only `auto-replied` is an auto-reply."""
    got = lead("Name: Ann Lee\nPhone: (303) 555-0134\n", headers={"Auto-Submitted": "auto-generated"})
    assert got.full_name == "Ann Lee"
    assert read("Name: Ann Lee\nPhone: (303) 555-0134\n", headers={"Auto-Submitted": "auto-replied"}) == \
        Ignored("auto_reply")


@pytest.mark.parametrize("subject", ["Ann Lee signed in at your open house", "Self-tour booked: 12 Elm St",
                                     "New relocation referral: transferee to Denver"])
def test_open_house_sign_ins_self_tours_and_relocation_referrals_are_leads(subject: str):
    got = lead("Visitor: Ann Lee\nEmail: ann@example.com\nPhone: (303) 555-0134\n", subject=subject)
    assert (got.full_name, got.email) == ("Ann Lee", "ann@example.com")


def test_contacts_on_one_line_a_few_paragraphs_below_the_introduction_are_read():
    filler = "\n".join(f"Detail {i} about the home." for i in range(8))
    got = lead(f"Meet Ann Lee\n\nShe is pre-approved.\n{filler}\nContact ann@example.com · (303) 555-0134\n",
               subject="You have a new buyer")
    assert (got.full_name, got.email, got.phone) == ("Ann Lee", "ann@example.com", "+13035550134")


# -- found in review: each of these once lost a lead or made a false one ----------------------


@pytest.mark.parametrize("eml", _lead_fixtures(), ids=lambda p: str(p.relative_to(REPO / "fixtures" / "emails")))
def test_a_known_senders_lead_with_a_new_subject_is_still_its_lead(eml: Path):
    """The provider changed its subject line: the email is still that source's lead (issue
    14: "not a dead letter"), never silently ignored for want of generic lead cues."""
    import re as _re

    from daemon.reading import goldens

    golden = (goldens.load(eml) or {})["lead"]
    data = _re.sub(rb"(?m)^Subject:.*$", b"Subject: Notification", eml.read_bytes(), count=1)
    got = parse_email(data, ENGINE)
    assert isinstance(got, Lead) and got.source == golden["source"], got


def test_a_reply_quoting_a_lead_is_not_that_lead_again():
    outcome = read("Thanks, I'll call her today.\n\nOn Mon, Mar 9, 2026 at 10:02 AM Zillow <leads@zillow.com> "
                   "wrote:\n> Name: Ann Lee\n> Email: ann@example.com\n> Phone: (303) 555-0134\n",
                   sender="Bob Stone <bob.stone@gmail.com>", subject="Re: New Zillow lead: Ann Lee")
    assert not isinstance(outcome, Lead)


def test_a_mailing_list_with_a_reply_to_and_a_lead_like_subject_is_no_lead():
    outcome = read("Spring is here! Rates are down and inventory is up.\nCall me: (303) 555-0177\n",
                   sender="Jane Realty <news@janerealty.example>", subject="Interested in buying this spring?",
                   headers={"List-Unsubscribe": "<https://janerealty.example/u>",
                            "Reply-To": "jane@janerealty.com"})
    assert isinstance(outcome, Ignored)


def test_the_senders_own_sign_off_and_signature_are_not_the_prospects():
    outcome = read("Hi there,\n\nInterested in professional listing photos? We shoot same-day.\n\nBest,\n"
                   "Mark Fields\n(303) 555-0177\nmark@shutterpro.example\n",
                   sender="Mark Fields <mark@shutterpro.example>", subject="Interested in listing photos?")
    assert not isinstance(outcome, Lead)


def test_a_reply_to_that_is_not_the_named_prospect_is_not_their_email():
    got = lead("New lead assigned to you.\n\nName: Ann Lee\nPhone: (303) 555-0134\n",
               sender="Lead Router <notify@leadrouter.example>", subject="New lead assigned: Ann Lee",
               headers={"Reply-To": "jane.agent@gmail.com"})
    assert (got.full_name, got.phone, got.email) == ("Ann Lee", "+13035550134", None)


def test_a_block_under_a_heading_with_a_colon_is_someone_elses():
    got = lead("Name: Ann Lee\nEmail: ann@example.com\n\nYour agent:\nJane Smith\n(720) 555-0199\n")
    assert (got.email, got.phone) == ("ann@example.com", None)


def test_a_greeting_is_not_a_heading_of_someone_elses_block():
    got = lead("Hello Agent,\nAnn Lee says:\nIs it still available?\nann.lee@example.com\n(303) 555-0134\n",
               subject="New contact")
    assert (got.full_name, got.email, got.phone) == ("Ann Lee", "ann.lee@example.com", "+13035550134")


def test_a_one_line_row_of_labels_is_read_whole():
    got = lead("Name: Ann Lee | Phone: (303) 555-0134 | Email: ann@example.com\n")
    assert (got.full_name, got.phone, got.email) == ("Ann Lee", "+13035550134", "ann@example.com")


def test_contacts_in_the_html_part_are_not_judged_by_the_plain_parts_line_numbers():
    intro = "\n".join(f"Intro line {i}." for i in range(14))
    got = lead(f"{intro}\nAnn Lee says:\nIs it available?\n",
               "<html><body><p>ann@example.com</p><p>(303) 555-0134</p></body></html>", subject="New contact")
    assert (got.email, got.phone) == ("ann@example.com", "+13035550134")


@pytest.mark.parametrize("address", ["info@leebakery.example", "office@annlee.example", "hello.ann@example.com"])
def test_a_prospects_role_address_under_an_email_label_is_theirs(address: str):
    assert lead(f"Name: Ann Lee\nEmail: {address}\n").email == address


def test_a_prospect_copied_in_is_not_taken_for_the_brokerage():
    got = lead("Name: Ann Lee\nEmail: ann@acme-corp.example\n", headers={"Cc": "ann@acme-corp.example"})
    assert got.email == "ann@acme-corp.example"


@pytest.mark.parametrize("name", ["Tom House", "Ann Page", "Maria de los Angeles Garcia", "Bob Open"])
def test_any_name_under_a_name_label_is_read(name: str):
    assert lead(f"Name: {name}\nPhone: (303) 555-0134\n").full_name == name


def test_a_json_like_dump_of_quoted_keys_and_values_is_read():
    got = lead('Lead payload:\n{\n  "name": "Ann Lee",\n  "email": "Ann.Lee@Example.com",\n'
               '  "phone": "+1 (303) 555-0134",\n  "agent_email": "bob@brokerage.example"\n}\n')
    assert (got.full_name, got.email, got.phone) == ("Ann Lee", "ann.lee@example.com", "+13035550134")


def test_a_text_table_with_a_row_of_headings_is_read_by_column():
    got = lead("Lead ID | Name | Email | Phone | Property\nNF-1182 | Ann Lee | ann@example.com | 303-555-0134 | 12 Elm St\n")
    assert (got.full_name, got.email, got.phone) == ("Ann Lee", "ann@example.com", "+13035550134")


def test_a_name_with_its_contacts_in_parentheses_is_read():
    got = lead("Ann Lee (ann.lee@example.com, 303-555-0134) asked about 12 Elm St on Tuesday.\n",
               subject="New question")
    assert (got.full_name, got.email, got.phone) == ("Ann Lee", "ann.lee@example.com", "+13035550134")


def test_a_call_tracking_lead_names_the_caller_and_their_number():
    got = lead("Caller ID name: Ann Lee\nCaller ID: (303) 555-0134\nTracking line: Elm St sign (720) 555-0100\n",
               subject="Missed call from a sign rider")
    assert (got.full_name, got.phone) == ("Ann Lee", "+13035550134")


def test_an_icon_before_a_bare_phone_does_not_hide_it():
    got = lead("Ann Lee says:\nCall me!\n\n📱 +1 303-555-0134\n", subject="New contact")
    assert got.phone == "+13035550134"


@pytest.mark.parametrize(("subject", "text"), [
    ("TEST - please ignore", "Name: Test Agent\nPhone: (303) 555-0134\n"),
    ("New lead", "This is a test.\nName: Ann Lee\nPhone: (303) 555-0134\n"),
    ("Grow your business with us", "Here is a sample lead you could get:\nName: Ann Lee\nPhone: (303) 555-0134\n"),
])
def test_a_test_submission_or_a_sample_lead_is_no_lead(subject: str, text: str):
    assert isinstance(read(text, subject=subject), Ignored)


def test_a_lead_forwarded_twice_is_read_from_the_innermost_original():
    body = ("See below.\n\n---------- Forwarded message ---------\nFrom: Bob Stone <bob@brokerage.example>\n"
            "Date: Mon, Mar 9, 2026\nSubject: Fwd: New lead\nTo: <ann.agent@brokerage.example>\n\nFYI\n\n"
            "---------- Forwarded message ---------\nFrom: Nestfinder <leads@nestfinder.example>\n"
            "Date: Mon, Mar 9, 2026\nSubject: New lead\nTo: <bob@brokerage.example>\n\n"
            "Name: Priya Natarajan\nEmail: priya.n@example.com\nPhone: (617) 555-0188\n")
    got = lead(body, sender="Ann Agent <ann.agent@brokerage.example>", subject="Fwd: Fwd: New lead")
    assert (got.source, got.full_name, got.email) == ("nestfinder.example", "Priya Natarajan", "priya.n@example.com")


def test_a_nickname_in_quotes_is_no_part_of_the_name():
    assert lead('Name: Jonah "Jay" Whitfield\nPhone: (303) 555-0134\n').full_name == "Jonah Whitfield"


def test_a_label_and_value_joined_by_dotted_leaders_are_a_pair():
    got = lead("Name ............ Tomas Reyes Jr.\nPhone ........... (303) 555-0134\n")
    assert (got.full_name, got.phone) == ("Tomas Reyes Jr.", "+13035550134")


def test_a_subject_that_names_the_lead_after_a_colon_gives_the_name():
    got = lead("Email: ann@example.com\nPhone: (303) 555-0134\n", subject="New chat lead: Ann Lee")
    assert got.full_name == "Ann Lee"


def test_a_text_tables_row_whose_last_cells_are_empty_is_still_read_by_column():
    got = lead("Lead ID | First | Last | Email | Phone | Notes\nNF-1 | Ann | Lee | ann@example.com | 303-555-0134 |\n")
    assert (got.full_name, got.email, got.phone) == ("Ann Lee", "ann@example.com", "+13035550134")


def test_a_forward_quoted_line_by_line_is_read_from_its_original():
    body = ("Can you take this one?\n\n> ---------- Forwarded message ---------\n> From: Nestfinder <leads@nestfinder.example>\n"
            "> Date: Mon, Mar 9, 2026\n> Subject: New lead\n>\n> Name: Priya Natarajan\n> Phone: (617) 555-0188\n")
    got = lead(body, sender="Bob Stone <bob@brokerage.example>", subject="Fwd: New lead")
    assert (got.source, got.full_name, got.phone) == ("nestfinder.example", "Priya Natarajan", "+16175550188")


# -- the property's place, labelled apart ------------------------------------------------------


def test_city_state_and_zip_labelled_apart_are_the_propertys():
    got = lead("First Name: Jordan\nLast Name: Pike\nEmail: jordan.pike@example.net\n"
               "Street Address: 412 Laurel Bend Rd\nCity: Asheville\nState: North Carolina\nZip Code: 28803\n")
    p = got.property
    assert (p.address, p.city, p.state, p.postal_code) == ("412 Laurel Bend Rd", "Asheville", "NC", "28803")
    assert p.address_verified is True


def test_one_label_for_city_state_and_zip_is_split():
    got = lead("Name: Jordan Pike\nEmail: jordan.pike@example.net\nProperty: 9 Elm Ct\n"
               "City/State/Zip: Asheville, NC 28801\n")
    assert (got.property.city, got.property.state, got.property.postal_code) == ("Asheville", "NC", "28801")


def test_an_address_line_with_its_own_city_keeps_it_over_a_zip_labelled_apart():
    # the form's "Zip Code" is where the prospect lives; the listing says where it is
    got = lead("Name: Jordan Pike\nEmail: jordan.pike@example.net\nZip Code: 10001\n"
               "Property: 9 Elm Ct, Asheville, NC 28801\n")
    assert (got.property.address, got.property.city, got.property.postal_code) == (
        "9 Elm Ct", "Asheville", "28801")


@pytest.mark.parametrize("line", ["City: 12345", "State: Confusion", "Zip Code: call me", "Town: see below please now ok"])
def test_a_place_label_without_its_shape_gives_nothing(line: str):
    got = lead(f"Name: Jordan Pike\nEmail: jordan.pike@example.net\n{line}\n")
    assert (got.property.city, got.property.state, got.property.postal_code) == (None, None, None)


# -- messages of several lines, and the note a relayed email opens with --------------------------


@pytest.mark.parametrize(("text", "html"), [
    ("Name: Ann Lee\nEmail: ann@example.com\n[Message] Hi we are pre-approved for $450k.\n"
     "Want to see homes in June.\n\n--\nQuickForm\n", None),
    (None, "<p><b>Name:</b> Ann Lee<br><b>Email:</b> ann@example.com<br>"
           "<b>Message:</b> Hi we are pre-approved for $450k.<br>Want to see homes in June.</p>"),
    (None, "<table><tr><td>Name</td><td>Ann Lee</td></tr><tr><td>Email</td><td>ann@example.com</td></tr>"
           "<tr><td>Comments</td><td>Hi we are pre-approved for $450k.<br>Want to see homes in June.</td></tr>"
           "</table>"),
])
def test_a_message_written_in_several_lines_is_read_whole(text: str | None, html: str | None):
    assert lead(text, html).message == "Hi we are pre-approved for $450k. Want to see homes in June."


@pytest.mark.parametrize("after", ["**Lead score:** Hot", "[Budget] $450,000", "Lead ID: 20931",
                                   "View the lead: https://portal.example/leads/20931"])
def test_a_messages_lines_stop_at_the_next_label_or_link(after: str):
    got = lead(f"Name: Ann Lee\nEmail: ann@example.com\nMessage: Is the basement finished?\n{after}\n")
    assert got.message == "Is the basement finished?"


def test_the_note_a_relayed_email_opens_with_is_the_message_without_greeting_and_sign_off():
    got = lead("Hi there,\n\nI'm interested in the one bedroom at 88 Pier Ave. Is it available March 1?\n\n"
               "Thanks,\nKenji\n\n--\nReply to this email to respond to Kenji.\n",
               sender='"Kenji Mori via BayWindow" <relay-5c2e@baywindow.example>',
               subject="BayWindow: new message about 88 Pier Ave",
               headers={"Reply-To": "kenji.mori@example.com"})
    assert got.message == "I'm interested in the one bedroom at 88 Pier Ave. Is it available March 1?"


@pytest.mark.parametrize("body", [
    "Rental inquiry from Kenji Mori for Unit 4.\n\n--\nReply to this email to respond.\n",  # the template's line
    "Tell us about your move!\nName: Kenji Mori\nEmail: kenji.mori@example.com\n",  # a form's heading
])
def test_a_relayed_emails_template_line_is_no_note(body: str):
    got = lead(body, sender='"Kenji Mori via BayWindow" <relay-5c2e@baywindow.example>',
               subject="BayWindow: new message", headers={"Reply-To": "kenji.mori@example.com"})
    assert got.message is None


@pytest.mark.parametrize(("line", "street"), [
    ("Interested in 45 Willow Bend Rd", "45 Willow Bend Rd"),
    ("Interested in 9 Harbor Point Dr, Tampa", "9 Harbor Point Dr"),
    ("Saved listing: 1234 Main St, ($450,000, MLS# 1234567)", "1234 Main St"),
    ("Property: 1234 Main St MLS# 1234567", "1234 Main St"),
])
def test_a_street_named_with_a_street_word_and_a_listings_price_after_it(line: str, street: str):
    got = lead(f"Information for Ann Lee\nann@example.com\n(303) 555-0134\n{line}\n", subject="New lead")
    assert got.property.address == street
