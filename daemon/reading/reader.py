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

Where values sit (label layouts, zones) is ``daemon/reading/layout.py``; what they look like
(cleaning, names, streets, lead sentences) is ``daemon/reading/values.py``.
"""

from __future__ import annotations

import email.utils
import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from daemon.qualifying import normalize
from daemon.reading.layout import (
    BOILERPLATE,
    FOOTER,
    ICONS,
    MAX_LINES,
    MESSAGE_LINES,
    Pair,
    continuation,
    is_label_line,
    pairs,
    wrapped,
    zones,
)
from daemon.reading.message import Message
from daemon.reading.senders import Parties
from daemon.reading.values import (
    ABOUT_STREET,
    ANY_EMAIL,
    ANY_PHONE,
    BARE_EMAIL,
    BARE_PHONE,
    CITY_LINE,
    CONTACTS,
    DECORATION,
    NAME_LINE,
    NAMES,
    PREFIX_STREET,
    QUOTES,
    STREET,
    TOLL_FREE,
    ZIP,
    clean,
    find_street,
    labelled_name,
    person_name,
    sentence_names,
    street_at_start,
)
from daemon.reading.vocabulary import Vocabulary, has_shape, label_words

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
        if name in NAMES and (BARE_EMAIL.match(value) or BARE_PHONE.match(value)):
            # a value in the name slot that is really an email or a phone goes to its field
            self.add("email" if "@" in value else "phone", value, strength, how, line=line, label=label,
                     zone=zone)
            return
        if name in NAMES and (ANY_EMAIL.search(value) or ANY_PHONE.search(value)):
            # "Ann Lee, 303-555-0134, ann@example.com": the name, then its contacts
            for m in ANY_EMAIL.finditer(value):
                self.add("email", m.group(0), strength, how, line=line, label=label, zone=zone)
            for m in ANY_PHONE.finditer(value):
                self.add("phone", m.group(0), strength, how, line=line, label=label, zone=zone)
            first = min(m.start() for m in (*ANY_EMAIL.finditer(value), *ANY_PHONE.finditer(value)))
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
            if name == "phone" and TOLL_FREE.match(key) and strength < WORDS:
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


def _address_shaped(value: str, label: str | None) -> bool:
    """An address is a street line (``1420 Larch St``), or holds a ZIP code; under a label
    whose words only hint at a property (``Listing``, ``Property``) it must be a street."""
    if len(value) > 200 or not has_shape("address", value):
        return False
    if STREET.search(value) or PREFIX_STREET.search(value):
        return True
    words = label_words(label) if label else ()
    return "address" in words and bool(ZIP.search(value) or re.match(r"^\d+\s+\w", value))


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
        if name == "address" and CITY_LINE.match(_next(lines, p.line)) and not CITY_LINE.search(p.value):
            p = Pair(p.label, f"{p.value}, {_next(lines, p.line)}", p.line, p.meaning)
        if name == "message" and wrapped(lines[p.line]) and p.value in lines[p.line]:
            # a plain-text message hard-wrapped by the sender: its next lines are its own
            p = Pair(p.label, " ".join([p.value, *continuation(lines, p.line, vocabulary)]), p.line, p.meaning)
        col.add(name, p.value, strength, f"label '{p.label}'", line=p.line, label=p.label, zone=z)
        if name == "message":
            for m in ANY_EMAIL.finditer(p.value):
                col.add("email", m.group(0), IN_MESSAGE, "the message", line=p.line, zone=z)
            for m in ANY_PHONE.finditer(p.value):
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
        street = street_at_start(line)
        if street and len(line) <= 100:
            col.add("address", street, STREET_LINE, "a street line", line=i)
        elif intro <= 6 and i not in pair_lines and ABOUT_STREET.search(line):
            street = find_street(line)
            if street:
                col.add("address", street, SUBJECT - 5, "an opening sentence", line=i)
        if i not in pair_lines and not BARE_EMAIL.match(line) and not BARE_PHONE.match(line):
            for m in ANY_EMAIL.finditer(line):
                col.add("email", m.group(0), IN_LINE, "a line of text", line=i)
            for m in ANY_PHONE.finditer(line):
                col.add("phone", m.group(0), IN_LINE, "a line of text", line=i)
        if i < 80:
            for name, rest, acted in sentence_names(line, brand):
                col.add("full_name", name, SENTENCE, "a sentence", line=i)
                says = _SAYS.search(line.split(name, 1)[-1])
                if says and (says.group(1) or says.group(2) or "").strip():
                    col.add("message", says.group(1) or says.group(2), SENTENCE, f"'{name} says'", line=i)
                elif says or acted:
                    # the paragraph after "<Name> says:" (or "is interested in …") is theirs
                    after = _paragraph_after(lines, i, vocabulary)
                    if says or _prose(after):
                        col.add("message", after, SENTENCE, f"the words after '{name} …'", line=i)
                street = find_street(rest)
                if street:
                    col.add("address", street, SENTENCE, "a sentence", line=i)
        for cell in line.split("\t"):
            cell = DECORATION.sub("", cell).strip(" \t:;,|•·>*")
            cell = ICONS.sub("", cell)  # "📱 🇺🇸 +1 303-555-0134"
            if BARE_EMAIL.match(cell):
                col.add("email", cell, BARE, "a bare line", line=i)
                _names_above(lines, i, zone, vocabulary, col)
            elif BARE_PHONE.match(cell):
                col.add("phone", cell, BARE, "a bare line", line=i)
                _names_above(lines, i, zone, vocabulary, col)


_SAYS = re.compile(r"\bsays\s*:?\s*(.*)$|\bwrote\s*:\s*(.*)$")


def _prose(text: str) -> bool:
    """Words a person wrote: a sentence, not a link, a template's advice or a contact line."""
    low = text.lower()
    if len(text.split()) < 3 or _URL_ONLY.match(text) or BOILERPLATE.search(low) or FOOTER.search(low):
        return False
    if ANY_EMAIL.search(text) or (ANY_PHONE.search(text) and len(text.split()) < 6):
        return False
    return (text[:1] in QUOTES and text.rstrip()[-1:] in QUOTES) or text.rstrip()[-1:] in ".?!"


def _paragraph_after(lines: list[str], i: int, vocabulary: Vocabulary, *, skip_labels: bool = False) -> str:
    """The paragraph after line ``i`` (after the label lines that follow it, with
    ``skip_labels``), up to a blank line, a label, or a bare contact line."""
    taken: list[str] = []
    for line in lines[i + 1 : i + 1 + MESSAGE_LINES]:
        text = line.strip()
        if not text:
            if taken:
                break
            skip_labels = False
            continue
        if is_label_line(text, vocabulary) or BARE_EMAIL.match(text) or BARE_PHONE.match(text):
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
        text = ICONS.sub("", lines[k].strip())
        k -= 1
        if not text:
            if above:
                break
            continue
        if "\t" in text or zone[k + 1] or BARE_EMAIL.match(text) or BARE_PHONE.match(text):
            if above:
                break
            continue
        if not NAME_LINE.match(text) or is_label_line(text, vocabulary):
            break
        if person_name(text, col.parties.brand) is None:
            break
        above.insert(0, text)
    if len(above) >= 2 and len(above[-2].split()) <= 2 and len(above[-1].split()) <= 3:
        col.add("first_name", above[-2], BARE, "a bare line", line=i)
        col.add("last_name", above[-1], BARE, "a bare line", line=i)
    elif above and len(above[-1].split()) >= 2:
        col.add("full_name", above[-1], BARE, "a bare line", line=i)


def _read_headers(msg: Message, col: _Collector) -> None:
    parties = col.parties
    subject = msg.subject or ""
    for name, rest, _acted in sentence_names(ICONS.sub("", subject), parties.brand, subject=True):
        col.add("full_name", name, SUBJECT, "the subject")
        street = find_street(rest)
        if street:
            col.add("address", street, SUBJECT, "the subject")
    street = find_street(subject)
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
        inner = ANY_EMAIL.search(from_name)
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


_TITLES = frozenset(("dr", "mr", "mrs", "ms", "miss", "mx", "prof", "rev", "sir", "madam"))


def _untitled(name: str) -> list[str]:
    words = [w.strip(".,").casefold() for w in name.split()]
    return [w for w in words if w not in _TITLES]


def _fuller(best: Found, found: list[Found]) -> Found:
    """A fuller spelling of the chosen name found elsewhere (``Ines`` in ``Note from Ines``,
    ``Ines Carvalho`` in the subject) is the same person's name, more completely."""
    words = _untitled(best.value)
    fuller = [f for f in found if len(_untitled(f.value)) > len(words)
              and _untitled(f.value)[: len(words)] == words and f.strength >= best.strength - 30]
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
