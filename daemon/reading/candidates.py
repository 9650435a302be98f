"""The reader's candidates: every value of a lead field an email offers, with the evidence
behind it (``Found``), the collector that keeps only what may be the prospect's, and the
choice per field of the strongest (``choose``). ``daemon.reading.reader`` finds them in the
email's lines, headers and HTML."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from daemon.qualifying import normalize
from daemon.reading.senders import Parties
from daemon.reading.values import (
    ANY_EMAIL,
    ANY_PHONE,
    BARE_EMAIL,
    BARE_PHONE,
    CONTACTS,
    NAMES,
    PLACES,
    PREFIX_STREET,
    STREET,
    TOLL_FREE,
    ZIP,
    clean,
    labelled_name,
    person_name,
)
from daemon.reading.vocabulary import has_shape, label_words

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


#: where the HTML part's line numbers start in ``Found.line`` (the plain part's start at 0)
HTML_LINES = 100_000


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


class Collector:
    """The candidates of one email, as they are found; what is not the prospect's is kept
    out (the sender's, an agent's, the footer's)."""

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
        if name == "message" and URL_ONLY.match(value):
            return
        if name in PLACES and not has_shape(name, value):
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


# what follows an address in a listing card: its price, its beds and baths, its MLS number
_ADDRESS_END = re.compile(r"\s+[$|·•]\s*|\s+-\s+\$|,?\s*\(\s*(?:\$|MLS\b)|,?\s+MLS\s*(?:#|ID\b|No\b)",
                          re.IGNORECASE)
URL_ONLY = re.compile(r"^(?:<?https?://\S+>?\s*)+$", re.IGNORECASE)


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


# -- choosing --------------------------------------------------------------------------------


#: how far (in lines) an unlabelled contact may stand from the lead's name
NEAR = 12


def choose(col: Collector, region: str, contact_labels: int) -> Reading:
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
    _settle_place(chosen)
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


def _settle_place(chosen: dict[str, Found]) -> None:
    """The city, state and ZIP code labelled apart only for an address line that has none of
    its own (``12 Elm St, Miami, FL 33101`` says where it is; a form's ``Zip Code:`` beside
    it may be the prospect's home, not the property's)."""
    address = chosen.get("address")
    if address is None or not any(name in chosen for name in PLACES):
        return
    own = normalize.split_address(address.value)
    if own.city or own.state or own.postal_code:
        for name in PLACES:
            chosen.pop(name, None)


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
