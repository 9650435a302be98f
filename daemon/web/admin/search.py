"""What was typed in the leads page's search box, as search terms.

One box finds a lead by name, email, phone or id: ``(305) 555-0142``, ``305.555.0142``
and ``+1 305 555 0142`` all find the lead stored as ``+13055550142`` (the query is
normalized like a lead's phone), and a partial number such as ``555-0142`` finds it by
its digits. ``#12`` or ``12`` finds lead 12.
"""

from __future__ import annotations

import re
from dataclasses import replace

from daemon.qualifying.normalize import normalize_phone
from storage.lead_search import LeadFilter

#: a query of this many digits or more is also tried as part of a phone number
MIN_DIGITS = 4


def with_query(f: LeadFilter, query: str | None, region: str = "US") -> LeadFilter:
    """``f`` with the search terms of ``query`` added (any one of them may match)."""
    q = (query or "").strip()
    if not q:
        return f
    digits = re.sub(r"\D", "", q)
    only_digits_and_punctuation = re.fullmatch(r"[\d\s().+#-]+", q) is not None
    lead_id = None
    if re.fullmatch(r"#?\d{1,9}", q):
        lead_id = int(q.lstrip("#"))
    phone = None
    digit_run = None
    if only_digits_and_punctuation and len(digits) >= MIN_DIGITS:
        phone = normalize_phone(q, region)
        digit_run = digits
        if phone is None and len(digits) == 11 and digits.startswith("1"):
            digit_run = digits[1:]
    text = None if only_digits_and_punctuation else q
    return replace(f, text=text, phone=phone, digits=digit_run, lead_id=lead_id)
