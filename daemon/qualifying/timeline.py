"""When a person wants to act, from the time phrases in what they typed: pure, no clock.

``find_times(text, today)`` returns every time phrase it understands in ``text`` (English and
Spanish), each as the number of days from ``today`` it stands for, where it is in the text,
and whether it is a *now* word without a date ("ASAP", "right away"). ``today`` is passed in
(the lead's received date): this module never reads the wall clock.

The conversions follow what a person means, not the calendar's strictest reading:

- "today"/"tonight" 0, "tomorrow" 1, a weekday its next date, "this week(end)" the coming
  Sunday, "next week" the Sunday after;
- "in/within N days|weeks|months" N × 1/7/30, a form range ("3-6 months") its upper end,
  "a couple of months" 60, "a few months" 90, "another year"/"within a year" 365,
  "a year or two" 730;
- "in <month>" / "end of <month>" / "<month>-ish" the last day of that month, "by <month>"
  and "before <month>" its first day, "mid-<month>" the 15th, "first week of <month>" the 7th,
  an exact date (``01/15/2027``, ``2027-01-15``, ``Jan 15``, ``the 31st``) that date;
- "end of the month"/"this month" the month's last day, "end of the year" Dec 31,
  "next year" Dec 31 of next year, "spring"/"summer"/"fall" the last day of May/Aug/Nov
  of the next such season, "after the holidays" Jan 7, "after school lets out" Jun 15.

Dates in the past (a month already gone this year is next year's), phrases that describe
someone else's state ("until February", "since 1979") or a past event ("had a baby in May",
"closed on November 20", "last weekend") are left out.

Why not ``dateparser``: it reads one date string well, but it does not find phrases inside
free text, and its readings differ from how a lead form's answers are meant ("by Feb" is
Feb 1, "in Feb" the end of February, "spring" a deadline); the rules here are short.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

import regex

_MONTHS = {
    "jan": 1, "january": 1, "enero": 1, "feb": 2, "february": 2, "febrero": 2, "mar": 3,
    "march": 3, "marzo": 3, "apr": 4, "april": 4, "abril": 4, "may": 5, "mayo": 5, "jun": 6,
    "june": 6, "junio": 6, "jul": 7, "july": 7, "julio": 7, "aug": 8, "august": 8, "agosto": 8,
    "sep": 9, "sept": 9, "september": 9, "septiembre": 9, "oct": 10, "october": 10,
    "octubre": 10, "nov": 11, "november": 11, "noviembre": 11, "dec": 12, "december": 12,
    "diciembre": 12,
}
_MONTH = (r"(?P<month>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|enero|febrero|marzo|abril|mayo"
          r"|junio|julio|agosto|septiembre|octubre|noviembre|diciembre)\.?")
_DAYS = {"monday": 0, "mon": 0, "lunes": 0, "tuesday": 1, "tues": 1, "tue": 1, "martes": 1,
         "wednesday": 2, "wed": 2, "miercoles": 2, "miércoles": 2, "thursday": 3, "thurs": 3,
         "thu": 3, "jueves": 3, "friday": 4, "fri": 4, "viernes": 4, "saturday": 5, "sat": 5,
         "sabado": 5, "sábado": 5, "sunday": 6, "sun": 6, "domingo": 6}
_WEEKDAY = (r"(?P<weekday>monday|tuesday|wednesday|thursday|friday|saturday|sunday|tues|thurs"
            r"|lunes|martes|mi[eé]rcoles|jueves|viernes|s[aá]bado|domingo)")
_NUMBERS = {"a": 1, "an": 1, "one": 1, "un": 1, "una": 1, "uno": 1, "two": 2, "dos": 2,
            "three": 3, "tres": 3, "four": 4, "cuatro": 4, "five": 5, "cinco": 5, "six": 6,
            "seis": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "diez": 10, "eleven": 11,
            "twelve": 12, "couple": 2, "a couple": 2, "a couple of": 2, "couple of": 2,
            "few": 3, "a few": 3, "several": 3, "un par de": 2, "unos": 3, "unas": 3}
_NUM = (r"(?P<num>\d{1,3}|a\s+couple(?:\s+of)?|couple(?:\s+of)?|a\s+few|few|several|un\s+par\s+de"
        r"|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|un[oa]?|dos|tres"
        r"|cuatro|cinco|seis|diez|unos|unas)")
_UNIT = (r"(?P<unit>days?|d[ií]as|wks?|weeks?|semanas?|mos?|mths?|months?|meses|mes|yrs?|years?"
         r"|a[nñ]os?)")
_UNIT_DAYS = {"d": 1, "w": 7, "s": 7, "m": 30, "y": 365, "a": 365}

#: the end of the current season's first months: spring ends May 31, summer Aug 31, fall Nov 30
_SEASONS = {"spring": 5, "primavera": 5, "summer": 8, "verano": 8, "fall": 11, "autumn": 11,
            "otoño": 11, "otono": 11, "winter": 2, "invierno": 2}

#: words saying a date is someone else's state or the past, not when the writer wants to act
_NOT_A_WISH = regex.compile(
    r"(?:\b(?:until|till|til|since|ago|last|had|was(?!\s+wondering)|were(?!\s+wondering)|closed|expired|"
    r"hasta|desde|tenant\s+in\s+place|deployed)\b[^.?!;,]{0,25}$)")

#: ASAP and its kin: now, with no date
_NOW = regex.compile(
    r"\b(?:asap|a\.s\.a\.p|right\s+away|immediately|urgent(?:ly)?|as\s+soon\s+as"
    r"\s+possible|(?:sell|move|buy|rent)\s+(?:it\s+)?(?:fast|quickly|quick)|fast|lo\s+antes\s+posible"
    r"|cuanto\s+antes|de\s+inmediato|ready\s+to\s+(?:write|make|put\s+in|submit)\s+an?\s+offer"
    r"|before\s+someone\s+(?:else\s+)?(?:grabs|takes|gets)|planning\s+to\s+(?:buy|sell|move)\s*[:?]"
    r"\s*now|timeframe\s*[:?]\s*(?:now|immediately))\b")


@dataclass(frozen=True)
class Time:
    """One time phrase: ``days`` from today (``None`` for a *now* word without a date)."""

    phrase: str
    start: int
    days: int | None
    now: bool = False


def find_times(text: str, today: date | None) -> list[Time]:
    """Every time phrase in ``text`` (lower-cased is fine), in the order they appear.

    With no ``today``, only the *now* words (ASAP, "right away") are found: a date cannot be
    counted from an unknown day. Never raises.
    """
    text = text.lower()
    found: list[Time] = []
    taken: list[tuple[int, int]] = []

    def add(m: regex.Match[str], days: int | None, now: bool = False) -> None:
        if any(s < m.end() and m.start() < e for s, e in taken):
            return
        if _NOT_A_WISH.search(text[max(0, m.start() - 40):m.start()]):
            return
        taken.append((m.start(), m.end()))
        found.append(Time(m[0].strip(), m.start(), days, now))

    if today is not None:
        for pattern, convert in _PATTERNS:
            for m in pattern.finditer(text):
                days = convert(m, today)
                if days is not None and days >= 0:
                    add(m, days, now=days <= 11)
    for m in _NOW.finditer(text):
        add(m, None, now=True)
    return sorted(found, key=lambda t: t.start)


def _g(m: regex.Match[str], name: str) -> str:
    """The text of group ``name`` ("" when the pattern has no such group or it did not take part)."""
    return m.groupdict().get(name) or ""


def _days(d: date, today: date) -> int:
    return (d - today).days


def _month_year(month: int, today: date) -> int:
    """The year of the next ``month`` from ``today`` (this month counts as this year)."""
    return today.year if month >= today.month else today.year + 1


def _last_day(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _number(word: str) -> int | None:
    word = regex.sub(r"\s+", " ", word.strip())
    return int(word) if word.isdigit() else _NUMBERS.get(word)


def _weekday(m: regex.Match[str], today: date) -> int:
    ahead = (_DAYS[_g(m, "weekday").replace("é", "e").replace("á", "a")] - today.weekday()) % 7
    return ahead or 7


def _coming_sunday(today: date) -> int:
    return (6 - today.weekday()) % 7


def _month_phrase(m: regex.Match[str], today: date) -> int | None:
    how = (_g(m, "how") or "").strip().lower()
    word = _g(m, "month").rstrip(".").lower()
    if not how and word in ("may", "mar", "march", "jan", "sat", "dec"):
        return None  # "we may buy", "mar" (the sea): a month only after "in", "by", …
    month = _MONTHS[word]
    year = _month_year(month, today)
    if how in ("by", "before", "antes de", "para"):
        return _days(date(year, month, 1), today)
    if how.startswith("mid") or how.startswith("mediados"):
        return _days(date(year, month, 15), today)
    if how.startswith("first week") or how.startswith("early"):
        return _days(date(year, month, 7), today)
    return _days(_last_day(year, month), today)


def _exact(m: regex.Match[str], today: date) -> int | None:
    month = _MONTHS[_g(m, "month").rstrip(".").lower()] if _g(m, "month") else int(_g(m, "mm"))
    day = int(_g(m, "day"))
    year = int(_g(m, "year")) if _g(m, "year") else None
    if year is not None and year < 100:
        year += 2000
    try:
        when = date(year or _month_year(month, today), month, day)
        if year is None and when < today:
            when = date(when.year + 1, month, day)
    except ValueError:
        return None
    return _days(when, today)


def _day_of_month(m: regex.Match[str], today: date) -> int | None:
    day = int(_g(m, "day"))
    year, month = today.year, today.month
    if day < today.day:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    try:
        when = date(year, month, day)
    except ValueError:
        return None
    if _g(m, "weekend"):  # the weekend of the 12th: its Sunday
        when += timedelta(days=(6 - when.weekday()) % 7)
    return _days(when, today)


def _duration(m: regex.Match[str], today: date) -> int | None:
    count = _number(_g(m, "num")) if _g(m, "num") else 1
    if _g(m, "high"):
        count = int(_g(m, "high"))
    if count is None:
        return None
    if _g(m, "or_two"):
        count = 2
    return count * _UNIT_DAYS[_g(m, "unit")[0]]


def _season(m: regex.Match[str], today: date) -> int:
    end = _SEASONS[_g(m, "season").replace("ñ", "n")]
    year = today.year if end > today.month else today.year + 1
    if end == 2:  # winter ends in February of the next year
        year = today.year + 1 if today.month > 2 else today.year
    if _g(m, "how"):  # "before summer": the season's first day ("by summer" is its end)
        start = (end - 2 - 1) % 12 + 1
        first = date(year if start <= end else year - 1, start, 1)
        return _days(first, today) if first >= today else _days(_last_day(year, end), today)
    return _days(_last_day(year, end), today)


_C = regex.IGNORECASE | regex.VERSION1
_PATTERNS = [
    (regex.compile(r"\b(?:today|tonight|this\s+(?:evening|afternoon|morning)|hoy|esta\s+noche)\b", _C),
     lambda m, t: 0),
    (regex.compile(r"\b(?:tomorrow|tmrw|tmr|mañana|manana)\b", _C), lambda m, t: 1),
    (regex.compile(r"\b(?:within\s+(?:the\s+)?(?:next\s+)?|in\s+(?:the\s+)?(?:next\s+)?)week\b", _C),
     lambda m, t: 7),
    (regex.compile(r"\b(?:end\s+of\s+next\s+week|next\s+week(?:end)?|nex\s+week|la\s+pr[oó]xima\s+semana"
                   r"|la\s+semana\s+que\s+viene)\b", _C),
     lambda m, t: _coming_sunday(t) + 7),
    (regex.compile(r"\b(?:this\s+week(?:end)?|any\s+day\s+this\s+week|esta\s+semana|este\s+fin\s+de\s+semana)\b", _C),
     lambda m, t: _coming_sunday(t)),
    (regex.compile(r"\b(?:(?:by\s+)?(?:the\s+)?end\s+of\s+(?:the\s+|this\s+)?month|this\s+month|este\s+mes"
                   r"|fin\s+de\s+mes)\b", _C),
     lambda m, t: _days(_last_day(t.year, t.month), t)),
    (regex.compile(r"\bnext\s+month|el\s+pr[oó]ximo\s+mes\b", _C),
     lambda m, t: _days(_last_day(t.year + (t.month == 12), t.month % 12 + 1), t)),
    (regex.compile(r"\b(?:(?:by\s+|before\s+)?(?:the\s+)?end\s+of\s+(?:the\s+|this\s+)?year|this\s+year"
                   r"|fin\s+de\s+a[nñ]o)\b", _C),
     lambda m, t: _days(date(t.year, 12, 31), t)),
    (regex.compile(r"\b(?:next\s+year|el\s+pr[oó]ximo\s+a[nñ]o|el\s+a[nñ]o\s+que\s+viene)\b", _C),
     lambda m, t: _days(date(t.year + 1, 12, 31), t)),
    (regex.compile(r"\b(?:after\s+(?:the\s+)?(?:holidays|new\s+year(?:'s)?)|despu[eé]s\s+de\s+(?:las\s+fiestas"
                   r"|navidad|a[nñ]o\s+nuevo))\b", _C),
     lambda m, t: _days(date(t.year + (t.month >= 11), 1, 7), t)),
    (regex.compile(r"\b(?:after\s+(?:the\s+)?kids?\s+(?:finish|are\s+out\s+of|get\s+out\s+of)\s+school"
                   r"|when\s+school\s+(?:ends|lets\s+out|is\s+out)|end\s+of\s+the\s+school\s+year)\b", _C),
     lambda m, t: _days(date(t.year + (t.month >= 6), 6, 15), t)),
    (regex.compile(r"\b(?P<how>(?:before|antes\s+de)\s+(?:the\s+|la\s+|el\s+)?)?"
                   r"(?:next\s+|this\s+(?:coming\s+)?|la\s+pr[oó]xima\s+|el\s+pr[oó]ximo\s+|en\s+(?:la\s+|el\s+)?)?"
                   r"(?P<season>spring|summer|fall|autumn|winter|primavera|verano|oto[nñ]o|invierno)\b(?!\s+(?:semester|term|quarter|classes))", _C),
     _season),
    # exact dates: 01/15/2027, 2027-01-15, Jan 15(th)( 2027), January 4th, 15 de enero
    (regex.compile(r"\b(?P<year>20\d\d)-(?P<mm>\d\d)-(?P<day>\d\d)\b", _C), _exact),
    (regex.compile(r"\b(?P<mm>1[0-2]|0?[1-9])/(?P<day>3[01]|[12]\d|0?[1-9])/(?P<year>(?:20)?\d\d)\b", _C),
     _exact),
    (regex.compile(r"\b" + _MONTH + r"\s+(?P<day>3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>20\d\d))?",
                   _C), _exact),
    (regex.compile(r"\b(?P<day>3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?\s+(?:of\s+|de\s+)?" + _MONTH
                   + r"(?:,?\s+(?:de\s+)?(?P<year>20\d\d))?", _C), _exact),
    # month phrases: by Feb, in February, end of January, mid-January, first week of January
    (regex.compile(r"(?:\b(?P<how>by|before|antes\s+de|para|in|en|end\s+of|finales\s+de|late|mid-?|mediados\s+de"
                   r"|first\s+week\s+of|early|starting(?:\s+in)?|around|sometime\s+in)(?:\s+|(?<=-)))?"
                   r"\b" + _MONTH + r"(?:-?ish)?\b", _C), _month_phrase),
    (regex.compile(r"\b(?P<weekend>weekend\s+of\s+)?the\s+(?P<day>3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)\b", _C),
     _day_of_month),
    (regex.compile(r"\b(?:this\s+|next\s+|on\s+|el\s+|este\s+)?" + _WEEKDAY + r"\b", _C),
     lambda m, t: _weekday(m, t)),
    # durations: within 30 days, in 2 wks, next couple months, 6-12 months, a year or two
    (regex.compile(r"\b(?:(?:with)?in|next|the\s+next|within\s+the\s+next|in\s+the\s+next|for\s+another|another"
                   r"|en|dentro\s+de|en\s+los\s+pr[oó]ximos|timeframe\s*:|timeline\s*:|plazo\s*:)\s+"
                   r"(?:about\s+|around\s+|roughly\s+|approximately\s+|~\s*|unos\s+|unas\s+)?"
                   r"(?:(?P<low>\d{1,2})\s*(?:-|–|to)\s*(?P<high>\d{1,2})|" + _NUM + r")?\s*" + _UNIT
                   + r"(?P<or_two>\s+or\s+two)?\b", _C), _duration),
    (regex.compile(r"(?:timeframe|timeline|when)[^:\n]{0,30}:\s*(?P<low>\d{1,2})\s*(?:-|–|to)\s*(?P<high>\d{1,2})"
                   r"\s*(?P<unit>months?|mos?|weeks?|days?|years?)(?P<num>)(?P<or_two>)", _C), _duration),
]
