"""Where values sit in an email's text: label and value pairs in every layout
notifications use, and the zones that are someone else's (the footer, an agent's block,
the sender's signature).

``pairs`` finds ``Label: value``, ``Label:value``, ``LABEL - value``, ``Label = value``,
``Label | value``, ``[Label] value``, ``*Label* value``, ``**Label:** value``, table cells
(a label cell beside its value, a row of headings over a row of values, ``| a | b |`` text
tables), a label over its value on the next line, a form's question over its answer, and a
label and value in two inline elements (``Email ann@example.com``). ``zones`` marks lines
whose values are never the prospect's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.reading.values import (
    ANY_EMAIL,
    ANY_PHONE,
    BARE_EMAIL,
    BARE_PHONE,
    CITY_LINE,
    NAME_LINE,
    NAMES,
    ZIP,
)
from daemon.reading.vocabulary import Meaning, Vocabulary, label_words

#: Only the top of an email is read: a lead is there, and a huge body must stay cheap.
MAX_LINES = 1500
#: the most lines one value (a message) spans
MESSAGE_LINES = 12



_PAIRS = (
    re.compile(r"^\*\*(?P<label>[^*]{1,60}?)\s*[:：]?\s*\*\*\s*[:：=–-]?\s*(?P<value>.*)$"),
    re.compile(r"^__(?P<label>[^_]{1,60}?)\s*[:：]?\s*__\s*[:：=–-]?\s*(?P<value>.*)$"),
    re.compile(r"^\*(?P<label>[^*]{1,60}?)\s*[:：]?\s*\*\s*[:：=–-]?\s*(?P<value>.*)$"),
    re.compile(r"^\[(?P<label>[^\]]{1,60})\]\s*[:：=–-]?\s*(?P<value>.*)$"),
    re.compile(r"^[\"'](?P<label>[^\"']{1,60})[\"']\s*[:：=]\s*(?P<value>.*)$"),  # "email": "ann@…",
    re.compile(r"^(?P<label>[^\W\d_][^:：=|\t]{0,60}?)\s*(?:[:：](?!//)|=|\|)\s*(?P<value>.*)$"),
    re.compile(r"^(?P<label>[^\W\d_][^:：=|\t]{0,60}?)\s+[-–—]\s+(?P<value>.*)$"),
    re.compile(r"^(?P<label>[^\W\d_][^.:：=|\t]{0,40}?)\s*(?:\.{3,}|…+)\s*(?P<value>.*)$"),  # "Name ....... Ann"
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
    meaning = None if not value and NOT_A_LABEL.search(label) else vocabulary.understand(label)
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
    below = value_below(lines, i, meaning.field, vocabulary)
    if below:
        out.append(Pair(label, below, i, meaning))
    return out


# a label holds no address and no number: "Email ann@example.com" is a label and its value
ICONS = re.compile(r"^[^\w(+<\[]+")
NOT_A_LABEL = re.compile(r"@|://|\d{3}")


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
        if meaning.field == "email" and BARE_EMAIL.match(value):
            return label, value, meaning
        if meaning.field == "phone" and BARE_PHONE.match(value):
            return label, value, meaning
        if meaning.field in NAMES and vocabulary.field_of(label) and NAME_LINE.match(value):
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
        values += [""] * (len(cells) - len(values))  # empty last cells leave no separator
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
                below = value_below(lines, i, meaning.field, vocabulary)
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
FORM_QUESTION = re.compile(r"^\s*(?:\d{1,2}[.)]\s*)?(?:how|what|when|where|which|who|why|are you|do you|did you"
                            r"|would you|have you|is there|will you|can we)\b[^?]{0,80}\?\s*\*?\s*$", re.IGNORECASE)
_NUMBERED = re.compile(r"^\s*\d{1,2}[.)]\s")
KEY_PAIR = re.compile(r"^\s*(?P<key>[^\W\d][\w.]*(?:\s+[^\W\d][\w.]*){0,2})\s*(?:[:：](?!//)|=)\s*\S")
BOILERPLATE = re.compile(
    r"\b(?:respond|reply|click|log ?in|sign ?in|dashboard|tip|unsubscribe|this (?:e-?mail|message|lead|"
    r"notification)|contact your|view (?:it|the|this|in)|manage|powered by|sent (?:by|via|from)|questions\?)")


def is_label_line(line: str, vocabulary: Vocabulary) -> bool:
    """Whether ``line`` starts another label (so it is no value of the label above it): a
    label the vocabulary knows, a label alone ending in a colon, or a short key with a value
    (``utm_source = google``, ``Lead ID: 4411``)."""
    first = line.split("\t")[0]
    split = split_pair(first)
    if split is not None and vocabulary.understand(split[0]) is not None:
        # a question is a label only as a form asks it ("What's your budget?", "3. Email?"),
        # not as a prospect writes it ("Is the building included in the asking price?")
        return not first.rstrip(" *:").endswith("?") or bool(FORM_QUESTION.match(first) or _NUMBERED.match(first))
    if line.rstrip().endswith((":", "：")) and split is not None and not split[1]:
        return True
    if line.rstrip().endswith((":", "：")) and split is not None and not split[1]:
        return True
    return bool(KEY_PAIR.match(first))


def value_below(lines: list[str], i: int, name: str, vocabulary: Vocabulary) -> str:
    """The value under a label alone on line ``i``: the next non-empty line (a message:
    lines up to a blank line or the next label; an address: and a city line). Past a blank
    line, text that reads as the template's own (``Tip: …``, ``Reply to this email``) is no
    value."""
    j, blanks = i + 1, 0
    while j < len(lines) and not lines[j].strip():
        j, blanks = j + 1, blanks + 1
    if j >= len(lines) or blanks > 2 or is_label_line(lines[j], vocabulary):
        return ""
    low = lines[j].lower()
    if blanks and (BOILERPLATE.search(low) or FOOTER.search(low) or OTHER.search(low)):
        return ""
    taken = [lines[j].split("\t")[0].strip()]
    if name == "message":
        for line in lines[j + 1 : j + MESSAGE_LINES]:
            if not line.strip() or is_label_line(line, vocabulary) or FORM_QUESTION.match(line):
                break
            taken.append(line.strip())
    elif name == "address" and j + 1 < len(lines) and CITY_LINE.match(lines[j + 1].strip()):
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

FOOTER = re.compile(
    r"unsubscribe|opt[ -]?out\b|manage (?:your )?(?:email )?(?:preferences|subscriptions|notifications)"
    r"|©|\(c\)\s*\d{4}|copyright|all rights reserved|privacy (?:policy|notice)|terms of (?:use|service)"
    r"|you (?:are )?receiv(?:ed|ing) this|this (?:e-?mail|message|notification) was sent"
    r"|(?:e-?mail|notification) preferences|no longer wish|do not reply to this")
# what only a footer says; a line that is merely a footer's kind of words ("do not reply to
# this email, call the buyer:") marks itself, not all that follows
FOOTER_START = re.compile(
    r"unsubscribe|opt[ -]?out\b|manage (?:your )?(?:email )?(?:preferences|subscriptions|notifications)"
    r"|©|\(c\)\s*\d{4}|copyright|all rights reserved|privacy (?:policy|notice)|terms of (?:use|service)"
    r"|(?:e-?mail|notification) preferences|no longer wish")
OTHER = re.compile(
    r"\b(?:listing agent|listed by|presented by|courtesy of|your agent|assigned (?:agent|to)|agent"
    r"|brokerage|broker|leasing office|leasing team|property manager|management|landlord|lender"
    r"|loan officer|referr(?:ed|ing|al)|customer (?:service|support|care)|support|help ?(?:desk|center|line)"
    r"|call us|contact us|reach us|toll[- ]free|fax|office|headquarters|our team|concierge|need help"
    r"|your (?:\w+ )?(?:rep|representative|advisor|coordinator|specialist|account manager|host))\b|questions\?")
# "Leah Brandt | Quarry Hill Realty | (508) 555-0125 | leah@…", "Loftly · 31 Milk St · …": a
# signature or a company's footer line, many parts joined by separators around a contact
CONTACTISH = re.compile(r"\d{3}\W{0,2}\d{4}|@|\b\d{5}\b")


def _signature(line: str) -> bool:
    return (line.count(" | ") + line.count(" · ") + line.count(" • ")) >= 2 and bool(CONTACTISH.search(line))
# a company's line: its street address with a ZIP code, and a phone
_COMPANY_PHONE = re.compile(r"\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b")


def _company_line(line: str) -> bool:
    """A company's line: its street address with a ZIP code, and a phone."""
    return bool(ZIP.search(line) and _COMPANY_PHONE.search(line) and _STREET_NUMBER.search(line))


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
        if i >= start and FOOTER_START.search(low):
            out[i:] = ["f"] * (n - i)
            break
        if FOOTER.search(low):
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
        seps = line.count("|") + line.count("\t")
        above = lines[i - 1] if i else ""
        if seps >= 2 and abs(above.count("|") + above.count("\t") - seps) <= 1 and not CONTACTISH.search(above):
            prospect_row = True  # a table's row under its row of headings
        words_of = ANY_EMAIL.sub(" ", low) if "@" in low else low  # "office@annlee…" says nothing
        if OTHER.search(words_of) or (not prospect_row and (_signature(line) or _company_line(line))):
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



#: a line this long ends where the sender's mail program wrapped it, not where the text ends
WRAPPED = 60


def wrapped(line: str) -> bool:
    """A line that ends where the sender's mail program wrapped it: long, and not at the end
    of a sentence."""
    return len(line) >= WRAPPED and not line.rstrip().endswith((".", "?", "!", '"', "”", ")"))


#: a line that is a label and its value (``Phone: …``, ``**Lead score:** Hot``, ``[Budget] …``)
SHORT_PAIR = re.compile(r"^\s*(?:(?:\*\*|__|\*|\[)?[^\W\d][\w .#/&'-]{0,30}"
                        r"(?:(?:\*\*|__|\*|\])?\s*[:：=]|[:：=]\s*(?:\*\*|__|\*|\]))"
                        r"|\[[^\W\d][^\]]{0,30}\]|\*{1,2}[^\W\d][^*]{0,30}\*{1,2})\s")


def continuation(lines: list[str], i: int, vocabulary: Vocabulary, *, paragraph: bool = False) -> list[str]:
    """The lines that continue a wrapped value on line ``i``: up to a blank line, a label,
    a line with a contact, a link or no letters, or the template's own words. With
    ``paragraph`` the value is a message whose lines were broken by its writer or its form
    (``Message: Hello.`` then ``Could we tour Friday?`` on the next line): every line of
    the paragraph, not only the wrapped ones."""
    out: list[str] = []
    for line in lines[i + 1 : i + MESSAGE_LINES]:
        text = line.strip()
        low = text.lower()
        if (not text or "\t" in line or not any(c.isalpha() for c in text) or SHORT_PAIR.match(text)
                or is_label_line(text, vocabulary) or ANY_EMAIL.search(text) or ANY_PHONE.search(text)
                or "://" in text or BOILERPLATE.search(low) or FOOTER.search(low)):
            break
        out.append(text)
        if not paragraph and not wrapped(line):
            break  # the last line of a wrapped paragraph
    return out
