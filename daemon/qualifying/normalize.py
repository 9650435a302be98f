"""Turn the raw strings a rule extracted into one clean :class:`~daemon.lead.Lead`.

A pure stage: no I/O, no clock, no database. Every value a rule extracted either becomes
its canonical form (E.164 phone, lower-cased email, properly cased names, dollars as
numbers, two-letter state codes) or is left empty with a warning on the lead saying why.
Placeholders such as ``N/A``, ``none`` or ``-`` count as absent, without a warning.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

import phonenumbers
import usaddress
from email_validator import EmailNotValidError, validate_email
from nameparser import HumanName
from nameparser.config import Constants

from daemon.lead import Intent, Lead, Property
from daemon.qualifying.address import verify_property

# Typed where a value is expected, and meaning "nothing". "NA" only in capitals:
# "Na" is a Korean surname.
_PLACEHOLDERS = frozenset({
    "n/a", "n.a.", "n/a.", "none", "null", "nil", "undefined", "unknown", "not provided",
    "not specified", "not available", "not applicable", "-", "--", "---", "–", "—", ".", "?",
})

# nameparser turns any "mac…" into "Mac…"; these common surnames and given names are not
# Gaelic patronymics ("MACHADO" must become "Machado", not "MacHado").
_NOT_MAC = ("machado", "macias", "macedo", "maciel", "machuca", "macario", "macaluso",
            "macchia", "macri", "macon", "mackey", "mackie", "macie", "mackenzie", "machin")
_NAMES = Constants()
for _word in _NOT_MAC:
    _NAMES.capitalization_exceptions[_word] = _word.capitalize()

_T = TypeVar("_T")
_MAX_NAME_LENGTH = 100
_QUOTES = "\"'“”‘’`«»"
_NOT_IN_NAMES = frozenset({"So", "Sk", "Cf", "Co", "Cs", "Cn"})  # emoji, symbols, controls

#: US state and territory names (upper case) to their two-letter codes
STATES = {
    "ALABAMA": "AL", "ALASKA": "AK", "ARIZONA": "AZ", "ARKANSAS": "AR", "CALIFORNIA": "CA",
    "COLORADO": "CO", "CONNECTICUT": "CT", "DELAWARE": "DE", "FLORIDA": "FL", "GEORGIA": "GA",
    "HAWAII": "HI", "IDAHO": "ID", "ILLINOIS": "IL", "INDIANA": "IN", "IOWA": "IA", "KANSAS": "KS",
    "KENTUCKY": "KY", "LOUISIANA": "LA", "MAINE": "ME", "MARYLAND": "MD", "MASSACHUSETTS": "MA",
    "MICHIGAN": "MI", "MINNESOTA": "MN", "MISSISSIPPI": "MS", "MISSOURI": "MO", "MONTANA": "MT",
    "NEBRASKA": "NE", "NEVADA": "NV", "NEW HAMPSHIRE": "NH", "NEW JERSEY": "NJ",
    "NEW MEXICO": "NM", "NEW YORK": "NY", "NORTH CAROLINA": "NC", "NORTH DAKOTA": "ND",
    "OHIO": "OH", "OKLAHOMA": "OK", "OREGON": "OR", "PENNSYLVANIA": "PA", "RHODE ISLAND": "RI",
    "SOUTH CAROLINA": "SC", "SOUTH DAKOTA": "SD", "TENNESSEE": "TN", "TEXAS": "TX", "UTAH": "UT",
    "VERMONT": "VT", "VIRGINIA": "VA", "WASHINGTON": "WA", "WEST VIRGINIA": "WV",
    "WISCONSIN": "WI", "WYOMING": "WY", "DISTRICT OF COLUMBIA": "DC", "WASHINGTON DC": "DC",
    "PUERTO RICO": "PR", "GUAM": "GU", "VIRGIN ISLANDS": "VI", "US VIRGIN ISLANDS": "VI",
    "AMERICAN SAMOA": "AS", "NORTHERN MARIANA ISLANDS": "MP",
}
_STATE_CODES = frozenset(STATES.values())
_ZIP = re.compile(r"\d{5}(?:-\d{4})?")
_PLACE_LABELS = frozenset({"PlaceName", "StateName", "ZipCode", "CountryName"})

_UNITS = {"k": 10**3, "thousand": 10**3, "m": 10**6, "mm": 10**6, "mil": 10**6,
          "million": 10**6, "b": 10**9, "bn": 10**9, "billion": 10**9}
_UNIT = r"(?P<unit>k|thousand|mm|mil|million|m|bn|billion|b)"
_MONEY = re.compile(
    r"~?\s*(?:usd|us\$|\$)?\s*"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)\s*" + _UNIT + r"?\.?"
    r"\s*(?:usd|dollars)?\s*\+?\s*(?:(?:/|per\s+|a\s+)(?:mo|mth|month))?\.?"
)
_AT_MOST = re.compile(r"(?:under|up\s+to|below|less\s+than|max(?:imum)?|at\s+most|"
                      r"no\s+more\s+than|not\s+to\s+exceed|<=?|≤)\s*:?\s*(?P<amount>.+)")
_AT_LEAST = re.compile(r"(?:over|above|more\s+than|at\s+least|min(?:imum)?|from|"
                       r"starting\s+at|>=?|≥)\s*:?\s*(?P<amount>.+)")
_OPEN_ENDED = re.compile(r"(?P<amount>.+?)\s*(?:\+|and\s+up|or\s+more|plus)")
_RANGE = re.compile(r"(?:between\s+|from\s+)?(?P<low>.+?)\s*(?:-|–|—|\bto\b|\band\b)\s*"
                    r"(?P<high>.+)")

# First the keywords saying what the lead wants to do, then those saying only what they
# look at: "to rent an apartment" is rent, "to buy an apartment" is buy.
_INTENTS: tuple[tuple[tuple[Intent, str], ...], ...] = ((
    ("buy", r"\bbuy(?:s|er|ers|ing)?\b|\bpurchas(?:e|es|er|ing)\b"),
    ("sell", r"\bsell(?:s|er|ers|ing)?\b|\blist(?:ing)?\s+my\s+(?:home|house|property)\b"
             r"|\bhome\s+value\b|\bvaluation\b|\bwhat(?:'s|\s+is)\s+my\s+home\s+worth\b"),
    ("rent", r"\brent(?:s|al|als|ing|er|ers)?\b|\bleas(?:e|es|ing)\b|\btenants?\b"),
), (
    ("buy", r"\bhome\s+search\b|\blooking\s+for\s+a\s+(?:home|house)\b"),
    ("rent", r"\bapartments?\b"),
))


@dataclass(frozen=True)
class Address:
    """A US address line split into parts; a part that was not found is ``None``."""

    street: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None


def normalize_phone(raw: str, region: str = "US") -> str | None:
    """The phone number in ``raw`` as E.164 (``+19709240423``), or ``None``.

    ``region`` is assumed for numbers without a country code; extensions are dropped; in
    text around a number, the first number is used. Accepted: numbers phonenumbers calls
    valid, and North American numbers of the right shape (area code and exchange 2-9, area
    code not N11) whose area code is unassigned, such as the ``555-555-5555`` of provider
    samples. Never raises.
    """
    text = _clean(raw)
    if text is None:
        return None
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not _acceptable_phone(number):
        found = phonenumbers.PhoneNumberMatcher(text, region.upper(),
                                                leniency=phonenumbers.Leniency.POSSIBLE)
        number = next((m.number for m in found if _acceptable_phone(m.number)), None)
    if number is None:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _acceptable_phone(number: phonenumbers.PhoneNumber) -> bool:
    nanp_shaped = re.fullmatch(r"[2-9](?!11)\d\d[2-9]\d{6}", str(number.national_number))
    return phonenumbers.is_valid_number(number) or (
        number.country_code == 1 and nanp_shaped is not None
        and phonenumbers.is_possible_number(number))


def normalize_email(raw: str) -> str | None:
    """``raw`` as a normalized, wholly lower-cased email address, or ``None`` if invalid.

    Angle brackets, a ``mailto:`` prefix and trailing punctuation are removed first.
    Deliverability (DNS) is not checked. Never raises.
    """
    text = _clean(raw)
    if text is None:
        return None
    text = re.sub(r"^mailto:", "", text.strip("<>"), flags=re.IGNORECASE).rstrip(".,;:")
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def case_name(name: str) -> str:
    """``name`` properly cased, words kept in the order typed.

    Only a name typed all in capitals or all in lower case is re-cased
    (``JOHN MCDONALD`` → ``John McDonald``, ``jan van der berg`` → ``Jan van der Berg``);
    mixed-case input such as ``DeShawn`` is the writer's spelling and is kept. Stray
    quotes, emoji and trailing punctuation are removed. Returns ``""`` for a blank name.
    """
    text = _clean_name(name) or ""
    return text if _name_problem(text) else _recase(text, force=None)


def split_name(full: str) -> tuple[str | None, str | None, str | None]:
    """``(full_name, first, last)`` from one name as typed, each cased like :func:`case_name`.

    ``Smith, John`` is John Smith. Titles (``Dr.``) are dropped, from ``full_name`` too;
    suffixes (``Jr.``) and middle names stay in ``full_name`` only. One name is a first
    name (``Cher`` → ``("Cher", "Cher", None)``) unless after a title (``Dr. Smith``).
    Not a name (an email address, a phone number, no letters, over 100 characters) →
    ``(None, None, None)``.
    """
    text = _clean_name(full)
    if text is None or _name_problem(text) is not None:
        return None, None, None
    name = _parse_name(text, force=None)
    first, last = name.first or None, name.last or None
    if first is None and last is not None and not name.title and not name.middle:
        first, last = last, None
    # One word typed (李小龙, 김민준) is kept as typed, not re-ordered given-name first.
    if " " not in text:
        return _recase(text, force=None), first, last
    return " ".join(p for p in (first, name.middle, last, name.suffix) if p) or None, first, last


def parse_money(raw: str) -> float | None:
    """An amount of dollars: ``$1.2M`` → 1200000, ``450k`` → 450000, ``$3,175+`` → 3175.

    Understands ``$``/``USD``, thousands separators, ``k``/``m``/``million``/``b``
    suffixes and a trailing ``/mo``. Returns ``None`` for anything else (including
    ranges and negative amounts). Never raises.
    """
    text = _clean(raw)
    match = _MONEY.fullmatch(text.lower()) if text else None
    if match is None:
        return None
    # Decimal, so that "$1.15M" is 1150000 and not 1149999.9999999998.
    return float(Decimal(match["num"].replace(",", "")) * _UNITS.get(match["unit"] or "", 1))


def parse_money_range(raw: str) -> tuple[float | None, float | None]:
    """A budget as ``(minimum, maximum)`` dollars; ``(None, None)`` if it does not parse.

    ``$450,000 - $600,000``, ``$400K to $500K``, ``between 1 and 1.5M``, ``400-500k``
    (a unit written only on the high end applies to both) → both ends; ends written
    high-to-low are swapped. ``Under $500K``/``up to 500k`` → ``(None, 500000)``;
    ``500k+``/``over $1M`` → ``(500000, None)``. A single amount (``450k``) is a ceiling,
    ``(None, 450000)``: a buyer who states one budget means the most they will spend.
    Never raises.
    """
    text = _clean(raw)
    if text is None:
        return None, None
    text = re.sub(r"\s+", " ", text.lower())
    if (match := _RANGE.fullmatch(text)) is not None:
        low_text, high = match["low"], parse_money(match["high"])
        unit = re.search(_UNIT + r"\.?\s*(?:/\w+)?\+?$", match["high"])
        if unit and not re.search(r"[a-z]", low_text):
            low_text += unit["unit"]
        if (low := parse_money(low_text)) is not None and high is not None:
            return (low, high) if low <= high else (high, low)
    if (match := _AT_MOST.fullmatch(text)) is not None:
        return None, parse_money(match["amount"])
    for pattern in (_AT_LEAST, _OPEN_ENDED):
        if (match := pattern.fullmatch(text)) is not None:
            return parse_money(match["amount"]), None
    return None, parse_money(text)


def parse_intent(raw: str) -> Intent | None:
    """``"buy"``, ``"sell"`` or ``"rent"`` from how a lead describes itself, else ``None``.

    A keyword that says what the lead wants to do (buy, purchase, sell, list my home,
    home value, rent, lease) wins over one that says what they look at (home search,
    apartment); among those, the first in the text wins. Never raises.
    """
    text = _clean(raw)
    if text is None:
        return None
    text = text.lower()
    for table in _INTENTS:
        found = [(m.start(), intent) for intent, pattern in table
                 if (m := re.search(pattern, text)) is not None]
        if found:
            return min(found)[1]
    return None


def split_address(raw: str) -> Address:
    """Split a US address line into street, city, two-letter state and ZIP code.

    Uses ``usaddress``; where it finds a label twice, falls back to reading
    ``street, city, ST 12345`` from the right. State names become codes
    (``Illinois`` → ``IL``); a ZIP code (5 digits or ZIP+4) is kept as given. A line with
    no state, no ZIP code and no numbered street with a city, or with a state or ZIP code
    that is not one, comes back whole as ``street``: nothing typed is lost. Never raises.
    """
    text = _clean(re.sub(r"\s+", " ", re.sub(r"\s*[\r\n]+\s*", ", ", (raw or "").strip()))
                  .strip(_QUOTES + " ,;"))
    if text is None:
        return Address()
    try:
        tagged, _kind = usaddress.tag(text)
    except usaddress.RepeatedLabelError:
        return _split_address_by_pattern(text)
    city = (tagged.get("PlaceName") or "").strip(" ,") or None
    state = state_code(tagged.get("StateName"))
    postal_code = zip_code(tagged.get("ZipCode"))
    unreadable = (tagged.get("StateName") and not state) or (
        tagged.get("ZipCode") and not postal_code)
    if unreadable or not (state or postal_code or (city and "AddressNumber" in tagged)):
        return Address(street=text)  # kept whole rather than losing a part we cannot read
    return Address(_street(text), city, state, postal_code)


def _street(text: str) -> str | None:
    """The street part of an address line, spelled as typed ("#12", not "# 12")."""
    spans, at = [], 0
    for word, label in usaddress.parse(text):
        at = max(text.find(word, at), at)  # usaddress tokens are slices of the text
        spans.append((at, at + len(word), label in _PLACE_LABELS))
        at += len(word)
    street = [(start, end) for start, end, place in spans if not place]
    if not street:
        return None
    start, end = street[0][0], street[-1][1]
    if any(place and start < s < end for s, _e, place in spans):  # street words around a city
        return " ".join(text[s:e] for s, e in street).strip(" ,") or None
    return text[start:end].strip(" ,") or None


def _split_address_by_pattern(text: str) -> Address:
    """``street, city, ST 12345`` read from the right; the whole line as street if not."""
    rest, postal_code = text, None
    if (match := re.search(r"[\s,]+(\d{5}(?:-\d{4})?)$", rest)) is not None:
        rest, postal_code = rest[: match.start()], match[1]
    words = rest.replace(",", " , ").split()
    for count in (3, 2, 1):
        state = state_code(" ".join(words[-count:]))
        head = " ".join(words[:-count]).replace(" ,", ",").rstrip(" ,")
        if state and "," in head:
            street, city = (part.strip() for part in head.rsplit(",", 1))
            return Address(street or None, city or None, state, postal_code)
    return Address(street=text)


def normalize_fields(
    fields: Mapping[str, str], *, source: str, rule_version: str, message_id: str | None,
    received_at: datetime | None, region: str = "US", warnings: Sequence[str] = (),
) -> Lead:
    """The :class:`Lead` for the raw field strings one rule extracted from one email.

    ``fields`` maps field names (``full_name``, ``phone``, ``address``, ``budget``, …) to
    the strings found; unknown names are ignored. A value that cannot be normalized is
    left ``None`` and explained in ``Lead.warnings``, after the ``warnings`` passed in.
    ``score`` is 0 and ``tier`` ``"standard"``: scoring is a later stage. Never raises on
    the content of ``fields``.
    """
    notes = list(warnings)
    values = {key: _clean(value) for key, value in fields.items()}

    def convert(key: str, parse: Callable[[str], _T | None], problem: str) -> _T | None:
        value = values.get(key)
        if value is None:
            return None
        result = parse(value)
        if result is None or result == (None, None):
            notes.append(f"{key.replace('_', ' ')} {_show(value)} {problem}; left empty")
        return result

    full_name, first, last = _names(values, notes)
    phone = convert("phone", lambda v: normalize_phone(v, region), "is not a valid phone number")
    email = convert("email", normalize_email, "is not a valid address")
    address = split_address(values.get("address") or "")
    low, high = convert("budget", parse_money_range, "is not an amount or range of money") or (
        None, None)
    budget_min = convert("budget_min", parse_money, "is not an amount of money")
    budget_max = convert("budget_max", parse_money, "is not an amount of money")
    state = convert("state", state_code, "is not a US state")
    postal_code = convert("postal_code", zip_code, "is not a US ZIP code")
    # checked against the ZIP code database; a city or state it fills is said in a warning
    prop, filled = verify_property(Property(
        address=address.street,
        city=(values.get("city") or "").strip(" ,") or address.city,
        state=state or address.state,
        postal_code=postal_code or address.postal_code,
        price=convert("price", parse_money, "is not an amount of money"),
        mls_id=(values.get("mls_id") or "").lstrip("#").strip() or None,
        url=(values.get("url") or "").strip("<>").strip() or None,
    ))
    notes.extend(filled)
    return Lead(
        source=source, rule_version=rule_version, message_id=message_id,
        received_at=received_at, full_name=full_name, first_name=first, last_name=last,
        email=email, phone=phone, property=prop,
        budget_min=low if budget_min is None else budget_min,
        budget_max=high if budget_max is None else budget_max,
        intent=convert("intent", parse_intent, "is not buy, sell or rent"),
        message=_message(values.get("message")),
        warnings=tuple(notes),
    )


def _names(values: Mapping[str, str | None], notes: list[str]) -> tuple[str | None, ...]:
    """``(full_name, first, last)``: the first/last fields win over a split full name."""
    usable: dict[str, str | None] = {}
    for key in ("full_name", "first_name", "last_name"):
        text = _clean_name(values.get(key))
        if text is not None and (problem := _name_problem(text)) is not None:
            notes.append(f"{key.replace('_', ' ')} {_show(text)} {problem}; ignored")
            text = None
        usable[key] = text
    full, first, last = split_name(usable["full_name"]) if usable["full_name"] else (None,) * 3
    given, family = usable["first_name"], usable["last_name"]
    if given or family:
        # Cased together so "van der" after a first name is lower-cased, but each field
        # only if it was typed in one case itself.
        cased = _recase(f"{given or ''} {family or ''}".strip(), force=True).split(" ")
        split_at = len(given.split()) if given else 0
        if given:
            first = " ".join(cased[:split_at]) if _one_case(given) else given
        if family:
            last = " ".join(cased[split_at:]) if _one_case(family) else family
    return full or " ".join(p for p in (first, last) if p) or None, first, last


def _parse_name(text: str, *, force: bool | None) -> HumanName:
    name = HumanName(text, constants=_NAMES)
    name.capitalize(force=force)
    return name


def _recase(text: str, *, force: bool | None) -> str:
    """``text`` with each word replaced by its cased form from nameparser, order kept."""
    if not text:
        return text
    name = _parse_name(text, force=force)
    pieces = (name.title_list + name.first_list + name.middle_list + name.last_list
              + name.suffix_list + name.nickname_list)
    cased = {word.casefold(): word for piece in pieces for word in piece.split()}
    return re.sub(r"[^\s,]+", lambda m: cased.get(m[0].casefold(), m[0]), text)


def _one_case(text: str) -> bool:
    return text in (text.upper(), text.lower())


def _clean_name(raw: str | None) -> str | None:
    """The name without emoji, surrounding quotes and stray punctuation; ``None`` if blank."""
    text = _clean(raw)
    if text is None:
        return None
    # U+FFFD stays: a mis-decoded letter is shown, not silently dropped ("J�rgen").
    text = "".join(c for c in text
                   if c == "\ufffd" or unicodedata.category(c) not in _NOT_IN_NAMES)
    text = re.sub(r"\s+", " ", text.replace("\ufe0f", "")).strip(_QUOTES + " ,;:!?*•-")
    # "Smith." loses its full stop; "J.", "Jr.", "Ph.D." and "Esq." keep theirs.
    word = text.rsplit(" ", 1)[-1].rstrip(".").lower()
    if text.endswith(".") and len(word) > 2 and "." not in word and not (
            word in _NAMES.suffix_acronyms or word in _NAMES.suffix_not_acronyms):
        text = text[:-1]
    return _clean(text)


def _name_problem(text: str) -> str | None:
    """Why ``text`` is not a person's name, or ``None`` if it may be one."""
    if "@" in text:
        return "looks like an email address"
    letters = sum(c.isalpha() for c in text)
    if not letters and sum(c.isdigit() for c in text) >= 7:
        return "looks like a phone number"
    if not letters:
        return "has no letters"
    if len(text) > _MAX_NAME_LENGTH:
        return "is too long to be a name"
    return None


def state_code(raw: str | None) -> str | None:
    """Two-letter code for a US state, DC or territory, by code or name; else ``None``."""
    text = re.sub(r"\s+", " ", (raw or "").replace(".", "").strip(" ,")).upper()
    return text if text in _STATE_CODES else STATES.get(text)


def zip_code(raw: str | None) -> str | None:
    """A five-digit ZIP code or ZIP+4 as written; else ``None``."""
    text = (raw or "").strip(" ,")
    return text if _ZIP.fullmatch(text) else None


def _message(raw: str | None) -> str | None:
    text = re.sub(r"\s+", " ", raw or "").strip()
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return _clean(text)


def _clean(raw: str | None) -> str | None:
    """``raw`` stripped; ``None`` if blank or a placeholder such as ``N/A``."""
    text = (raw or "").strip()
    if not text or text == "NA" or text.casefold() in _PLACEHOLDERS:
        return None
    return text


def _show(value: str) -> str:
    """A value quoted for a warning, shortened so a runaway capture stays readable."""
    return repr(value if len(value) <= 60 else value[:57] + "...")
