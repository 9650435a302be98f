"""Check a US property address against the USPS ZIP code database, offline.

A pure stage: no network, no clock, no database; the ZIP data ships inside the ``zipcodes``
package and the USPS street style comes from ``usaddress-scourgify``. For the parts of an
address a lead gave (street, city, state, ZIP code), :func:`check_address` says whether they
agree (``verified``: ``True``, ``False`` or ``None`` for "cannot tell"), why, in one short
sentence for people, and what the street looks like in USPS style (``123 MAIN ST APT 4B``).
A missing city or state is filled from the ZIP code's own record, never guessed; the
caller is told which parts were filled. :func:`verify_property` applies all that to a
:class:`~daemon.lead.Property` and says which warnings the lead gets.

What ``verified`` means:

* ``True``: a street address whose ZIP code exists and lies in the state and city given
  (the USPS name of the place, one of its accepted names, or a local name the USPS knows
  for it; a near-miss spelling is accepted and named in the reason), or, with no ZIP code,
  whose city exists in its state.
* ``False``: the parts contradict each other or the database: a ZIP code that does not exist
  or is no longer in use, a ZIP code in another state or another (not neighbouring) city, a
  city that is not in its state.
* ``None``: nothing to check (no ZIP code and no city with a state), not a US address, no
  street (a city and state alone is an area, not an address), a PO box (a mailing address,
  not a property), or a city that is a neighbour of the ZIP code's or looks misspelled with
  no ZIP code to anchor it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import usaddress
import zipcodes
from scourgify import normalize_address_record
from scourgify.address_constants import STATE_ABBREVIATIONS
from scourgify.exceptions import AddressNormalizationError

from daemon.lead import Property

# scourgify's table knows the states and DC by name; the other places with ZIP codes too
_TERRITORIES = {"PUERTO RICO": "PR", "GUAM": "GU", "VIRGIN ISLANDS": "VI", "US VIRGIN ISLANDS": "VI",
                "AMERICAN SAMOA": "AS", "NORTHERN MARIANA ISLANDS": "MP", "WASHINGTON DC": "DC"}
# ASCII digits only: zipcodes panics (a BaseException) on the digits of other scripts
_ZIP = re.compile(r"([0-9]{5})(?:-?[0-9]{4})?")
_PO_BOX = re.compile(r"^\s*(?:p\.?\s*o\.?|post\s+office)\s*box\s*#?\s*(?P<id>[\w-]+)\s*$", re.IGNORECASE)

# A line ending in another country's name, or holding a Canadian postcode, is not a US address
# ("…, 75001 Paris, France", "…, Toronto, ON M5H 2N2"). Only without a US state: Mexico, NY
# and Paris, TX are American. (No British postcode pattern: "Unit B2 3rd Floor" looks like one.)
_COUNTRIES = (
    "canada", "mexico", "méxico", "united kingdom", "uk", "u.k.", "great britain", "england",
    "scotland", "wales", "ireland", "france", "germany", "deutschland", "spain", "españa",
    "italy", "italia", "portugal", "netherlands", "belgium", "switzerland", "austria",
    "australia", "new zealand", "brazil", "brasil", "argentina", "colombia", "chile", "peru",
    "venezuela", "dominican republic", "costa rica", "panama", "bahamas", "jamaica", "india",
    "china", "japan", "south korea", "korea", "philippines", "israel",
    "united arab emirates", "uae",
)
_FOREIGN_END = re.compile(r"(?:^|[,\n]|\s{2,})\s*(?P<country>" + "|".join(map(re.escape, _COUNTRIES))
                          + r")\.?\s*$", re.IGNORECASE)
_CANADIAN_CODE = re.compile(r"\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z]\s?\d[ABCEGHJ-NPRSTV-Z]\d\b")

# Spellings of one place name that mean the same ("St. Petersburg" is "Saint Petersburg").
_CITY_WORDS = {"SAINT": "ST", "SAINTE": "STE", "FORT": "FT", "MOUNT": "MT", "NORTH": "N",
               "SOUTH": "S", "EAST": "E", "WEST": "W"}
#: within this many miles, a typed city that is not the ZIP code's is a neighbour, not wrong
_NEIGHBOUR_MILES = 10.0


@dataclass(frozen=True)
class AddressCheck:
    """What :func:`check_address` found.

    ``city`` and ``state`` are those given, or filled from the ZIP code's record (then named
    in ``filled``). ``usps`` is the street line in USPS style, ``None`` when it could not be
    standardized. ``reason`` is ``None`` only when there was no address at all.
    """

    verified: bool | None
    reason: str | None
    usps: str | None = None
    city: str | None = None
    state: str | None = None
    filled: tuple[str, ...] = ()


def check_address(street: str | None, city: str | None = None, state: str | None = None,
                  postal_code: str | None = None) -> AddressCheck:
    """Check the parts of one US address against the ZIP code database. Never raises.

    ``state`` may be a two-letter code or a name (``Florida``); ``postal_code`` five digits
    or ZIP+4. See the module docstring for what ``verified`` means.
    """
    street, city = _blank(street), _blank(city)
    state_given, postal_code = _blank(state), _blank(postal_code)
    code = _state_code(state_given)
    if not (street or city or state_given or postal_code):
        return AddressCheck(None, None)
    given = AddressCheck(None, None, None, city, code or state_given)
    if code is None and (country := _foreign(street, city)) is not None:
        return dataclasses.replace(given, reason=f"not a US address ({country})")
    if state_given and code is None:
        return dataclasses.replace(given, reason=f"{state_given!r} is not a US state",
                                   usps=_usps(street))
    box = _PO_BOX.match(street or "")
    usps = f"PO BOX {box['id'].upper()}" if box else _usps(street)
    zip5 = _zip5(postal_code)
    if postal_code and zip5 is None:
        found = AddressCheck(False, f"{postal_code!r} is not a ZIP code", usps, city, code)
    elif zip5 is not None:
        found = _check_zip(zip5, city, code, usps)
    elif city and code:
        found = _check_city(city, code, usps)
    elif city:
        found = AddressCheck(None, "no ZIP code or state to check the city against", usps, city)
    else:
        found = AddressCheck(None, "no ZIP code or city to check", usps, None, code)
    if found.verified is False:
        return found
    if box:
        return dataclasses.replace(
            found, verified=None, reason=f"a PO box is a mailing address, not a property; {found.reason}")
    if found.verified and not street:
        return dataclasses.replace(found, verified=None, reason=f"{found.reason}; no street given")
    return found


def verify_property(prop: Property) -> tuple[Property, tuple[str, ...]]:
    """``prop`` with ``address_verified``, ``address_check`` and ``address_usps`` set, a
    missing city or state filled from its ZIP code, and the warnings saying what was filled.

    The street is kept as given: the USPS line is upper case, spells out no accents and turns
    ``Loft 502`` into ``UNIT 502``, so it goes beside the street, not over it. Never raises.
    """
    check = check_address(prop.address, prop.city, prop.state, prop.postal_code)
    warnings: tuple[str, ...] = ()
    if check.filled:
        parts = " and ".join(f"{name} {getattr(check, name)}" for name in check.filled)
        warnings = (f"{parts} filled from ZIP code {_zip5(prop.postal_code)}",)
    return dataclasses.replace(
        prop, city=check.city if "city" in check.filled else prop.city,
        state=check.state if "state" in check.filled else prop.state,
        address_verified=check.verified, address_check=check.reason, address_usps=check.usps,
    ), warnings


def _check_zip(zip5: str, city: str | None, state: str | None, usps: str | None) -> AddressCheck:
    """The address checked against the record of its ZIP code."""
    record = _zip_record(zip5)
    if record is None:
        return AddressCheck(False, f"ZIP {zip5} does not exist", usps, city, state)
    home = f"{record['city']}, {record['state']}"
    if not record["active"]:
        return AddressCheck(False, f"ZIP {zip5} is no longer in use (it was {home})", usps, city, state)
    if state is not None and state != record["state"]:
        return AddressCheck(False, f"ZIP {zip5} is in {record['state']}, not {state}", usps, city, state)
    filled = () if state else ("state",)
    state = record["state"]
    if city is None:
        return AddressCheck(True, f"ZIP {zip5} is in {home}", usps, record["city"], state,
                            ("city", *filled))
    key = _city_key(city)
    if key == _city_key(record["city"]):
        return AddressCheck(True, f"ZIP {zip5} is in {home}", usps, city, state, filled)
    for kind, names in (("one of its names", record["acceptable_cities"]),
                        ("a local name for it", record["unacceptable_cities"])):
        if any(key == _city_key(name) for name in names):
            return AddressCheck(True, f"ZIP {zip5} is in {home}; {city} is {kind}", usps, city, state,
                                filled)
    alike = next((n for n in (record["city"], *record["acceptable_cities"]) if _misspelt(key, _city_key(n))),
                 None)
    if alike is not None:
        return AddressCheck(True, f"ZIP {zip5} is in {home}; {city!r} looks like a misspelling of {alike}",
                            usps, city, state, filled)
    if _neighbours(record, key):
        return AddressCheck(None, f"ZIP {zip5} is in {home}, not {city} (a neighbouring city)", usps, city,
                            state, filled)
    return AddressCheck(False, f"ZIP {zip5} is in {home}, not {city}", usps, city, state)


def _check_city(city: str, state: str, usps: str | None) -> AddressCheck:
    """An address without a ZIP code: does its city exist in its state?"""
    places = _places(state)
    key = _city_key(city)
    if key in places:
        return AddressCheck(True, f"{city} is a city in {state} (no ZIP code given)", usps, city, state)
    # Not False: without a ZIP code to anchor it, a place the database does not name may still
    # be a real town (its ZIP code filed under a neighbour's name), so nothing is refuted.
    close = next((names[0][0] for other, names in places.items() if _misspelt(key, other)), None)
    if close is not None:
        return AddressCheck(None, f"no city {city!r} in {state}; perhaps {close}", usps, city, state)
    return AddressCheck(None, f"no city {city!r} in {state} in the ZIP code database", usps, city, state)


def _neighbours(record: dict[str, Any], key: str) -> bool:
    """Whether a place named ``key`` in the ZIP code's state lies near the ZIP code."""
    try:
        lat, lon = float(record["lat"]), float(record["long"])
    except (TypeError, ValueError):
        return False
    for _name, other in _places(record["state"]).get(key, ()):
        try:
            miles = zipcodes.haversine(lon, lat, float(other["long"]), float(other["lat"]))
        except (TypeError, ValueError):
            continue
        if miles <= _NEIGHBOUR_MILES:
            return True
    return False


@functools.lru_cache(maxsize=4096)
def _zip_record(zip5: str) -> dict[str, Any] | None:
    try:
        found = zipcodes.matching(zip5)
    except (TypeError, ValueError):
        return None
    return found[0] if found else None


@functools.cache
def _places(state: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Every place name of a state (USPS names, accepted and local names), compared as
    :func:`_city_key`, to the name as spelled and the record of each of its ZIP codes."""
    places: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    try:
        records = zipcodes.filter_by(state=state)
    except (TypeError, ValueError):
        return places
    for record in records:
        if not record["active"]:
            continue
        for name in (record["city"], *record["acceptable_cities"], *record["unacceptable_cities"]):
            places.setdefault(_city_key(name), []).append((name, record))
    return places


def _usps(street: str | None) -> str | None:
    """The street line in USPS Publication 28 style, or ``None`` if it does not parse."""
    if not street:
        return None
    try:
        parts = normalize_address_record(street)
    except (AddressNormalizationError, usaddress.RepeatedLabelError):
        return None
    line = " ".join(p for p in (parts.get("address_line_1"), parts.get("address_line_2")) if p)
    return line or None


def _foreign(street: str | None, city: str | None) -> str | None:
    """The country a street line ends with, if not the US; ``"a foreign postcode"`` for a
    Canadian postcode in the street or city."""
    if (match := _FOREIGN_END.search(street or "")) is not None:
        return match["country"].rstrip(".")
    text = " ".join(p for p in (street, city) if p)
    if _CANADIAN_CODE.search(text.upper()) is not None and not re.search(r"\b\d{5}\b", text):
        return "a foreign postcode"
    return None


def _state_code(raw: str | None) -> str | None:
    text = re.sub(r"\s+", " ", (raw or "").replace(".", "").strip(" ,")).upper()
    if not text:
        return None
    if text in _states():
        return text
    return _TERRITORIES.get(text) or STATE_ABBREVIATIONS.get(text)


@functools.lru_cache(maxsize=1)
def _states() -> frozenset[str]:
    return frozenset({*STATE_ABBREVIATIONS.values(), *_TERRITORIES.values(), "AA", "AE", "AP", "FM",
                      "MH", "PW"})


def _zip5(raw: str | None) -> str | None:
    match = _ZIP.fullmatch((raw or "").strip())
    return match[1] if match else None


def _city_key(name: str) -> str:
    """A place name reduced to compare spellings: no accents, punctuation or case."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).upper()
    words = re.sub(r"[^A-Z0-9 ]", " ", text.replace("'", "").replace(".", " ")).split()
    return " ".join(_CITY_WORDS.get(w, w) for w in words)


def _misspelt(typed: str, name: str) -> bool:
    """Whether ``typed`` is ``name`` with a slip or two: one letter wrong, missing, added or
    swapped with its neighbour (two in a name of eight letters or more); never for a name
    under five letters, where one letter makes another town."""
    if min(len(typed), len(name)) < 5 or typed == name or abs(len(typed) - len(name)) > 2:
        return False
    allowed = 1 if len(name) < 8 else 2
    # optimal string alignment distance (Levenshtein plus adjacent transpositions)
    before: list[int] = []
    row = list(range(len(name) + 1))
    for i, a in enumerate(typed, 1):
        current = [i] + [0] * len(name)
        for j, b in enumerate(name, 1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (a != b))
            if i > 1 and j > 1 and a == name[j - 2] and typed[i - 2] == b:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
        if min(row) > allowed:
            return False
    return row[-1] <= allowed


def _blank(raw: str | None) -> str | None:
    text = (raw or "").strip(" ,")
    return text or None
