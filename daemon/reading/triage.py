"""Is it a lead? The verdict on an email no rule fully recognised.

Much of what reaches a lead inbox is not a lead: newsletters, listing and price alerts,
showing confirmations, e-signature notices, CRM mail, agents' replies, calendar invitations,
receipts, auto-replies, bounces, marketing with a phone number in its footer. The verdict is
decided on evidence, weighed both ways:

- for a lead: a prospect's phone or email that is not the sender's (the reader's), contact
  labels, a lead-like subject (``New lead``, ``… is interested``, ``Tour request``), lead
  sentences in the body (``<Name> says:``, ``please contact me``);
- against: auto-reply and bounce headers and wording, bulk-mail headers, a subject of a kind
  that is never a lead (``Price reduced``, ``Your weekly market report``, ``Completed:
  envelope``, ``Re: …``), a quoted reply, a calendar part, a digest of many people.

An email without a prospect contact is a dead letter only when it still looks like a lead
(someone must look at it); anything else is ``ignored`` with the kind it is, never a lead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.reading.candidates import Reading
from daemon.reading.message import Message
from daemon.reading.senders import Parties

_AUTO_SUBJECT = re.compile(
    r"^\s*(?:automatic reply|auto(?:matic)?[- ]?(?:reply|response)|autoreply|out of (?:the )?office|ooo\b"
    r"|away from (?:my|the) (?:desk|office)|on vacation|i am (?:out|away))", re.IGNORECASE)
_AUTO_BODY = re.compile(
    r"\b(?:i am|i'm|i will be) (?:currently )?(?:out of (?:the )?office|away|on (?:vacation|leave|holiday)"
    r"|travell?ing)\b|limited access to (?:my )?e-?mail|(?:will|shall) (?:respond|reply|get back to you)"
    r" (?:to your (?:e-?mail|message) )?(?:when|upon|after) (?:i|my) return|this is an auto(?:mated|matic)?"
    r"[- ]?(?:reply|response)", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliverable|delivery status notification|mail delivery (?:failed|subsystem|failure)|returned mail"
    r"|delivery (?:failure|has failed)|undelivered mail|failure notice|could not be delivered"
    r"|message not delivered|delivery incomplete", re.IGNORECASE)

# Subjects of mail that is never a lead, by kind (the ``ignored`` reason).
_NOT_LEAD_SUBJECTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in (
        ("calendar_invite", r"^\s*(?:(?:updated )?invitation|accepted|declined|tentative(?:ly accepted)?"
                            r"|canceled event|cancelled event|event canceled)\s*:|\binvitation\b.*@"),
        ("esign", r"docusign|envelope|e-?sign|signature (?:request|requested|completed|needed)|please"
                  r" (?:review and )?sign\b|\bsigned\b(?!\s+(?:in|up|on)\b)|^\s*completed\s*:|dotloop"
                  r"|authentisign|ready for signature"),
        ("transaction", r"transaction|document(?:s)? (?:uploaded|added|shared|received)|\buploaded\b|escrow"
                        r"|compliance|checklist|commission|closing (?:date|disclosure|reminder|docs?)|skyslope"
                        r"|task (?:assigned|due|overdue)|offer (?:accepted|received|submitted)"),
        ("showing_confirmation", r"showing (?:confirm|scheduled|request|cancel|reschedul|approved|declined"
                                 r"|reminder|time)|appointment (?:confirm|scheduled|reminder|request)"
                                 r"|\bconfirmed\b|showingtime"),
        ("feedback_request", r"feedback"),
        ("price_change", r"price (?:change|cut|drop|reduc|improvement|increase|update)|\breduced\b"
                         r"|back on (?:the )?market|status (?:change|update)|\bpending\b|\bjust sold\b"),
        ("saved_search", r"saved search|search alert|your search|matches your search|search results"),
        ("listing_alert", r"\b\d+\s+(?:new\s+)?(?:rentals?|homes?|listings?|properties|apartments|matches)\b"
                          r"|new listings?\b|listings? (?:for you|matching|near|in |alert)|homes? (?:for you"
                          r"|you(?:'ll| might| may) (?:like|love)|matching)|just listed|coming soon"
                          r"|open houses? (?:this|near|in)|recommended (?:homes|for you)|new on the market"),
        ("market_report", r"market (?:report|update|snapshot|stats|trends|watch|insights?)|housing market"
                          r"|home values? in|mortgage rates?|rates? (?:update|today|watch)|quarterly report"),
        ("crm_digest", r"digest|reassigned|re-assigned|was delivered|delivery (?:receipt|confirmation)"
                       r"|(?:weekly|monthly|daily|inquiry|listing|traffic) report|\bbrief(?:ing)?\b|agenda|to-?do|\b\d+\s+(?:new\s+|hot\s+|open\s+)?(?:leads|inquiries"
                       r"|contacts|messages|tasks)\b|daily (?:summary|recap|report)|(?:daily|weekly) (?:activity|lead) (?:summary"
                       r"|report)|activity (?:report|summary)|leads? (?:summary|report|recap)|pipeline report"
                       r"|your (?:day|week) (?:ahead|in review)|tasks? (?:for|due) today"),
        ("password_reset", r"password|\breset\b|verify your|verification code|confirm your (?:e-?mail|account)"
                           r"|sign[- ]?in (?:attempt|alert|code)|log[- ]?in (?:attempt|alert|code)|security"
                           r" (?:alert|code|notice)|two-factor|\b2fa\b|new device|account (?:update|activity)"),
        ("receipt", r"receipt|invoice|payment|order (?:#|confirm|number)|billing|subscription|renewal"
                    r"|statement|\bpaid\b|your order|charge"),
        ("newsletter", r"newsletter|digest|weekly|monthly|edition|issue #|\btips\b|webinar|podcast|\bblog\b"
                       r"|this week in|roundup|round-up"),
        ("marketing", r"(?<!\d)\d{1,3}\s*% off|\bsale\b|limited time|exclusive|\boffer\b|promo|discount|free (?:consultation"
                      r"|guide|trial|ebook|report)|don't miss|last chance|introducing|upgrade|save \$|special"),
        ("colleague_forward", r"^\s*(?:fwd?|fw)\s*:\s*(?:fyi|see below|heads up|for your info)"),
    ))
_LEAD_SUBJECT = re.compile(
    r"\b(?:new|hot|fresh|incoming)\b.{0,25}\b(?:lead|leads|inquiry|enquiry|prospect|contact|buyer|renter"
    r"|tenant|seller|submission|response|entry|message|request|client)\b|\bnew match\b(?! for)|\bmatched you\b|\blead (?:from|for|alert|notification)\b"
    r"|\b(?:inquiry|enquiry|inquired|interested|question) (?:about|from|on|for|regarding|in)\b|\binterested\b"
    r"|\b(?:tour|viewing|rental|tenant|buyer|seller|contact|info(?:rmation)?|property) request\b"
    r"|\bwants? to (?:tour|see|know|rent|buy|sell|schedule|view|visit)\b|\bschedule (?:a )?(?:tour|showing"
    r"|viewing)\b|home valuation|valuation request|home value|what(?:'s| is) my home worth|form (?:submission"
    r"|entry)|web ?form|contact form|\bsays\b|\blead\b|\binquiry\b|\benquiry\b|requested (?:info|a tour"
    r"|information|a showing)|message from|has a question|sent you a message|is looking"
    r"|\bsigned in\b|sign[- ]?in\b.{0,30}open house|open house (?:visitor|guest|sign[- ]?in|registration)"
    r"|new (?:visitor|registration|sign[- ]?up)|self[- ]?tour|tour (?:booked|booking|request|scheduled)"
    r"|booked a (?:self[- ])?tour|relocation (?:lead|referral)|new referral|transferee"
    r"|missed call|new (?:phone )?call|call(?:ed)? (?:from|about)|voicemail|new caller|text (?:lead|message) from",
    re.IGNORECASE)
_LEAD_BODY = re.compile(
    r"\bsays:|\bis interested in\b|\bis looking (?:at|for)\b|\bwould like (?:to|more|information)\b"
    r"|\bi(?:'m| am) (?:interested|looking)\b|\bplease (?:contact|call|email|text|reach)\b"
    r"|\brespond (?:to (?:this|the) lead|within|quickly|promptly)\b|\bcontact (?:them|this (?:lead|person)"
    r"|the (?:lead|prospect))\b|\bnew lead\b|\blead (?:details|information|info)\b|\bhas (?:requested|asked)\b"
    r"|\binquir(?:y|ed|ing)\b|\benquir(?:y|ed)\b|\brequest(?:ed)? (?:a tour|a showing|information|info)\b"
    r"|\bschedule a (?:tour|showing|viewing)\b|\bmove[- ]in\b|\basked about\b", re.IGNORECASE)
_FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|fw|wg|tr)\s*:", re.IGNORECASE)
_REPLY_SUBJECT = re.compile(r"^\s*(?:re|aw|sv|antw|res)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
_QUOTED_REPLY = re.compile(r"^\s*On .{6,120}wrote:\s*$|^\s*>", re.MULTILINE)
_BULK_HEADERS = ("List-Unsubscribe", "List-Id", "Feedback-ID", "X-Campaign", "X-Mailchimp-Campaign",
                 "X-Campaign-Id")
_TEST = re.compile(r"^\s*(?:\[?test\]?\b|testing\b)|\btest (?:lead|submission|email|entry)\b|please ignore",
                   re.IGNORECASE)
_TEST_BODY = re.compile(r"^\s*(?:this is (?:just )?a test\b|test(?:ing)?[,.! ]*(?:please )?ignore)|please ignore this",
                        re.IGNORECASE | re.MULTILINE)
_SAMPLE = re.compile(r"\b(?:sample|example|demo|mock) (?:lead|inquiry|notification|contact)\b", re.IGNORECASE)
_MONEY_LINE = re.compile(r"\$\s?\d{1,3}(?:,\d{3})+")


@dataclass(frozen=True)
class Verdict:
    """``lead``, ``ignored`` (``reason`` is the kind of mail) or ``dead`` (looks like a lead
    and cannot be read: ``reason`` says why)."""

    kind: str
    reason: str


def by_headers(msg: Message) -> str | None:
    """Why an email needs no one's reading whatever it says: an auto-reply, a bounce, a
    calendar invitation; else ``None``."""
    # RFC 3834: "auto-replied" answers a message; "auto-generated" is any automatic mail,
    # which lead notifications are too
    if (msg.header("Auto-Submitted") or "").lower().startswith("auto-replied"):
        return "auto_reply"
    if msg.header("X-Autoreply") or msg.header("X-Autorespond") or msg.header("X-Autoresponder"):
        return "auto_reply"
    if (msg.header("X-Apple-Action") or "").upper() == "VACATION":
        return "auto_reply"
    subject = msg.subject or ""
    if _AUTO_SUBJECT.search(subject):
        return "auto_reply"
    sender = msg.from_address or ""
    ctype = (msg.header("Content-Type") or "").lower()
    if "multipart/report" in ctype or sender.startswith(("mailer-daemon@", "postmaster@")):
        return "bounce"
    bounce = _BOUNCE_SUBJECT.search(subject)
    # "Undeliverable: New lead" is a bounce of a lead; "New lead (undeliverable address)" may be one
    if bounce and (bounce.start() <= 2 or not _LEAD_SUBJECT.search(subject)):
        return "bounce"
    if msg.has_part("text/calendar"):
        return "calendar_invite"
    return None


def bulk(msg: Message) -> bool:
    """Bulk-mail headers: a mailing list, a campaign, ``Precedence: bulk``."""
    if (msg.header("Precedence") or "").lower() in ("bulk", "junk", "list"):
        return True
    return any(msg.header(h) for h in _BULK_HEADERS)


def not_lead_subject(subject: str) -> str:
    """The kind of mail a subject says it is when that is never a lead (``price_change``,
    ``esign``…), else ``""``."""
    for name, pattern in _NOT_LEAD_SUBJECTS:
        if pattern.search(subject):
            return name
    return ""


def known_sender(msg: Message, reading: Reading) -> Verdict:
    """The verdict on an email from a sender a rule knows whose template changed: a lead,
    unless it is plainly not one (an auto-reply or bounce, a subject of a kind that is never a
    lead, bulk mail without a prospect's labelled contact, a digest of many people)."""
    hard = by_headers(msg)
    if hard is not None:
        return Verdict("ignored", hard)
    subject = msg.subject or ""
    kind = not_lead_subject(subject)
    if kind and not (_LEAD_SUBJECT.search(subject) and reading.contact_labels >= 2):
        return Verdict("ignored", kind)
    if bulk(msg) and not reading.contact_labels:
        return Verdict("ignored", "newsletter")
    if reading.people >= 3 or reading.distinct_emails >= 3 or reading.distinct_phones >= 4:
        return Verdict("ignored", "crm_digest")
    return Verdict("lead", "")


def judge(msg: Message, reading: Reading, parties: Parties | None = None) -> Verdict:
    """The verdict on ``msg`` as the reader read it (see the module docstring)."""
    hard = by_headers(msg)
    if hard is not None:
        return Verdict("ignored", hard)
    parties = parties or Parties.of(msg)
    subject = msg.subject or ""
    text = msg.text[:20_000]
    lead = 0
    if _LEAD_SUBJECT.search(subject):
        lead += 2
    if reading.contact_labels:
        lead += 2 if reading.contact_labels >= 2 else 1
    if _LEAD_BODY.search(text):
        lead += 1
    if any(reading.chosen.get(n) is not None and reading.chosen[n].strength >= 60
           for n in ("full_name", "first_name", "message")):
        lead += 1
    if any(f.how == "a sentence" and f.field == "full_name" for f in reading.candidates):
        lead += 1  # a person introduced as a lead is: "<Name> says:", "Meet <Name>", "Lead from <Name>"
    against, kind = 0, ""
    subject_kind = not_lead_subject(subject)
    if subject_kind:
        against, kind = 3, subject_kind
    if _AUTO_BODY.search(text[:3000]):
        against, kind = against + 3, "auto_reply"
    if _REPLY_SUBJECT.match(subject):
        # a conversation: the lead it answers arrived on its own, and the CRM has the person
        against, kind = against + 4, kind if kind == "auto_reply" else "agent_reply"
    if _QUOTED_REPLY.search(text):
        against += 2
        kind = kind or "agent_reply"
    if parties.colleague and not _FORWARD_SUBJECT.match(subject):
        against += 2  # one of the brokerage's own people writing
        kind = kind or "agent_reply"
    if bulk(msg):
        # a mailing list's mail is a lead only with a prospect's contact in its body
        strong = reading.contact_labels or any(
            reading.chosen[n].strength >= 55 for n in ("email", "phone") if n in reading.chosen)
        against += 2 if strong else 5
        kind = kind or "newsletter"
    if _TEST.search(subject) or _TEST_BODY.search(text[:3000]) or _SAMPLE.search(text[:5000]):
        against += 5  # a test submission, or a sample lead in an offer
        kind = kind or "test_or_sample"

    if reading.people >= 3 or reading.distinct_emails >= 3 or reading.distinct_phones >= 4:
        against += 4
        kind = "crm_digest" if kind in ("", "newsletter") else kind
    if len(_MONEY_LINE.findall(text)) >= 3 and not reading.contact_labels:
        against += 2
        kind = kind or "listing_alert"
    if reading.has_contact():
        if lead >= 2 and lead > against:
            return Verdict("lead", "")
        return Verdict("ignored", kind or "no_lead_cues")
    if lead >= 3 and lead > against:
        return Verdict("dead", "it reads like a lead, but no phone or email of the prospect was found")
    return Verdict("ignored", kind or "no_prospect_contact")
