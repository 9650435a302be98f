"""Grounding: a value read by a model is kept only if the email itself says it.

A language model asked to read an email may answer with a phone number, an email address or
a name that is nowhere in it — a plausible value it made up. No such value may ever reach an
agent. ``ground`` checks each field of a model's answer against the text the model was
shown and keeps only what that text holds:

- an email address must be an address written in the text, whole (case aside);
- a phone number's digits must be the digits of one number written in the text (``(305)
  555-0142``, ``305.555.0142``, ``305 / 555 / 0142``, ``305–555–0142`` and ``+1 305 555
  0142`` all hold ``3055550142``), within one line;
- a name's words, and a street address's, city's and MLS number's words, must each be words
  of the text (case and accents aside); a state may be written as its code or its name;
- a message must be a passage of the text (spacing and quotes aside);
- a price or budget must be written in the text (``450000``, ``450,000``, ``$450k``,
  ``1.2M``);
- ``intent`` is a label (buy, sell, rent), not a value the text must hold.

What is dropped comes back as a warning naming the field and saying why, without the value
in full (a made-up phone number is somebody's number). Pure; never raises.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from daemon.qualifying.normalize import STATES

#: fields whose every word must be a word of the text
WORDED = ("full_name", "first_name", "last_name", "address", "city", "mls_id", "url")
MONEY = ("price", "budget_min", "budget_max")
LABELS = ("intent",)

#: a run of digits and the separators people write numbers with (hyphens, en and em dashes,
#: slashes, dots, brackets, spaces) on one line
_PHONE_RUN = re.compile(r"\+?\d[\d \t().\-/\u2010-\u2015]{5,}\d")
_EMAIL = re.compile(r"[\w.+%'-]+@[\w-]+(?:\.[\w-]+)+")
_WORD = re.compile(r"\w+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


@dataclass(frozen=True)
class Grounded:
    """The fields the text holds, and a warning for each field that was dropped."""

    fields: dict[str, str]
    dropped: tuple[str, ...]


def ground(answer: Mapping[str, object], text: str, *, who: str = "the model") -> Grounded:
    """The fields of ``answer`` that ``text`` holds; the rest dropped, each with a warning.

    ``answer`` maps lead field names to what a model read (strings or numbers; ``None`` and
    empty values are skipped); ``who`` names the model in the warnings.
    """
    folded = _fold(text)
    words = set(_WORD.findall(folded))
    kept: dict[str, str] = {}
    dropped: list[str] = []
    for key, raw in answer.items():
        if raw is None or isinstance(raw, bool) or str(raw).strip() == "":
            continue
        value = str(raw).strip()
        problem = _problem(key, value, text, folded, words)
        if problem is None:
            kept[key] = value
        else:
            dropped.append(f"{who}: {key} {problem}; dropped")
    return Grounded(kept, tuple(dropped))


def _problem(key: str, value: str, text: str, folded: str, words: set[str]) -> str | None:
    """Why ``text`` does not hold ``value`` for ``key`` (``None``: it does)."""
    if key in LABELS:
        return None
    if key == "email":
        written = {e.casefold().rstrip(".") for e in _EMAIL.findall(text)}
        return None if value.casefold() in written else f"{_masked(value)} is not in the email"
    if key == "phone":
        return None if _phone_in(value, text) else f"{_masked(value)} is not a number written in the email"
    if key == "state":
        code = value.upper()
        names = [n.casefold() for n, c in STATES.items() if c == code]
        if _fold(value) in words or any(n in folded for n in names):
            return None
        return f"{value!r} is not in the email"
    if key == "postal_code":
        return None if value in text else f"{value!r} is not in the email"
    if key == "message":
        return None if _passage(value) in _passage(text) else "is not a passage of the email"
    if key in MONEY:
        return None if _money_in(value, text) else f"{value!r} is not written in the email"
    if key in WORDED:
        missing = [w for w in _WORD.findall(_fold(value)) if w not in words]
        return None if not missing else f"{_masked(value) if key.endswith('name') else repr(value)} has words not in the email"
    return "is not a field a model may read"


def _fold(text: str) -> str:
    """Case and accents aside: ``José NÚÑEZ`` → ``jose nunez``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _passage(text: str) -> str:
    return " ".join(_fold(text).translate(_QUOTES).split())


def _phone_in(value: str, text: str) -> bool:
    digits = re.sub(r"\D", "", value)
    if len(digits) < 7:
        return False
    national = digits[1:] if len(digits) == 11 and digits.startswith("1") else digits
    # the number may share its run with a neighbour ("ZIP 33139 (305) 555-0142",
    # "305-555-0142 / 2 beds"): its digits must stand together in one run
    return any(national in re.sub(r"\D", "", run) for run in _PHONE_RUN.findall(text))


def _money_in(value: str, text: str) -> bool:
    try:
        amount = float(value.replace(",", "").replace("$", ""))
    except ValueError:
        return False
    written = {m.replace(",", "") for m in re.findall(r"\d[\d,]*(?:\.\d+)?", text)}
    if any(_same(float(w), amount) for w in written if w):
        return True
    for number, suffix in re.findall(r"(\d+(?:\.\d+)?)\s*([kKmM])\b", text):
        scale = 1_000 if suffix in "kK" else 1_000_000
        if _same(float(number) * scale, amount):
            return True
    return False


def _same(a: float, b: float) -> bool:
    return abs(a - b) < 0.5


def _masked(value: str) -> str:
    """A value shown without giving it away: ``+1305•••0142``, ``ja•••@example.com``."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:2]}•••@{domain}"
    if sum(c.isdigit() for c in value) >= 7:
        return f"a number ending {re.sub(r'[^0-9]', '', value)[-2:]}"
    return f"{value[:1]}•••" if len(value) > 1 else "•••"
