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
import re
import unicodedata
from collections.abc import Iterable

from daemon.reading.candidates import (
    AFTER_CONTACTS,
    BARE,
    FROM,
    HTML_LINES,
    IN_LINE,
    IN_MESSAGE,
    LABEL,
    LINK,
    META,
    MICROFORMAT,
    REPLY_TO,
    SENTENCE,
    STREET_LINE,
    SUBJECT,
    URL_ONLY,
    WORDS,
    Collector,
    Found,
    Reading,
    choose,
)
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
    CITY_PARTS,
    CONTACTS,
    DECORATION,
    NAME_LINE,
    NAMES,
    PLACES,
    QUOTES,
    find_street,
    person_name,
    sentence_names,
    street_at_start,
)
from daemon.reading.vocabulary import Vocabulary

#: The first warning of a lead the reader read from a sender no rule knows.
NEW_SENDER = "reader: no rule knows the sender"


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
    col = Collector(parties, region)
    contact_labels = _read_lines(own_lines(msg.lines), vocabulary, col)
    if msg.plain.strip() and msg.html and not any(f.field in CONTACTS for f in col.found):
        col.offset = HTML_LINES  # the HTML's lines are another text: never "near" the plain's
        contact_labels += _read_lines(own_lines(msg.html_text.split("\n")), vocabulary, col)
        col.offset = 0
    _read_headers(msg, col)
    _read_html(msg, col)
    if _written_by_prospect(msg, parties) and not any(f.field == "message" for f in col.found):
        note = _opening_note(own_lines(msg.lines), vocabulary)
        if note:
            col.add("message", note, IN_MESSAGE, "the note the email opens with", line=0)
    return choose(col, region, contact_labels)


def _written_by_prospect(msg: Message, parties: Parties) -> bool:
    """The email passes on the prospect's own note: sent from their mailbox, or by a portal's
    relay in their name (``Ann Lee via Rentzilla``, ``reply-8f3a@…``)."""
    sender = msg.from_address or ""
    return parties.from_is_prospect or parties.is_relay(sender) or " via " in (msg.from_name or "")


_GREETING = re.compile(r"^(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|hola|buenos d[ií]as)\b"
                       r"[^.?!]{0,30}[,!:]?$", re.IGNORECASE)
_SIGN_OFF = re.compile(r"^(?:thanks|thank you|thx|best|regards|best regards|kind regards|cheers|sincerely"
                       r"|gracias|saludos|talk soon)\b[^.?!]{0,30}[,!.]?$", re.IGNORECASE)
_RULE_LINE = re.compile(r"^\s*(?:-{2,}|_{3,}|={3,}|\*{3,}|—+)\s*$")


def _opening_note(lines: list[str], vocabulary: Vocabulary) -> str:
    """The words a relayed email opens with, up to its template (a rule line, a label, the
    footer), without the greeting and the sign-off: ``Hi there,`` / the note / ``Thanks,``
    ``Kenji``. Empty unless it reads as prose."""
    taken: list[str] = []
    for line in lines[:MESSAGE_LINES * 2]:
        text = line.strip()
        low = text.lower()
        if not text:
            continue
        if is_label_line(text, vocabulary) or "\t" in line:
            return ""  # a form's heading above its fields, not a note
        if _RULE_LINE.match(text) or BOILERPLATE.search(low) or FOOTER.search(low) or _SIGN_OFF.match(text):
            break
        if not taken and _GREETING.match(text):
            continue
        taken.append(text)
    note = " ".join(taken)
    # a person writes to someone ("I", "we", "you", a question); a template's opening line
    # speaks of them ("Rental inquiry from Ann Lee for Unit 4.")
    return note if _prose(note) and _PERSONAL.search(note) else ""


_PERSONAL = re.compile(r"\b(?:i|i'm|i'd|i've|i'll|we|we're|we'd|we've|my|our|me|us|you|your)\b|\?", re.IGNORECASE)


def _read_lines(lines: list[str], vocabulary: Vocabulary, col: Collector) -> int:
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
        if name == "message" and p.value in lines[p.line]:
            # a message hard-wrapped by the sender, or written in several lines: its next
            # lines, up to a blank line, are its own
            more = continuation(lines, p.line, vocabulary, paragraph=not wrapped(lines[p.line]))
            p = Pair(p.label, " ".join([p.value, *more]), p.line, p.meaning)
        if name in PLACES and (parts := CITY_PARTS.match(p.value)) is not None:
            # one label for the three (``City/State/Zip: Asheville, NC 28803``)
            for part in PLACES:
                col.add(part, parts[part], strength, f"label '{p.label}'", line=p.line, label=p.label, zone=z)
            continue
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


def _read_unlabelled(lines: list[str], zone: list[str], vocabulary: Vocabulary, col: Collector,
                     pair_lines: set[int]) -> None:
    brand = col.parties.brand
    n = min(len(lines), MAX_LINES)
    intro = 0
    bare: list[int] = []  # the lines that are a bare email or phone, outside any zone
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
                bare.append(i)
            elif BARE_PHONE.match(cell):
                col.add("phone", cell, BARE, "a bare line", line=i)
                _names_above(lines, i, zone, vocabulary, col)
                bare.append(i)
    for i in bare:
        # the paragraph after a block of bare contact lines (``Ann Lee`` / ``ann@…`` /
        # ``(303) …``), as after labelled ones, is the prospect's own words
        following = next((k for k in range(i + 1, min(n, i + 3)) if lines[k].strip()), None)
        if following in bare:
            continue  # not the block's last line
        after = _paragraph_after(lines, i, vocabulary)
        if _prose(after):
            col.add("message", after, AFTER_CONTACTS, "the paragraph after the contact lines", line=i + 1)


_SAYS = re.compile(r"\bsays\s*:?\s*(.*)$|\bwrote\s*:\s*(.*)$")


def _prose(text: str) -> bool:
    """Words a person wrote: a sentence, not a link, a template's advice or a contact line."""
    low = text.lower()
    if len(text.split()) < 3 or URL_ONLY.match(text) or BOILERPLATE.search(low) or FOOTER.search(low):
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


def _names_above(lines: list[str], i: int, zone: list[str], vocabulary: Vocabulary, col: Collector) -> None:
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


def _read_headers(msg: Message, col: Collector) -> None:
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
    if _written_by_prospect(msg, parties):
        inner = ANY_EMAIL.search(from_name)
        if inner:
            col.add("email", inner.group(0), FROM + 5, "the From name")
            from_name = from_name.replace(inner.group(0), " ")
        col.add("full_name", parties.strip_brand(from_name), FROM, "the From name")
        if parties.from_is_prospect and msg.from_address:
            col.add("email", msg.from_address, FROM, "From")


def _resembles(address: str, display: str | None, col: Collector) -> bool:
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


def _read_html(msg: Message, col: Collector) -> None:
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


def is_new_sender(warning: str) -> bool:
    """Whether a lead warning says the reader read it from a sender no rule knows."""
    return warning.startswith(NEW_SENDER)


def describe(found: Iterable[Found]) -> str:
    """What was found, for a dead letter's detail: ``email 'a@b.c' (Reply-To); …``."""
    return "; ".join(f"{f.field} {f.value!r} ({f.how})" for f in found)
