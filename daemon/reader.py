"""The reader: the prospect's fields in any email, read from its structure.

A rule knows one template; the reader knows the layouts lead notifications share. It finds
every candidate value of a lead field in an email, each with the evidence behind it:

- a label, understood by its words (``labels.yaml``): ``Phone:``, ``Best number to reach
  you``, ``firstName =``, ``[E-mail]``, ``**Name:**``, a table cell beside its label cell,
  a label on one line and its value on the next;
- a sentence or the subject: ``<Name> says:``, ``<Name> is interested in …``, ``Meet
  <Name>``, ``New lead from <Name> (<Property>)``;
- a bare line: first name, last name, email and phone each alone on a line;
- the headers: Reply-To, a relay's From display name (``Ann Lee via Zumper``);
- the lead metadata tags, microformat classes and ``mailto:``/``tel:`` links of the HTML.

Then it chooses, per field, the strongest candidate that is the prospect's: never the
sender's or the recipient's address, a value labelled as the agent's, broker's or office's,
or one in the footer (support lines, unsubscribe blocks). Candidates that disagree with the
chosen one are named in the warnings. The reader never invents a value: what it returns
stands in the email.
"""

from __future__ import annotations

import email.utils
import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from daemon import normalize
from daemon.message import Message
from daemon.senders import Parties
from daemon.vocabulary import Meaning, Vocabulary, has_shape, label_words

# How much a kind of evidence weighs when candidates of one field disagree.
META = 95  # the portal's own statement of the lead
MICROFORMAT = 85
LABEL = 80  # an exact label of labels.yaml
WORDS = 75  # a label understood by its words
SENTENCE = 60
BARE = 55
SUBJECT = 50
REPLY_TO = 45
LINK = 40
FROM = 35
IN_LINE = 42  # inside a line whose label means nothing to us ("Preferred contact: Phone (541) …")
IN_MESSAGE = 30
AFTER_CONTACTS = 35  # the paragraph after the contact block
STREET_LINE = 30

#: The first warning of a lead the reader read from a sender no rule knows.
NEW_SENDER = "reader: no rule knows the sender"
CONTACTS = ("email", "phone")
NAMES = ("full_name", "first_name", "last_name")
#: Only the top of an email is read: a lead is there, and a huge body must stay cheap.
MAX_LINES = 1500
_MESSAGE_LINES = 12


@dataclass(frozen=True)
class Found:
    """One candidate value of a lead field and the evidence for it."""

    field: str
    value: str
    strength: int
    how: str  # for warnings and drafts: "label 'Phone Number'", "Reply-To", "a bare line"
    line: int = -1
    label: str | None = None  # the label as written, when the evidence is a label


@dataclass(frozen=True)
class Reading:
    """What the reader found in one email."""

    fields: dict[str, str]
    chosen: dict[str, Found]
    candidates: tuple[Found, ...] = ()
    warnings: tuple[str, ...] = ()
    #: prospect contact labels found (``Email:``, ``Phone:``): a lead cue
    contact_labels: int = 0
    #: distinct people whose contacts are labelled: a digest lists many
    people: int = 0
    #: distinct emails and phones that may be a prospect's, however found
    distinct_emails: int = 0
    distinct_phones: int = 0

    def has_contact(self) -> bool:
        return any(n in self.fields for n in CONTACTS)


# -- cleaning values ------------------------------------------------------------------------

# what mail clients append to a link's text: "ann@example.com<mailto:ann@example.com>"
_DECORATION = re.compile(r"\s*[<\[(]\s*(?:mailto|tel|sms|callto|https?):[^<>\[\]()]{0,300}[>\])]", re.IGNORECASE)
_MARKER = re.compile(r"\((?:optional|required|not required|if any)\)|^\*+|\*+$", re.IGNORECASE)
_PLACEHOLDER = re.compile(
    r"^(?:n/?a|n\.a\.|none(?: given| provided)?|null|nil|undefined|unknown|not (?:provided|given|"
    r"specified|available|applicable|entered|supplied)|no (?:answer|response|value|data|info(?:rmation)?)"
    r"(?: (?:given|provided))?|no (?:first |last )?name(?: given| provided)?|no (?:e-?mail|phone|message|"
    r"comments?)(?: given| provided)?|prefer not to say|blank|empty|-+|–|—|\.|\?|x|tbd|anonymous)$",
    re.IGNORECASE,
)
_QUOTES = "\"'“”‘’«»`"
_REMARK = re.compile(r"(?<=\S)\s+\((?![\d\s.-]+\))[^)]*\)\s*$")
_TRAILING_WORDS = re.compile(
    r"\s+(?:is|are|has|have|was|says?|wants?|would|just|sent|requested|submitted|left|via|from|on|at|"
    r"inquired|asked|needs?|could)\b.*$", re.IGNORECASE)
_BRACKETED = re.compile(r"\s*[\[(<][^\])>]*[\])>]")


def clean(name: str, raw: str) -> str | None:
    """``raw`` as a value of field ``name`` without link decorations, markers, quotes and
    placeholders; ``None`` when nothing is left or it stands for nothing (``N/A``)."""
    text = _DECORATION.sub("", raw or "")
    text = " ".join(text.split())
    text = _MARKER.sub("", text).strip(" \t:;,|•·>")
    if text[:1] in _QUOTES and text.rstrip(",;")[-1:] in _QUOTES:
        text = text.rstrip(",;")  # a data dump's '"ann@example.com",'
    if name in CONTACTS or name in NAMES:
        text = _REMARK.sub("", text)  # '"ann@example.com" (preferred)'
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    if name != "message":
        text = text.strip(_QUOTES + " ")
    if not text or _PLACEHOLDER.match(text) or _PLACEHOLDER.match(text.strip("()[]<> ")):
        return None
    if name in NAMES:
        text = _BRACKETED.sub("", text).strip(" ,")
        text = _TRAILING_WORDS.sub("", text).strip(" ,")
        return text or None
    return text


# -- labels ---------------------------------------------------------------------------------

_PAIRS = (
    re.compile(r"^\*\*(?P<label>[^*]{1,60}?)\s*[:：]?\s*\*\*\s*[:：=–-]?\s*(?P<value>.*)$"),
    re.compile(r"^__(?P<label>[^_]{1,60}?)\s*[:：]?\s*__\s*[:：=–-]?\s*(?P<value>.*)$"),
    re.compile(r"^\*(?P<label>[^*]{1,60}?)\s*[:：]?\s*\*\s*[:：=–-]?\s*(?P<value>.*)$"),
    re.compile(r"^\[(?P<label>[^\]]{1,60})\]\s*[:：=–-]?\s*(?P<value>.*)$"),
    re.compile(r"^[\"'](?P<label>[^\"']{1,60})[\"']\s*[:：=]\s*(?P<value>.*)$"),  # "email": "ann@…",
    re.compile(r"^(?P<label>[^\W\d_][^:：=|\t]{0,60}?)\s*(?:[:：](?!//)|=|\|)\s*(?P<value>.*)$"),
    re.compile(r"^(?P<label>[^\W\d_][^:：=|\t]{0,60}?)\s+[-–—]\s+(?P<value>.*)$"),
)
_BULLET = re.compile(r"^(?:[-•*·▪►+>]|\d{1,2}[.)])\s+(?=\S)")
# a second label inside a value: "Ann Lee | Phone: 303…", "Ann Lee   Email: …"
_ASCII_ROW = re.compile(r"^\s*\|.*\|\s*$")
_INLINE = re.compile(r"\s+\|\s+|\s+[•·]\s+")
_FORWARD_HEADERS = frozenset(("from", "sent", "date", "to", "cc", "subject", "reply to"))


@dataclass(frozen=True)
class Pair:
    label: str
    value: str
    line: int
    meaning: Meaning


def split_pair(text: str) -> tuple[str, str] | None:
    """``(label, value)`` for one line or cell written as a label and a value in any of the
    layouts of the module docstring (the value may be ``""``), else ``None``."""
    text = _BULLET.sub("", text.strip())
    if not text or len(text) > 2000:
        return None
    for pattern in _PAIRS:
        m = pattern.match(text)
        if m:
            return m["label"].strip(), m["value"].strip()
    label = text.rstrip(":： ")
    if len(label) > 60 or not label[:1].isalpha() or len(label.split()) > 8:
        return None
    return label, ""


def pairs(lines: list[str], vocabulary: Vocabulary) -> list[Pair]:
    """Every label the vocabulary understands, with its value: on its own line, after it in
    a table cell, below it (blank lines between allowed), or below it in a column table."""
    found: list[Pair] = []
    n = min(len(lines), MAX_LINES)
    for i in range(n):
        line = lines[i]
        if not line:
            continue
        if _ASCII_ROW.match(line) or line.count(" | ") >= 2:  # "| Name | Ann Lee |", "A | B | C"
            line = "\t".join(c.strip() for c in line.strip().strip("|").split("|"))
        cells = line.split("\t")
        if len(cells) > 1:
            found += _row_pairs(cells, i, lines, vocabulary)
            continue
        found += _line_pairs(line, i, lines, vocabulary)
    return found


def _line_pairs(text: str, i: int, lines: list[str], vocabulary: Vocabulary) -> list[Pair]:
    split = split_pair(text)
    if split is None:
        return []
    label, value = split
    meaning = None if not value and _NOT_A_LABEL.search(label) else vocabulary.understand(label)
    if meaning is None:
        spaced = _spaced_pair(text, vocabulary)
        return [Pair(spaced[0], spaced[1], i, spaced[2])] if spaced else []
    if label.casefold() in ("from", "to", "date", "sent") and _in_header_block(lines, i):
        return []  # a forwarded email's header block, not a contact form's "From"
    out: list[Pair] = []
    if value:
        value, rest = _cut_inline(value, vocabulary)
        out.append(Pair(label, value, i, meaning))
        for extra in rest:
            out += _line_pairs(extra, i, lines, vocabulary)
        return out
    below = _value_below(lines, i, meaning.field, vocabulary)
    if below:
        out.append(Pair(label, below, i, meaning))
    return out


# a label holds no address and no number: "Email ann@example.com" is a label and its value
_ICONS = re.compile(r"^[^\w(+<\[]+")
_NOT_A_LABEL = re.compile(r"@|://|\d{3}")


def _spaced_pair(text: str, vocabulary: Vocabulary) -> tuple[str, str, Meaning] | None:
    """``Email ann@example.com``, ``Phone (303) 555-0134``: a label and its value in two
    inline elements (spans, bold text) that HTML-to-text joins with a space. Taken only for
    a contact whose value has its shape, or a name under an exact name label."""
    words = text.split()
    for n in (1, 2, 3):
        if len(words) <= n:
            break
        label, value = " ".join(words[:n]), " ".join(words[n:])
        meaning = vocabulary.understand(label)
        if meaning is None or not meaning.prospect:
            continue
        if meaning.field == "email" and _BARE_EMAIL.match(value):
            return label, value, meaning
        if meaning.field == "phone" and _BARE_PHONE.match(value):
            return label, value, meaning
        if meaning.field in NAMES and vocabulary.field_of(label) and _NAME_LINE.match(value):
            return label, value, meaning
        return None
    return None


def _row_pairs(cells: list[str], i: int, lines: list[str], vocabulary: Vocabulary) -> list[Pair]:
    out: list[Pair] = []
    # a header row of labels over a row of values
    meanings = [vocabulary.understand(c.rstrip(":： ")) for c in cells]
    understood = sum(m is not None for m in meanings)
    if understood >= 2 and understood * 2 >= len(cells) and i + 1 < len(lines):
        below = lines[i + 1]
        values = below.split("\t") if "\t" in below else [c.strip() for c in below.strip().strip("|").split("|")]
        if len(values) == len(cells) and not any(vocabulary.understand(v.rstrip(":")) for v in values):
            return [Pair(c, v, i + 1, m) for c, v, m in zip(cells, values, meanings, strict=True) if m]
    j = 0
    while j < len(cells):
        cell = cells[j]
        split = split_pair(cell)
        meaning = vocabulary.understand(split[0]) if split else None
        if split and meaning:
            label, value = split
            if not value and j + 1 < len(cells):
                nxt = cells[j + 1]
                nxt_split = split_pair(nxt)
                if not (nxt_split and not nxt_split[1] and vocabulary.understand(nxt_split[0])):
                    value = nxt
                    j += 1
            if value:
                out.append(Pair(label, value, i, meaning))
            elif j == len(cells) - 1:
                below = _value_below(lines, i, meaning.field, vocabulary)
                if below:
                    out.append(Pair(label, below, i, meaning))
        j += 1
    return out


def _cut_inline(value: str, vocabulary: Vocabulary) -> tuple[str, list[str]]:
    parts = _INLINE.split(value)
    if len(parts) == 1:
        return value, []
    for k in range(1, len(parts)):
        split = split_pair(parts[k])
        if split and split[1] and vocabulary.understand(split[0]):
            # each further part is read on its own ("Phone: … | Email: …"), never re-joined
            return " ".join(parts[:k]).strip(), parts[k:]
    return value, []


# a form's next question, which ends the answer above it
_FORM_QUESTION = re.compile(r"^\s*(?:\d{1,2}[.)]\s*)?(?:how|what|when|where|which|who|why|are you|do you|did you"
                            r"|would you|have you|is there|will you|can we)\b[^?]{0,80}\?\s*\*?\s*$", re.IGNORECASE)
_NUMBERED = re.compile(r"^\s*\d{1,2}[.)]\s")
_KEY_PAIR = re.compile(r"^\s*(?P<key>[^\W\d][\w.]*(?:\s+[^\W\d][\w.]*){0,2})\s*(?:[:：](?!//)|=)\s*\S")
_BOILERPLATE = re.compile(
    r"\b(?:respond|reply|click|log ?in|sign ?in|dashboard|tip|unsubscribe|this (?:e-?mail|message|lead|"
    r"notification)|contact your|view (?:it|the|this|in)|manage|powered by|sent (?:by|via|from)|questions\?)")


def _is_label_line(line: str, vocabulary: Vocabulary) -> bool:
    """Whether ``line`` starts another label (so it is no value of the label above it): a
    label the vocabulary knows, a label alone ending in a colon, or a short key with a value
    (``utm_source = google``, ``Lead ID: 4411``)."""
    first = line.split("\t")[0]
    split = split_pair(first)
    if split is not None and vocabulary.understand(split[0]) is not None:
        # a question is a label only as a form asks it ("What's your budget?", "3. Email?"),
        # not as a prospect writes it ("Is the building included in the asking price?")
        return not first.rstrip(" *:").endswith("?") or bool(_FORM_QUESTION.match(first) or _NUMBERED.match(first))
    if line.rstrip().endswith((":", "：")) and split is not None and not split[1]:
        return True
    if line.rstrip().endswith((":", "：")) and split is not None and not split[1]:
        return True
    return bool(_KEY_PAIR.match(first))


def _value_below(lines: list[str], i: int, name: str, vocabulary: Vocabulary) -> str:
    """The value under a label alone on line ``i``: the next non-empty line (a message:
    lines up to a blank line or the next label; an address: and a city line). Past a blank
    line, text that reads as the template's own (``Tip: …``, ``Reply to this email``) is no
    value."""
    j, blanks = i + 1, 0
    while j < len(lines) and not lines[j].strip():
        j, blanks = j + 1, blanks + 1
    if j >= len(lines) or blanks > 2 or _is_label_line(lines[j], vocabulary):
        return ""
    low = lines[j].lower()
    if blanks and (_BOILERPLATE.search(low) or _FOOTER.search(low) or _OTHER.search(low)):
        return ""
    taken = [lines[j].split("\t")[0].strip()]
    if name == "message":
        for line in lines[j + 1 : j + _MESSAGE_LINES]:
            if not line.strip() or _is_label_line(line, vocabulary) or _FORM_QUESTION.match(line):
                break
            taken.append(line.strip())
    elif name == "address" and j + 1 < len(lines) and _CITY_LINE.match(lines[j + 1].strip()):
        taken.append(lines[j + 1].strip())
    return (", " if name == "address" else " ").join(taken)


def _in_header_block(lines: list[str], i: int) -> bool:
    near = [lines[k] for k in (i - 1, i + 1) if 0 <= k < len(lines)]
    for line in near:
        split = split_pair(line)
        if split and " ".join(label_words(split[0])) in _FORWARD_HEADERS:
            return True
    return False


# -- zones: the footer and other people's blocks ----------------------------------------------

_FOOTER = re.compile(
    r"unsubscribe|opt[ -]?out\b|manage (?:your )?(?:email )?(?:preferences|subscriptions|notifications)"
    r"|©|\(c\)\s*\d{4}|copyright|all rights reserved|privacy (?:policy|notice)|terms of (?:use|service)"
    r"|you (?:are )?receiv(?:ed|ing) this|this (?:e-?mail|message|notification) was sent"
    r"|(?:e-?mail|notification) preferences|no longer wish|do not reply to this")
# what only a footer says; a line that is merely a footer's kind of words ("do not reply to
# this email, call the buyer:") marks itself, not all that follows
_FOOTER_START = re.compile(
    r"unsubscribe|opt[ -]?out\b|manage (?:your )?(?:email )?(?:preferences|subscriptions|notifications)"
    r"|©|\(c\)\s*\d{4}|copyright|all rights reserved|privacy (?:policy|notice)|terms of (?:use|service)"
    r"|(?:e-?mail|notification) preferences|no longer wish")
_OTHER = re.compile(
    r"\b(?:listing agent|listed by|presented by|courtesy of|your agent|assigned (?:agent|to)|agent"
    r"|brokerage|broker|leasing office|leasing team|property manager|management|landlord|lender"
    r"|loan officer|referr(?:ed|ing|al)|customer (?:service|support|care)|support|help ?(?:desk|center|line)"
    r"|call us|contact us|reach us|toll[- ]free|fax|office|headquarters|our team|concierge|need help"
    r"|your (?:\w+ )?(?:rep|representative|advisor|coordinator|specialist|account manager|host))\b|questions\?")
# "Leah Brandt | Quarry Hill Realty | (508) 555-0125 | leah@…", "Loftly · 31 Milk St · …": a
# signature or a company's footer line, many parts joined by separators around a contact
_CONTACTISH = re.compile(r"\d{3}\W{0,2}\d{4}|@|\b\d{5}\b")


def _signature(line: str) -> bool:
    return (line.count(" | ") + line.count(" · ") + line.count(" • ")) >= 2 and bool(_CONTACTISH.search(line))
# a company's line: its street address with a ZIP code, and a phone
_COMPANY_PHONE = re.compile(r"\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b")
_COMPANY_ZIP = re.compile(r"\b\d{5}(?:-\d{4})?\b")


def _company_line(line: str) -> bool:
    """A company's line: its street address with a ZIP code, and a phone."""
    return bool(_COMPANY_ZIP.search(line) and _COMPANY_PHONE.search(line) and _STREET_NUMBER.search(line))


_STREET_NUMBER = re.compile(r"\b\d{1,6}\s+[A-Za-z]")
_PROSPECT_HEADER = re.compile(
    r"\b(?:contact|lead|buyer|renter|tenant|applicant|prospect|customer|client|consumer|seller|sender"
    r"|guest|visitor)(?:'s)?\s+(?:info|information|details|contact)\b|^about (?:the|this) (?:lead|buyer|renter)")


_SALUTATION = re.compile(r"^\s*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|greetings)\b[^:]{0,40}[,!.]?\s*$",
                         re.IGNORECASE)
_SIGN_OFF = re.compile(r"^\s*(?:best(?: regards| wishes)?|thanks(?: again| so much)?|thank you|regards|kind regards"
                       r"|warm regards|cheers|sincerely|respectfully|all the best|talk soon)[,.!]?\s*$|^\s*--\s*$",
                       re.IGNORECASE)
_LABELLED_PART = re.compile(r"(?:name|phone|e-?mail|tel|cell|mobile)\s*[:：]", re.IGNORECASE)


def zones(lines: list[str], signer: str | None = None) -> list[str]:
    """Per line: ``"f"`` footer, ``"o"`` someone else's (an agent block, a support line, the
    sender's own sign-off and signature), ``""`` anything else. ``signer`` is the From
    display name: a line that is just that name starts the sender's signature."""
    n = min(len(lines), MAX_LINES)
    out = [""] * n
    start = max(int(n * 0.3), 1)
    other_left = 0
    signer_key = " ".join((signer or "").casefold().split())
    for i in range(n):
        line = lines[i]
        low = line.lower()
        if i >= start and _FOOTER_START.search(low):
            out[i:] = ["f"] * (n - i)
            break
        if _FOOTER.search(low):
            out[i] = "f"
            continue
        if not line.strip():
            other_left = 0
            continue
        if _PROSPECT_HEADER.search(low) or _SALUTATION.match(line):
            other_left = 0
            continue
        if _SIGN_OFF.match(line) or (signer_key and " ".join(low.split()) == signer_key):
            out[i] = "o"  # the sender signing off: what follows is their signature
            other_left = 6
            continue
        prospect_row = len(_LABELLED_PART.findall(line)) >= 2  # "Name: … | Phone: … | Email: …"
        seps = line.count(" | ") + line.count("\t")
        above = lines[i - 1] if i else ""
        if seps >= 2 and above.count(" | ") + above.count("\t") == seps and not _CONTACTISH.search(above):
            prospect_row = True  # a table's row under its row of headings
        words_of = _ANY_EMAIL.sub(" ", low) if "@" in low else low  # "office@annlee…" says nothing
        if _OTHER.search(words_of) or (not prospect_row and (_signature(line) or _company_line(line))):
            out[i] = "o"
            words = line.split()
            heading = line.rstrip().rstrip(":：").strip()
            if len(words) <= 5 and "\t" not in line and ":" not in heading and not any(
                    ch.isdigit() or ch == "@" for ch in line):
                other_left = 5  # a heading ("Listing agent", "Your agent:"): its block is someone else's
            continue
        if other_left:
            out[i] = "o"
            other_left -= 1
    return out


# -- unlabelled ------------------------------------------------------------------------------

_NAME = r"(?P<name>[^\W\d_][\w'’.-]*(?:\s+[^\W\d_][\w'’.-]*){0,3})"
_SENTENCES = (
    re.compile(rf"^{_NAME}\s+says\s*:?\s*(?P<rest>.*)$"),
    re.compile(rf"^{_NAME}\s+(?:is|are)\s+(?:interested|looking|asking|inquiring|requesting|searching|"
               rf"hoping|curious)\b(?P<rest>.*)$"),
    re.compile(rf"^{_NAME}\s*\([^()]{{0,120}}\)\s+(?:asked|inquired|is interested|wants|requested|would like|sent"
               rf"|has|just)\b(?P<rest>.*)$"),  # "Ann Lee (ann@…, 303-…) asked about 12 Elm St"
    re.compile(rf"^{_NAME}\s+(?:wants|would like|has (?:a question|questions|requested|sent|asked)|sent you|"
               rf"requested|submitted|left you|inquired|contacted you|asked|just (?:inquired|requested|"
               rf"contacted|sent|asked|submitted))\b(?P<rest>.*)$"),
    re.compile(rf"^(?:Meet|Information for|Info for|Say hello to|Say hi to|Details for|Lead details for)\s+"
               rf"{_NAME}\s*(?:[.!:,]|$)\s*(?P<rest>.*)$"),
    re.compile(rf"\b(?:lead|inquiry|enquiry|message|request|contact|question|submission|response|note)\s+"
               rf"from\s+{_NAME}\s*(?:[(–|:,!.]|\s-\s|$)(?P<rest>.*)$", re.IGNORECASE),
    # "New Lead from Zillow - Søren Østergaard", "Lead Alert | Ann Lee | $499,000"
    re.compile(rf"\b(?:lead|inquiry|enquiry|contact|alert)\b[^-–|\n]{{0,40}}\s[-–|]\s+{_NAME}\s*(?:[-–|(]|$)"
               rf"(?P<rest>.*)$", re.IGNORECASE),
)
_STOP = frozenset("""
you your we our us a an the someone somebody anyone new lead leads buyer buyers renter renters seller
client customer prospect user visitor guest agent team hi hello dear there this that it he she they i
contact contacts website web site facebook instagram google portal form app mobile online internet page
campaign ad ads zapier marketplace referral partner network listing property home house apartment unit
open our your one message inquiry request question someone tenant applicant consumer who details info
information email phone name sender reply notification alert update today now please thanks thank
leasing realty properties apartments residences rentals rental lofts llc inc ltd group management homes
zillow trulia realtor redfin hotpads zumper craigslist apartmentlist homesnap movoto opendoor offerpad
compass coldwell keller remax sotheby century tiktok youtube linkedin twitter nextdoor yelp bing
estates flats partners associates company corp services office realtors brokerage support sales admin
noreply no-reply
""".split())  # noqa: SIM905 (a word list reads best as words)
_BARE_EMAIL = re.compile(r"^<?(?:mailto:)?[\w.+'’-]+@[\w-]+(?:\.[\w-]+)+>?$", re.IGNORECASE)
_BARE_PHONE = re.compile(r"^(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?:\s*(?:x|ext\.?)\s*\d{1,5})?$")
_ANY_EMAIL = re.compile(r"(?<![\w.+'’-])[\w.+'’-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,8}\.[a-z]{2,24}\b",
                        re.IGNORECASE)
_ANY_PHONE = re.compile(r"(?<![\d-])(?:\+?1[\s.-]?)?\(?[2-9]\d{2}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?![\d-])")
_NAME_LINE = re.compile(r"^[^\W\d_][\w'’.-]*(?:\s+[^\W\d_][\w'’.-]*){0,3}$")
_STREET = re.compile(
    r"\b\d{1,6}[A-Z]?\s+(?:[NSEW]\.?\s+)?(?:[\w'’.-]+\s+){0,4}?(?:St|Street|Ave|Avenue|Rd|Road|Blvd|Boulevard"
    r"|Dr|Drive|Ln|Lane|Ct|Court|Way|Pl|Place|Ter|Terrace|Cir|Circle|Pkwy|Parkway|Hwy|Highway|Trl|Trail"
    r"|Loop|Row|Sq|Square|Pike|Run|Path|Walk|Crossing|Xing|Point|Pt|Alley|Cove|Bend|Broadway)\b\.?"
    r"(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b\.?)?"
    r"(?:,?\s*(?:#\s*|Apt\.?\s*|Apartment\s+|Unit\s+|Suite\s+|Ste\.?\s*|Bldg\.?\s*)[\w-]+)?", re.IGNORECASE)
# streets named before their number's type ("1209 Calle del Sol") and grid addresses ("845 W 600 N")
_PREFIX_STREET = re.compile(
    r"\b\d{1,6}\s+(?:(?:Calle|Camino|Avenida|Paseo|Via|Vía|Rua|Rue|Avenue of the)\s+[\w'’.-]+"
    r"(?:\s+(?:del|de|la|las|los|el)\b)?(?:\s+(?!Unit\b|Apt\b)[A-Z][\w'’.-]*){0,2}|[NSEW]\.?\s+\d{1,5}\s+[NSEW]\b\.?)"
    r"(?:,?\s*(?:#\s*|Apt\.?\s*|Unit\s+|Suite\s+|Ste\.?\s*)[\w-]+)?")
# an opening sentence about a property: "… interested in 12 Elm St", "New inquiry for 12 Elm St"
_ABOUT_STREET = re.compile(r"\b(?:about|for|at|regarding|re|in|on|of|to)\s+(?:the\s+)?(?:home\s+at\s+)?\d",
                           re.IGNORECASE)
_CITY_LINE = re.compile(r"^[A-Za-z][A-Za-z .'-]+,?\s+[A-Z]{2}\.?\s+\d{5}(?:-\d{4})?$")
_TOLL_FREE = re.compile(r"^\+18(?:00|33|44|55|66|77|88)")


_DOMAIN_WORD = re.compile(r"\w\.(?:com|net|org|co|io|us|biz|info|example|test)\b")


_SURNAME_FIRST = re.compile(r"^[^\W\d_][\w'’.-]*(?:\s+[^\W\d_][\w'’.-]*)?,\s+[^\W\d_][\w'’.-]*(?:\s+[^\W\d_][\w'’.-]*)?$")


def person_name(text: str, brand: frozenset[str]) -> str | None:
    """``text`` when it reads as a person's name (1-4 words of letters, or ``Last, First``;
    not a brand, a role or a stock word), else ``None``."""
    value = clean("full_name", text)
    if value is None or not (_NAME_LINE.match(value) or _SURNAME_FIRST.match(value)):
        return None
    words = [w.strip(".'’,").casefold() for w in value.split()]
    if not words or any(w in _STOP or w in brand or _DOMAIN_WORD.search(w) for w in words):
        return None
    if len(words) == 1 and len(words[0]) < 2:
        return None
    return value


#: the first patterns of _SENTENCES are what the person did ("says", "is interested in");
#: the others introduce them ("Meet …", "Lead from …"): only after the first is the next
#: paragraph the person's own words
_PERSON_VERBS = 4


_LABELLED_NAME = re.compile(r"^[^\W\d_][\w'’.-]*,?(?:\s+[^\W\d_][\w'’.-]*){0,5}$")
#: words no person's name has, even under a name label ("Contact: Cheesman Flats Leasing")
_BUSINESS = frozenset("""leasing realty properties apartments residences rentals rental lofts llc inc ltd
group management team office brokerage company corp services associates partners website form""".split())  # noqa: SIM905


def labelled_name(text: str, brand: frozenset[str]) -> str | None:
    """``text`` under a label that says it is a name: any 1-6 words of letters (``Tom
    House``, ``Maria de los Angeles Garcia``), but no business's words and not the brand."""
    value = clean("full_name", text)
    if value is None or not _LABELLED_NAME.match(value):
        return None
    words = [w.strip(".'’,").casefold() for w in value.split()]
    if any(w in _BUSINESS or w in brand or _DOMAIN_WORD.search(w) for w in words):
        return None
    return value


def _sentence_names(text: str, brand: frozenset[str]) -> Iterator[tuple[str, str, bool]]:
    """``(name, the rest of the line, whether the person is the sentence's subject)``."""
    for k, pattern in enumerate(_SENTENCES):
        m = pattern.search(text)
        if m:
            name = person_name(m["name"], brand)
            if name is not None:
                yield name, m["rest"].strip(), k < _PERSON_VERBS


def _street(text: str) -> str | None:
    m = _STREET.search(text) or _PREFIX_STREET.search(text)
    return m.group(0).strip(" ,.") if m else None


def _street_at_start(text: str) -> str | None:
    m = _STREET.match(text) or _PREFIX_STREET.match(text)
    return m.group(0).strip(" ,.") if m else None


# -- reading one email ----------------------------------------------------------------------


class _Collector:
    def __init__(self, parties: Parties, region: str):
        self.parties = parties
        self.region = region
        self.found: list[Found] = []
        self.others: set[str] = set()
        self.offset = 0  # added to the line numbers of what is found (HTML_LINES for the HTML)

    def add(self, name: str, raw: str, strength: int, how: str, *, line: int = -1,
            label: str | None = None, zone: str = "") -> None:
        value = clean(name, raw)
        if value is None:
            return
        if name in NAMES and (_BARE_EMAIL.match(value) or _BARE_PHONE.match(value)):
            # a value in the name slot that is really an email or a phone goes to its field
            self.add("email" if "@" in value else "phone", value, strength, how, line=line, label=label,
                     zone=zone)
            return
        if name in NAMES and (_ANY_EMAIL.search(value) or _ANY_PHONE.search(value)):
            # "Ann Lee, 303-555-0134, ann@example.com": the name, then its contacts
            for m in _ANY_EMAIL.finditer(value):
                self.add("email", m.group(0), strength, how, line=line, label=label, zone=zone)
            for m in _ANY_PHONE.finditer(value):
                self.add("phone", m.group(0), strength, how, line=line, label=label, zone=zone)
            first = min(m.start() for m in (*_ANY_EMAIL.finditer(value), *_ANY_PHONE.finditer(value)))
            value = value[:first].strip(" ,;|-–(<")
            if not value:
                return
        if name in CONTACTS:
            key = _key(name, value, self.region)
            if key is None:
                return
            if zone or self.parties.is_theirs(name, key):
                self.others.add(key)
                return
            if name == "phone" and _TOLL_FREE.match(key) and strength < WORDS:
                return  # a prospect with a toll-free number writes it under a label
        elif zone == "f" or (zone and name in NAMES):
            return
        if name == "address":
            value = _ADDRESS_END.split(value, 1)[0].strip(" ,")
            if not _address_shaped(value, label):
                return
        if (name in ("price", "budget") and not re.search(r"\d", value)) or (
                name == "price" and not has_shape("price", value)):
            return
        if name == "message" and _URL_ONLY.match(value):
            return
        if name in NAMES and (labelled_name(value, self.parties.brand) if label is not None
                              else person_name(value, self.parties.brand)) is None:
            return
        self.found.append(Found(name, value, strength, how, line + self.offset if line >= 0 else line, label))

    def other(self, name: str, raw: str) -> None:
        value = clean(name, raw)
        if value is None:
            return
        if name in CONTACTS:
            key = _key(name, value, self.region)
            if key is not None:
                self.others.add(key)
        # another person's name inside a contact block: its email/phone follow it


# what follows an address in a listing card: its price, its beds and baths
_ADDRESS_END = re.compile(r"\s+[$|·•]\s*|\s+-\s+\$")
_URL_ONLY = re.compile(r"^(?:<?https?://\S+>?\s*)+$", re.IGNORECASE)
_ZIP = re.compile(r"\b\d{5}(?:-\d{4})?\b")


def _address_shaped(value: str, label: str | None) -> bool:
    """An address is a street line (``1420 Larch St``), or holds a ZIP code; under a label
    whose words only hint at a property (``Listing``, ``Property``) it must be a street."""
    if len(value) > 200 or not has_shape("address", value):
        return False
    if _STREET.search(value) or _PREFIX_STREET.search(value):
        return True
    words = label_words(label) if label else ()
    return "address" in words and bool(_ZIP.search(value) or re.match(r"^\d+\s+\w", value))


@functools.lru_cache(maxsize=4096)
def _key(name: str, value: str, region: str) -> str | None:
    """``value`` normalized (E.164, a lower-case address): what tells two contacts apart."""
    if name == "email":
        return normalize.normalize_email(value)
    return normalize.normalize_phone(value, region) if len(value) <= 40 else None


#: where the HTML part's line numbers start in ``Found.line`` (the plain part's start at 0)
HTML_LINES = 100_000
#: a longer line is cut: no lead value is this long, and patterns must stay cheap
MAX_LINE = 2000
_QUOTE_START = re.compile(r"^\s*(?:On .{6,200}wrote:|-{3,}\s*Original Message\s*-{3,}|_{10,})\s*$", re.IGNORECASE)


def own_lines(lines: list[str]) -> list[str]:
    """The lines the email's own writer wrote: at most ``MAX_LINES``, each cut to
    ``MAX_LINE``; quoted lines (``> …``) and what follows ``On … wrote:`` left out (a reply
    quoting a lead is not that lead again)."""
    out: list[str] = []
    for line in lines[:MAX_LINES]:
        if _QUOTE_START.match(line):
            break
        if line.lstrip().startswith(">"):
            out.append("")
            continue
        out.append(line[:MAX_LINE])
    return out


def read(msg: Message, vocabulary: Vocabulary, region: str = "US", *,
         parties: Parties | None = None) -> Reading:
    """The prospect's fields in ``msg``, chosen from every candidate by strength."""
    parties = parties or Parties.of(msg)
    col = _Collector(parties, region)
    contact_labels = _read_lines(own_lines(msg.lines), vocabulary, col)
    if msg.plain.strip() and msg.html and not any(f.field in CONTACTS for f in col.found):
        col.offset = HTML_LINES  # the HTML's lines are another text: never "near" the plain's
        contact_labels += _read_lines(own_lines(msg.html_text.split("\n")), vocabulary, col)
        col.offset = 0
    _read_headers(msg, col)
    _read_html(msg, col)
    return _choose(col, region, contact_labels)


def _read_lines(lines: list[str], vocabulary: Vocabulary, col: _Collector) -> int:
    zone = zones(lines, col.parties.signer)
    labelled = 0
    found_pairs = pairs(lines, vocabulary)
    for p in found_pairs:
        z = zone[p.line] if p.line < len(zone) else ""
        name = p.meaning.field
        if not p.meaning.prospect:
            col.other(name, p.value)
            continue
        if name in ("move_in", "mls_id"):
            continue
        exact = vocabulary.field_of(p.label) is not None
        strength = LABEL if exact else WORDS
        if name in NAMES and "<" in p.value and "@" in p.value:
            display, addr = email.utils.parseaddr(p.value)
            col.add("email", addr, strength, f"label '{p.label}'", line=p.line, label=p.label, zone=z)
            col.add(name, display, strength, f"label '{p.label}'", line=p.line, label=p.label, zone=z)
            continue
        if name in CONTACTS and not z:
            labelled += 1
        if name == "address" and _CITY_LINE.match(_next(lines, p.line)) and not _CITY_LINE.search(p.value):
            p = Pair(p.label, f"{p.value}, {_next(lines, p.line)}", p.line, p.meaning)
        if name == "message" and _wrapped(lines[p.line]) and p.value in lines[p.line]:
            # a plain-text message hard-wrapped by the sender: its next lines are its own
            p = Pair(p.label, " ".join([p.value, *_continuation(lines, p.line, vocabulary)]), p.line, p.meaning)
        col.add(name, p.value, strength, f"label '{p.label}'", line=p.line, label=p.label, zone=z)
        if name == "message":
            for m in _ANY_EMAIL.finditer(p.value):
                col.add("email", m.group(0), IN_MESSAGE, "the message", line=p.line, zone=z)
            for m in _ANY_PHONE.finditer(p.value):
                col.add("phone", m.group(0), IN_MESSAGE, "the message", line=p.line, zone=z)
    pair_lines = {p.line for p in found_pairs}
    contact_lines = [p.line for p in found_pairs if p.meaning.field in CONTACTS and p.meaning.prospect]
    if contact_lines:
        after = _paragraph_after(lines, max(contact_lines), vocabulary, skip_labels=True)
        if _prose(after):
            col.add("message", after, AFTER_CONTACTS, "the paragraph after the contact lines",
                    line=max(contact_lines) + 1, zone=zone[min(max(contact_lines) + 1, len(zone) - 1)])
    _read_unlabelled(lines, zone, vocabulary, col, pair_lines)
    return labelled


#: a line this long ends where the sender's mail program wrapped it, not where the text ends
_WRAPPED = 60


def _wrapped(line: str) -> bool:
    """A line that ends where the sender's mail program wrapped it: long, and not at the end
    of a sentence."""
    return len(line) >= _WRAPPED and not line.rstrip().endswith((".", "?", "!", '"', "”", ")"))


_SHORT_PAIR = re.compile(r"^\s*(?:\*\*|__|\*|\[)?[^\W\d][\w .#/&'-]{0,30}(?:\*\*|__|\*|\])?\s*[:：=]\s")


def _continuation(lines: list[str], i: int, vocabulary: Vocabulary) -> list[str]:
    """The lines that continue a wrapped value on line ``i``: up to a blank line, a label,
    a line with a contact or no letters, or the template's own words."""
    out: list[str] = []
    for line in lines[i + 1 : i + _MESSAGE_LINES]:
        text = line.strip()
        low = text.lower()
        if (not text or "\t" in line or not any(c.isalpha() for c in text) or _SHORT_PAIR.match(text)
                or _is_label_line(text, vocabulary) or _ANY_EMAIL.search(text) or _ANY_PHONE.search(text)
                or _BOILERPLATE.search(low) or _FOOTER.search(low)):
            break
        out.append(text)
        if not _wrapped(line):
            break  # the last line of a wrapped paragraph
    return out


def _next(lines: list[str], i: int) -> str:
    return next((x.strip() for x in lines[i + 1 : i + 3] if x.strip()), "")


def _read_unlabelled(lines: list[str], zone: list[str], vocabulary: Vocabulary, col: _Collector,
                     pair_lines: set[int]) -> None:
    brand = col.parties.brand
    n = min(len(lines), MAX_LINES)
    intro = 0
    for i in range(n):
        line = lines[i].strip()
        if not line or zone[i]:
            continue
        intro += 1
        street = _street_at_start(line)
        if street and len(line) <= 100:
            col.add("address", street, STREET_LINE, "a street line", line=i)
        elif intro <= 6 and i not in pair_lines and _ABOUT_STREET.search(line):
            street = _street(line)
            if street:
                col.add("address", street, SUBJECT - 5, "an opening sentence", line=i)
        if i not in pair_lines and not _BARE_EMAIL.match(line) and not _BARE_PHONE.match(line):
            for m in _ANY_EMAIL.finditer(line):
                col.add("email", m.group(0), IN_LINE, "a line of text", line=i)
            for m in _ANY_PHONE.finditer(line):
                col.add("phone", m.group(0), IN_LINE, "a line of text", line=i)
        if i < 80:
            for name, rest, acted in _sentence_names(line, brand):
                col.add("full_name", name, SENTENCE, "a sentence", line=i)
                says = _SAYS.search(line.split(name, 1)[-1])
                if says and (says.group(1) or says.group(2) or "").strip():
                    col.add("message", says.group(1) or says.group(2), SENTENCE, f"'{name} says'", line=i)
                elif says or acted:
                    # the paragraph after "<Name> says:" (or "is interested in …") is theirs
                    after = _paragraph_after(lines, i, vocabulary)
                    if says or _prose(after):
                        col.add("message", after, SENTENCE, f"the words after '{name} …'", line=i)
                street = _street(rest)
                if street:
                    col.add("address", street, SENTENCE, "a sentence", line=i)
        for cell in line.split("\t"):
            cell = _DECORATION.sub("", cell).strip(" \t:;,|•·>*")
            cell = _ICONS.sub("", cell)  # "📱 🇺🇸 +1 303-555-0134"
            if _BARE_EMAIL.match(cell):
                col.add("email", cell, BARE, "a bare line", line=i)
                _names_above(lines, i, zone, vocabulary, col)
            elif _BARE_PHONE.match(cell):
                col.add("phone", cell, BARE, "a bare line", line=i)
                _names_above(lines, i, zone, vocabulary, col)


_SAYS = re.compile(r"\bsays\s*:?\s*(.*)$|\bwrote\s*:\s*(.*)$")


def _prose(text: str) -> bool:
    """Words a person wrote: a sentence, not a link, a template's advice or a contact line."""
    low = text.lower()
    if len(text.split()) < 3 or _URL_ONLY.match(text) or _BOILERPLATE.search(low) or _FOOTER.search(low):
        return False
    if _ANY_EMAIL.search(text) or (_ANY_PHONE.search(text) and len(text.split()) < 6):
        return False
    return (text[:1] in _QUOTES and text.rstrip()[-1:] in _QUOTES) or text.rstrip()[-1:] in ".?!"


def _paragraph_after(lines: list[str], i: int, vocabulary: Vocabulary, *, skip_labels: bool = False) -> str:
    """The paragraph after line ``i`` (after the label lines that follow it, with
    ``skip_labels``), up to a blank line, a label, or a bare contact line."""
    taken: list[str] = []
    for line in lines[i + 1 : i + 1 + _MESSAGE_LINES]:
        text = line.strip()
        if not text:
            if taken:
                break
            skip_labels = False
            continue
        if _is_label_line(text, vocabulary) or _BARE_EMAIL.match(text) or _BARE_PHONE.match(text):
            if skip_labels and not taken:
                continue
            break
        skip_labels = False
        taken.append(text)
    return " ".join(taken)


def _names_above(lines: list[str], i: int, zone: list[str], vocabulary: Vocabulary, col: _Collector) -> None:
    """Bare name lines right above a bare contact line: ``Ann`` / ``Lee`` or ``Ann Lee``."""
    above: list[str] = []
    k = i - 1
    while k >= 0 and len(above) < 3 and i - k <= 4:
        text = lines[k].strip()
        k -= 1
        if not text:
            if above:
                break
            continue
        if "\t" in text or zone[k + 1] or _BARE_EMAIL.match(text) or _BARE_PHONE.match(text):
            if above:
                break
            continue
        if not _NAME_LINE.match(text) or _is_label_line(text, vocabulary):
            break
        if person_name(text, col.parties.brand) is None:
            break
        above.insert(0, text)
    if len(above) >= 2 and len(above[-2].split()) == 1:
        col.add("first_name", above[-2], BARE, "a bare line", line=i)
        col.add("last_name", above[-1], BARE, "a bare line", line=i)
    elif above and len(above[-1].split()) >= 2:
        col.add("full_name", above[-1], BARE, "a bare line", line=i)


def _read_headers(msg: Message, col: _Collector) -> None:
    parties = col.parties
    subject = msg.subject or ""
    for name, rest, _acted in _sentence_names(subject, parties.brand):
        col.add("full_name", name, SUBJECT, "the subject")
        street = _street(rest)
        if street:
            col.add("address", street, SUBJECT, "the subject")
    street = _street(subject)
    if street:
        col.add("address", street, SUBJECT - 5, "the subject")
    reply, reply_name = msg.reply_to, msg.reply_to_name
    if reply and not parties.is_relay(reply) and not parties.is_robot(reply) and _resembles(reply, reply_name, col):
        col.add("email", reply, REPLY_TO, "Reply-To")
    if reply_name and reply and ((not parties.is_sender(reply) and not parties.is_robot(reply))
                                 or parties.is_relay(reply)):
        col.add("full_name", parties.strip_brand(reply_name), REPLY_TO, "the Reply-To name")
    from_name = msg.from_name or ""
    if parties.from_is_prospect or parties.is_relay(msg.from_address or "") or " via " in from_name:
        inner = _ANY_EMAIL.search(from_name)
        if inner:
            col.add("email", inner.group(0), FROM + 5, "the From name")
            from_name = from_name.replace(inner.group(0), " ")
        col.add("full_name", parties.strip_brand(from_name), FROM, "the From name")
        if parties.from_is_prospect and msg.from_address:
            col.add("email", msg.from_address, FROM, "From")


def _resembles(address: str, display: str | None, col: _Collector) -> bool:
    """Whether a Reply-To address may be the prospect's: when a name of the lead was found,
    the address or its display name must share a part of it (``ann.lee@…`` for Ann Lee);
    otherwise it is someone else answering for the lead (the agent it was assigned to)."""
    names = [f.value for f in col.found if f.field in NAMES and f.strength >= SUBJECT]
    if not names:
        return True
    local = re.sub(r"[^a-z]", "", address.partition("@")[0].casefold())
    shown = (display or "").casefold()
    for name in names:
        for part in re.split(r"[\s,'’.-]+", name.casefold()):
            part = re.sub(r"[^a-z]", "", unicodedata.normalize("NFKD", part))
            if len(part) >= 3 and (part in local or part in shown):
                return True
            if len(part) >= 1 and local.startswith(part[:1]) and len(local) <= 3:
                return True
    return False


_HREF = re.compile(r"""href\s*=\s*["']?\s*(mailto|tel):([^"'>\s?]+)""", re.IGNORECASE)


def _read_html(msg: Message, col: _Collector) -> None:
    html = msg.html
    if not html:
        return
    for tag, value in msg.lead_meta.items():
        name = {"name": "full_name", "email": "email", "phone": "phone", "message": "message",
                "property_address": "address"}.get(tag)
        if name:
            col.add(name, value, META, f"the lead_{tag} tag")
    if any(k in html for k in ("p-name", "p-tel", "p-email", "vcard", "h-card")):
        for selector, name in ((".p-name, .fn", "full_name"), (".p-email, .email", "email"),
                               (".p-tel, .tel", "phone")):
            for value in msg.select(selector, limit=2):
                col.add(name, value, MICROFORMAT, f"class {selector.split(',')[0]}")
    if not any(f.field in CONTACTS for f in col.found):
        for m in _HREF.finditer(html[:200_000]):
            name = "email" if m[1].lower() == "mailto" else "phone"
            col.add(name, m[2], LINK, f"a {m[1].lower()}: link")


# -- choosing --------------------------------------------------------------------------------


#: how far (in lines) an unlabelled contact may stand from the lead's name
NEAR = 12


def _choose(col: _Collector, region: str, contact_labels: int) -> Reading:
    by_field: dict[str, list[Found]] = {}
    name_lines = [f.line for f in col.found if f.field in NAMES and f.line >= 0]
    for f in col.found:
        if f.field in CONTACTS and _key(f.field, f.value, region) in col.others:
            continue  # someone else's contact, also written where the prospect's would be
        same_part = [n for n in name_lines if n // HTML_LINES == f.line // HTML_LINES]
        if f.field in CONTACTS and f.strength <= BARE and f.line >= 0 and same_part and min(
                abs(f.line - n) for n in same_part) > NEAR:
            continue  # an unlabelled number far from the lead's name is someone else's
        by_field.setdefault(f.field, []).append(f)
    chosen: dict[str, Found] = {}
    warnings: list[str] = []
    for name, found in by_field.items():
        best = max(found, key=lambda f: (f.strength, -f.line if f.line >= 0 else 0))
        if name in CONTACTS and best.strength <= BARE:
            rivals = {_key(name, f.value, region) for f in found if f.strength == best.strength}
            if len(rivals) > 1:
                warnings.append(f"reader: {len(rivals)} unlabelled {name}s ({', '.join(sorted(r or '' for r in rivals))}) "
                                f"and none labelled; {name} left empty")
                continue
        if name == "full_name":
            best = _fuller(best, found)
        chosen[name] = best
        if name in CONTACTS or name == "full_name":
            best_key = _key(name, best.value, region) if name in CONTACTS else best.value.casefold()
            passed = {f.value for f in found
                      if (_key(name, f.value, region) if name in CONTACTS else f.value.casefold()) != best_key}
            if passed:
                warnings.append(f"reader: {name.replace('_', ' ')} {best.value!r} from {best.how}; passed over "
                                + ", ".join(repr(v) for v in sorted(passed)[:3]))
    _settle_names(chosen)
    fields = {name: f.value for name, f in chosen.items()}
    people = len({_key("email", f.value, region) for f in col.found
                  if f.field == "email" and f.strength >= WORDS})
    distinct = {name: len({_key(name, f.value, region) for f in by_field.get(name, ())}) for name in CONTACTS}
    return Reading(fields, chosen, tuple(col.found), tuple(warnings), contact_labels, people,
                   distinct["email"], distinct["phone"])


def _fuller(best: Found, found: list[Found]) -> Found:
    """A fuller spelling of the chosen name found elsewhere (``Ines`` in ``Note from Ines``,
    ``Ines Carvalho`` in the subject) is the same person's name, more completely."""
    words = best.value.casefold().split()
    fuller = [f for f in found if len(f.value.split()) > len(words)
              and f.value.casefold().split()[: len(words)] == words and f.strength >= best.strength - 30]
    return max(fuller, key=lambda f: (len(f.value.split()), f.strength)) if fuller else best


def _settle_names(chosen: dict[str, Found]) -> None:
    """One name: a full name, or a first and last name, whichever has the stronger evidence."""
    full = chosen.get("full_name")
    parts = [chosen[n] for n in ("first_name", "last_name") if n in chosen]
    if full is None or not parts:
        return
    if max(p.strength for p in parts) >= full.strength:
        del chosen["full_name"]
    else:
        for n in ("first_name", "last_name"):
            chosen.pop(n, None)


def is_new_sender(warning: str) -> bool:
    """Whether a lead warning says the reader read it from a sender no rule knows."""
    return warning.startswith(NEW_SENDER)


def describe(found: Iterable[Found]) -> str:
    """What was found, for a dead letter's detail: ``email 'a@b.c' (Reply-To); …``."""
    return "; ".join(f"{f.field} {f.value!r} ({f.how})" for f in found)


