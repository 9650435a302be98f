"""What an inquiry says about the transaction: intent, urgency, financing, timeline. Pure.

``read_inquiry(message, today=…, context=…)`` reads the text a person typed (plus an
optional hint about where it came from: the lead's source, the email's subject, "rental
listing") and returns an :class:`~daemon.lead.Inquiry`. No I/O, no network, no clock:
relative dates are counted from the ``today`` passed in (the lead's received date).

It reads phrases, not bare keywords:

- **negation and hedging** ("not pre-approved yet", "I'm not looking to buy, just rent",
  "no rush", "just looking"); a negated *time* is still the intent ("not looking to buy for
  another year" is a buyer, later);
- **keywords that mean nothing** are taken out before reading: other people's words
  ("the listing says cash only", "cash buyers welcome", "my neighbor is an investor",
  "the seller's agent", "my buyer backed out"), idioms ("sell me on", "buy some time",
  "cash flow is tight", "flip-flopping") and the writer's current situation ("we rent right
  now", "no home to sell");
- **corrections**: for the financing facts, the later statement wins ("we'll pay cash —
  actually scratch that, we'll finance"; "we're pre-approved — well, we will be next week");
- **texting style and typos**: common shorthand is expanded ("rn", "u", "w/", "wks") and a
  word one letter away from a word the reader knows is read as that word ("morgage");
- **Spanish** phrases for the same cues ("comprar", "vender", "rentar", "de contado",
  "no tengo prisa").

The financing facts (``pre_approved``, ``cash``, ``investor``) are about a purchase: for any
other intent they are ``None``. Dates come from :mod:`daemon.qualifying.timeline`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import regex

from daemon.lead import Inquiry, InquiryIntent, Urgency
from daemon.qualifying.timeline import Time, find_times

_F = regex.IGNORECASE | regex.VERSION1

# -- normalizing texting style ------------------------------------------------------------

_SHORTHAND = [
    (r"[’‘`´]", "'"), (r"[“”]", '"'), (r"[–—]", " - "), (r"\brn\b", "right now"),
    (r"\bu\b", "you"), (r"\bur\b", "your"), (r"\bw/", "with "), (r"\bw\b(?=\s+(?:both|my|our|the))", "with"),
    (r"\bwks?\b", "weeks"), (r"\bmos\b", "months"), (r"\bavail\b", "available"), (r"\bim\b", "i'm"),
    (r"\bdont\b", "don't"), (r"\bcant\b", "can't"), (r"\bhavent\b", "haven't"), (r"\bwont\b", "won't"),
    (r"\bnex\b", "next"), (r"\bhous\b", "house"), (r"\bstil\b", "still"), (r"\bpls\b|\bplz\b", "please"),
    (r"\bpre[\s-]*(approv|aprov|qualif|aprob|calif)", r"pre-\1"), (r"\bpreapprov", "pre-approv"),
    (r"\bprequalif", "pre-qualif"), (r"\bpre-aprov(?=al|ed)", "pre-approv"),
]
#: words a one-letter typo of which is read as the word (texting: "morgage", "intrested")
_KNOWN = ("mortgage", "interested", "approved", "approval", "available", "investor", "investors",
          "browsing", "looking", "purchase", "selling", "pre-approved", "pre-approval", "lender",
          "relocating", "financing", "tomorrow", "february", "january", "weekend")
_TYPOS = [(word, regex.compile(r"(?:" + regex.escape(word) + r"){e<=1}", _F)) for word in _KNOWN]


_SHORTHAND_RES = [(regex.compile(pattern, _F), repl) for pattern, repl in _SHORTHAND]
_WORD = regex.compile(r"[a-z][a-z-]{4,}[a-z]")
#: what a person types into a form fits in this; a longer "message" is a quoted thread or a
#: pasted listing, and reading all of it would cost more than the rest of parsing the email
MAX_CHARS = 2000


def _normalize(text: str) -> str:
    out = text[:MAX_CHARS].lower()
    for pattern, repl in _SHORTHAND_RES:
        out = pattern.sub(repl, out)

    def fix(m: regex.Match[str]) -> str:
        word = m[0]
        if len(word) < 6 or word in _KNOWN:
            return word
        for known, fuzzy in _TYPOS:
            # the first letter is kept: "vender" (Spanish, to sell) is not "lender"
            if known[0] == word[0] and abs(len(known) - len(word)) <= 1 and fuzzy.fullmatch(word):
                return known
        return word

    return _WORD.sub(fix, out)


# -- small patterns used inside the readers, compiled once

_ANSWER_NO = regex.compile(r"\s*[?:]+\s*(?:no|nope|not\s+yet|n)\b", _F)
_ANSWER_YES = regex.compile(r"\s*[?:]+\s*(?:yes|yep|y|s[ií])\b", _F)
_TIMING_AFTER = regex.compile(r"\s*(?:for\s+(?:another|a|the\s+next)|until|till|yet|right\s+now|this\s+year)\b", _F)
_UNTIL = regex.compile(r"\buntil\b", _F)
_LETTERS = regex.compile(r"[^\W\d_]+", _F)
_PURCHASE = regex.compile(r"\b(?:buy|purchase|own)\b", _F)
_YET_AFTER = regex.compile(r"[^.?!]{0,12}\byet\b", _F)
_BY_TRADE = regex.compile(r"\s+by\s+trade", _F)


# -- a phrase found, and whether it is negated -------------------------------------------

_NEGATORS = regex.compile(
    r"\b(?:not|no|never|without|haven't|hasn't|havent|don't|didn't|doesn't|isn't|aren't|won't|"
    r"wasn't|weren't|can't|cannot|nor|yet\s+to|sin|nunca|ni)\b|n't\b")
#: where a negation stops reaching: the end of a clause
_CLAUSE = regex.compile(r"[.?!;,:\n()]|\s-\s|\bbut\b|\bjust\b|\bpero\b|\bso\b|\band\b")


@dataclass(frozen=True)
class _Hit:
    phrase: str
    start: int
    end: int
    negated: bool
    #: the phrase with the words that negate it ("not yet pre-approved"), for the evidence
    said: str = ""


def _clause_before(text: str, start: int, reach: int = 40) -> str:
    before = text[max(0, start - reach):start]
    cuts = list(_CLAUSE.finditer(before))
    return before[cuts[-1].end():] if cuts else before


def _hits(pattern: regex.Pattern[str], text: str) -> Iterable[_Hit]:
    for m in pattern.finditer(text):
        before = _clause_before(text, m.start())
        after = text[m.end():m.end() + 14]
        negated = bool(_NEGATORS.search(before)) or bool(
            _ANSWER_NO.match(after))
        if _ANSWER_YES.match(after):
            negated = False
        said = f"{before.strip()} {m[0].strip()}".strip() if negated else m[0].strip()
        yield _Hit(m[0].strip(), m.start(), m.end(), negated, said)


def _blank(text: str, patterns: Iterable[regex.Pattern[str]]) -> str:
    """``text`` with each phrase of ``patterns`` replaced by underscores (positions kept)."""
    for pattern in patterns:
        text = pattern.sub(lambda m: "_" * len(m[0]), text)
    return text


# -- intent -------------------------------------------------------------------------------

#: phrases whose buy/sell/rent words are not the writer's transaction
_INTENT_TRAPS = [
    r"\bsell\s+me\s+on\b", r"\bbuy\s+(?:us\s+|me\s+)?some\s+time\b", r"\bflip-?flop\w*",
    r"\b(?:seller|buyer|listing)'?s'?\s+agents?\b", r"\b(?:my|our|the|a|any|investor|cash)\s+buyers?\b",
    r"\bbuyers?\s+(?:looking|backed|who|that|need|want)\b[^.?!,;]*", r"\binvestors?\s+who\s+buy\b[^.?!,;]*",
    r"\b(?:landlord|owner|neighbou?r'?s?(?:\s+\w+)?|company|they|he|she)\s+(?:just\s+|already\s+)?"
    r"(?:sold|is\s+selling|is\s+buying|bought|buying|selling)\b[^.?!,;]*",
    r"\b(?:is|was|being|been|got)\s+(?:being\s+)?sold\b", r"\bno\s+(?:home|house)\s+to\s+sell\b",
    r"\b(?:don't|do\s+not|won't)\s+(?:have|need)\s+to\s+(?:list|sell)\b[^.?!,;]*",
    r"\balready\s+(?:sold|bought|closed\s+on|under\s+contract|purchased)\b[^.?!,;]*",
    r"\bhave\s+you\s+already\s+bought[^?]*\?\s*yes\b",
    r"\b(?:i'd|i\s+would|we'd|we\s+would)\s+buy\s+it\s+if\b[^.?!,]*",
    r"\b(?:we|i)\s+(?:rent|are\s+renting|am\s+renting|'re\s+renting)\b(?=\s+(?:right\s+now|now|currently|"
    r"at\s+the\s+moment|today|and|so|,|\.))", r"\b(?:we're|i'm)\s+renting\s+(?:right\s+now|now|currently)\b",
    r"\brenting\s+currently\b", r"\bsince\s+we\s+rent\b", r"\b(?:rent(?:ing)?|rented)\s+(?:it\s+|them\s+|this\s+)?out\b",
    r"\brenting\s+out\b", r"\brent\s+the\s+other\b", r"\brentarla\b", r"\brental\s+(?:history|income)\b",
    r"\b(?:raising|raise|paying|pay)\s+(?:the\s+|my\s+|our\s+)?(?:rent|it)\b", r"\bcash\s+for\s+rent\b",
    r"\bowned\s+or\s+leased\b", r"\bleased\s+solar\b", r"\bse\s+vende\s+o\s+se\s+renta\b",
    r"\bfor\s+sale\s+or\s+(?:for\s+)?rent\b", r"\b(?:my|our)\s+lease\s+(?:is\s+up|ends|expires|runs\s+out)\b",
    r"\bafter\s+my\s+lease\b", r"\btenant'?s?\s+lease\b", r"\blease\s+length\b",
    r"\bwhile\s+(?:we|i)\s+(?:save|look|search|house[-\s]hunt|figure)[^.?!,;]*",
    r"\b(?:keep|keeping)\s+(?:our|my|the)\s+(?:old\s+|current\s+)?(?:home|house|place|condo)\s+as\s+a\s+rental\b",
]

_INTENT_TRAP_RES = [regex.compile(p, _F) for p in _INTENT_TRAPS]

_CUE_TEXT: tuple[tuple[InquiryIntent, float, str], ...] = (
    ("buy", 3, r"\b(?:want|wants|wanting|need|needs|looking|hoping|planning|plan|ready|trying|thinking(?:\s+of|"
               r"\s+about)?|like|love|interested|decided|going|able)\s+(?:to\s+|in\s+)?(?:buy|purchase|buying|"
               r"purchasing)\b"),
    ("buy", 3, r"\bi\s+need:\s*to\s+buy\b|\b(?:buy|buying|purchase|purchasing)\s+(?:a|an|our|my|the|this|that|"
               r"it|him|her|something|one|another|property|land|homes?|houses?|condos?|first|\d)\b"),
    ("buy", 3, r"\b(?:make|write|put\s+in|submit|send)\s+(?:an?\s+|our\s+)?offer|\bsend\s+ours\b|\bcomprar\b|"
               r"\bcompra(?:r)?la\b|\bme\s+interesa\s+comprar\b|\bhome\s+search\b|\bhouse\s+hunting\b|"
               r"\b(?:find|found)\s+(?:something|a\s+(?:new\s+)?(?:place|home|house))\s+to\s+buy\b|"
               r"\bselling\s+until\s+we\s+(?:find|buy)\b|\bbuy\s+first\b|\bthen\s+buy\b|"
               r"\b(?:to|will|going\s+to|ready\s+to|want\s+to|like\s+to)\s+(?:make\s+an\s+|put\s+in\s+an\s+)?offer\b|\blooking\s+for\s+(?:a|an|our)\s+(?:[\w-]+\s+){0,3}"
               r"(?:home|house|condo|townhouse|townhome|property|lot|land|building|fixer)\b|\bplace\s+to\s+buy\b"),
    ("buy", 2, r"\bpre-(?:approv|qualif|aprob|calif)\w*|\bapproval\s+letter|\bmortgage\b|\bdown\s+payment\b|"
               r"\b\d+\s*%\s*down\b|\bfirst[-\s]time\s+(?:home\s*)?buyers?\b|\b(?:fha|va|conventional|jumbo)\s+"
               r"loan\b|\b1031\b|\bwe\s+flip\b|\bclosing\s+(?:date|costs)\b|\bfor\s+sale\b|\bcash\s+buyers?\b|"
               r"\ball\s+cash\b|\bde\s+contado\b|\bbelow\s+asking\b|\bseller\s+(?:open|flexible|consider|take|"
               r"accept|willing)|\b(?:owner|seller)\s+financ\w*|\bcap\s+rates?\b|\binvestment\s+propert\w*|"
               r"\b(?:i'm|we're|i\s+am|we\s+are)\s+(?:an?\s+)?(?:real\s+estate\s+)?investors?\b|\bthe\s+seller\s+would\s+take\b|\blooking\s+to\s+buy\b|\binspection\b|\bour\s+(?:first\s+|forever\s+)?home\b"),
    ("buy", 0.5, r"\b(?:hoa|taxes|tour|showings?|see\s+(?:it|this|the\s+house|the\s+home)|open\s+house|"
                 r"school\s+(?:district|zone)|still\s+available|listing|sq(?:uare)?\s*f(?:ee|oo)t(?:age)?|roof|"
                 r"garage|basement|price|available|porch|yard|kitchen)\b"),
    ("sell", 3, r"\b(?:sell|selling|sale\s+of|vender|venderla|vendo|vendiendo)\s+(?:my|our|the|his|her|mom'?s|dad'?s|"
                r"it|this|mine|a|their|mi|la|nuestra)\b|\b(?:want|wants|need|needs|like|thinking|planning|looking|"
                r"hoping|ready|decided|time|going|might|may|have|has|got|gotta|pensando\s+en|quiero|quisiera)\s+(?:to\s+|of\s+)?"
                r"(?:sell|selling|vender)\b"),
    ("sell", 3, r"\b(?:re)?list(?:ing)?\s+(?:it|my|our|the\s+(?:house|home|condo|property))\b|\brelist\b|"
                r"\b(?:put|get|have)\s+(?:it|the\s+house|the\s+home|my\s+\w+|our\s+\w+)\s+(?:on\s+the\s+market|"
                r"listed)|\bon\s+the\s+market\s+by\b|\bnot\s+ready\s+to\s+list\b|\bour\s+listing\s+expired\b|"
                r"\bwhat(?:'s|\s+is)\s+(?:my|our)\s+(?:home|house|condo|place|property)\s+worth\b|"
                r"\bwhat\s+(?:it's|it\s+is|it\s+would\s+be|mine\s+is|ours\s+is)\s+worth\b|"
                r"\bhow\s+much\s+(?:could|can|would|will|might)\s+(?:i|we)\s+get\s+for\b|"
                r"\bwhat\s+(?:mine|ours|my\s+(?:house|home)|our\s+(?:house|home))\s+would\s+(?:get|sell|go)\b|"
                r"\bhome\s+value\b|\bvaluation\b|\bcu[aá]nto\s+vale\b|\bfsbo\b|\bselling\s+it\s+myself\b|"
                r"\b(?:i'm|we're|i\s+am|we\s+are)\s+selling\b|\b(?:need|want|wants)\s+(?:it|the\s+house|the\s+home)"
                r"\s+sold\b|\binherited\b|\bselling\s+until\b|\bsell\s+(?:later|first)\b|\blist\s+with\s+(?:you|your)\b|"
                r"\b(?:want|like|looking|planning|ready|thinking\s+(?:of|about)|time)\s+(?:to\s+)?list(?:ing)?\b|"
                r"\bup\s+for\s+sale\b|\bsell\s+for\b|\bhow\s+much\s+(?:is|would)\s+(?:my|our)\s+(?:house|home|condo|place)\b|"
                r"\b(?:market\s+analysis|cma)\b|\bvalue\s+of\s+(?:my|our)\b|\b(?:homes?|houses?|places?|condos?)\s+"
                r"like\s+(?:mine|ours)\b|\bwhen\s+(?:do\s+you\s+plan|are\s+you\s+(?:thinking|planning))\s+(?:of\s+|"
                r"to\s+)?sell(?:ing)?\b"),
    ("sell", 1, r"\bdownsiz\w+|\bmy\s+(?:house|home|condo)\s+is\s+paid\s+off\b|\bworth\b"),
    ("rent", 3, r"\bfor\s+rent\b|\b(?:to|just|need\s+to|want\s+to|looking\s+to|rent)\s+rent\b|\brent\s+(?:first|for\s+now)\b|"
                r"\brent-to-own\b|\b(?:a|the)\s+rental\b|\brentals?\s+(?:near|for|in)\b|\blease\b|\bleasing\b|"
                r"\bapply\b|\bapplications?\b|\bmove\s+date\b|\b(?:pet|security)\s+deposit\b|"
                r"\blandlord\s+(?:open|accept|allow|ok|okay|consider)|\bowner\s+consider\s+me\b|\bsection\s+8\b|"
                r"\bvoucher\b|\broommates?\b|\bsublet\b|\brentar\b|\balquilar\b|\balquiler\b|\brenta\b|\barrendar\b|"
                r"\bse\s+renta\b|\bthe\s+rent\s+(?:on|for)\b|\bwhat's\s+the\s+rent\b|\bmonthly\s+rent\b|\brent\s+is\b|"
                r"\brent(?:ing)?\s+for\s+now\b|\bmonth[-\s]to[-\s]month\b|\bcredit\s+check\b|\bincome\s+requirements?\b|"
                r"\butilities\b|\bmove[-\s]in\s+date\b"),
    ("rent", 1, r"\bapartments?\b|\bunit\b|\bfurnished\b|\bbeds/baths\b|\bmove[-\s]in\b|\bpets?\s+(?:allowed|policy)\b|"
                r"\bdo\s+you\s+allow\b"),
)
_INTENT_CUES = [(i, w, regex.compile(p, _F)) for i, w, p in _CUE_TEXT]
_SINGLE: tuple[InquiryIntent, ...] = ("buy", "sell", "rent")
_BOTH = regex.compile(r"\b(?:help|helping)\s+(?:us\s+|me\s+)?(?:with|w)\s+both\b|\bdo\s+both\b|\bsell\s+first\b|"
                      r"\bbuy\s+first\b|\bsell\b[^.?!]{0,40}\bbefore\s+(?:we|i)\s+(?:can\s+)?buy\b|"
                      r"\bsell\b[^.?!]{0,40}\b(?:first|and\s+then|then)\b[^.?!]{0,10}\bbuy\b|"
                      r"\bselling\s+until\s+we\s+(?:find|buy)\b|\balso\s+(?:looking|want\w*|"
                      r"need\w*|planning)\s+to\s+buy\b", _F)
#: "not sure if we want to rent or buy", several paths and none chosen
_UNDECIDED = regex.compile(r"\bnot\s+sure\s+(?:if|whether)\s+(?:we|i)\s+(?:want\s+to\s+|should\s+)?(?:rent|buy|sell)"
                           r"\s+or\s+(?:rent|buy|sell)\b|\bnothing\s+is\s+decided\b|\b(?:haven't|have\s+not)\s+decided\b|"
                           r"\bundecided\b|\bweighing\s+(?:our|my|her|his)\s+options\b", _F)
#: a message that says nothing a listing could complete: a greeting, a test, "call me"
_NO_CUE_WORDS = frozenset((
    "hi", "hello", "hey", "hola", "buenas", "test", "testing", "please", "pls", "call", "me",
    "email", "text", "contact", "back", "can", "you", "could", "would", "puede", "llamar", "por",
    "favor", "thanks", "thank", "gracias", "asap", "soon", "when", "get", "a", "chance",
    "question", "i", "have",
))
_CONTEXT_CUES: list[tuple[InquiryIntent, regex.Pattern[str]]] = [
    ("rent", regex.compile(r"rental|rentals|\brent\b|tenant|leasing|\blease\b|apartment|zumper|hotpads|rent\.com|"
                           r"apartmentlist|for-rent|renter", _F)),
    ("sell", regex.compile(r"seller|home\s+worth|home\s+value|valuation|\bcma\b|listing\s+appointment", _F)),
    ("buy", regex.compile(r"buyer|for-sale|for\s+sale|\bidx\b|open\s+house|listing\s+agent|just\s+listed|"
                          r"tour\s+request|to\s+buy|purchase", _F)),
]


def _intent(text: str, context: str | None, notes: list[str]) -> InquiryIntent | None:
    plain = _blank(text, _INTENT_TRAP_RES)
    scores: dict[str, float] = dict.fromkeys(_SINGLE, 0.0)
    strong_buy = False
    best: dict[str, tuple[float, str]] = {}
    for intent, weight, pattern in _INTENT_CUES:
        for hit in _hits(pattern, plain):
            timing = _TIMING_AFTER.match(plain, hit.end)
            timing = timing or _UNTIL.search(hit.phrase)
            if hit.negated and not timing and not hit.phrase.startswith("pre-"):
                # "not looking to buy, just rent" counts against; "not an investor" says nothing
                scores[intent] -= weight if weight >= 3 else 0
                continue
            scores[intent] += weight
            strong_buy |= intent == "buy" and weight >= 3
            if weight > best.get(intent, (0.0, ""))[0]:
                best[intent] = (weight, hit.phrase)
    hinted = None
    for intent, pattern in _CONTEXT_CUES:
        if context and pattern.search(context):
            hinted = intent
            break
    says_something = any(w not in _NO_CUE_WORDS for w in _LETTERS.findall(plain))
    if hinted is not None and max(scores.values()) < 3 and says_something:
        scores[hinted] += 2.5  # the listing decides a short question ("is it still available?")
        best.setdefault(hinted, (0.0, f"context {context!r}"))
    elif hinted is not None:
        scores[hinted] += 1
    if (undecided := _UNDECIDED.search(plain)) is not None:
        notes.append(f"intent unknown: {undecided[0]!r}")
        return None
    both = _BOTH.search(plain)
    if scores["sell"] >= 3 and (both or (strong_buy and scores["buy"] >= 2.5)):
        notes.append(f"intent buy_and_sell: {best['sell'][1]!r} + {best.get('buy', (0, both[0] if both else ''))[1]!r}")
        return "buy_and_sell"
    chosen: InquiryIntent = max(_SINGLE, key=lambda i: scores[i])
    if scores[chosen] < 2:
        return None
    notes.append(f"intent {chosen}: {best.get(chosen, (0, ''))[1]!r}")
    return chosen


# -- urgency and timeline -----------------------------------------------------------------

_BROWSING = regex.compile(
    r"\bjust\s+(?:browsing|looking|curious|wondering|gathering|getting\s+(?:ideas|a\s+sense)|want\s+(?:a\s+ballpark|"
    r"to\s+(?:know|see|get\s+a\s+sense))|checking|starting\s+to\s+look)\b|\bno\s+rush\b|\bnot\s+in\s+(?:a|any)\s+"
    r"(?:rush|hurry)\b|\bno\s+hurry\b|\bno\s+plans\s+(?:yet|to)\b|\bnot\s+(?:really\s+)?in\s+the\s+market\b|"
    r"\bnot\s+actively\b|\bnot\s+ready\s+(?:to|yet)\b|\bnot\s+planning\s+to\s+move\b|\bjust\s+for\s+fun\b|"
    r"\bget\s+a\s+sense\s+of\s+prices\b|\bno\s+tengo\s+prisa\b|\bsin\s+prisa\b|\bsolo\s+(?:estoy\s+)?(?:mirando|"
    r"viendo|quiero\s+saber)\b|\bnothing\s+is\s+decided\b|\bif\s+the\s+price\s+is\s+right\b", _F)
_CAPABILITY = regex.compile(r"\b(?:can|could|able\s+to)\s+close\s+(?:in|within)?\s*$", _F)
#: the writer changes their mind: time phrases before it no longer count
_CORRECTION = regex.compile(r"\b(?:actually|scratch\s+that|instead|got\s+pushed|pushed\s+(?:back\s+)?to|"
                            r"changed|on\s+second\s+thought|correction)\b", _F)


#: "not until next week": the negation is of the wait, and the time still holds
_WAIT_UNTIL = regex.compile(r"\b(?:until|till|til|before|hasta)\b", _F)
_FINANCE_TIME = regex.compile(r"\b(?:lender|pre-approv\w*|approved|approval|we\s+will\s+be)\b", _F)


def _timing(text: str, today: date | None, intent: str | None, notes: list[str],
            ) -> tuple[Urgency | None, int | None]:
    times = find_times(text, today)
    wished: list[Time] = []
    able: list[Time] = []
    for t in times:
        around = text[max(0, t.start - 40):t.start + 40]
        if _FINANCE_TIME.search(_clause_before(text, t.start, 40)) or regex.search(
                r"\blender\s+(?:just\s+)?needs|\bmeeting\s+with\s+(?:a|the|our)\s+lender\b", around):
            continue  # the lender's step, not the transaction
        if intent == "rent" and _PURCHASE.search(_clause_before(text, t.start, 40)):
            continue  # "rent first and buy in a couple of years": the purchase is not this move
        if (t.now or (t.days is not None and t.days <= 11)) and _NEGATORS.search(
                _clause_before(text, t.start, 30)) and not _WAIT_UNTIL.search(text[max(0, t.start - 12):t.start + 8]):
            continue  # "I don't need it ASAP", "not this week", "can't see it today": not now
        (able if _CAPABILITY.search(text[max(0, t.start - 20):t.start]) else wished).append(t)
    if wished and (fix := list(_CORRECTION.finditer(text))):
        last = fix[-1].start()
        if any(t.start > last for t in wished):
            wished = [t for t in wished if t.start > last or (t.days is not None and t.start > last - 60)]
    browse = _BROWSING.search(text)
    if not wished:
        if browse:
            notes.append(f"urgency browsing: {browse[0]!r}")
            return "browsing", None
        return None, None
    first = min(wished, key=lambda t: 0 if t.days is None else t.days)
    days = [t for t in wished + able if t.days is not None]
    latest = max(days, key=lambda t: t.days or 0) if days else None
    soonest = 0 if first.days is None else first.days
    urgency: Urgency = "now" if first.now or soonest <= 11 else "soon" if soonest <= 90 else "later"
    notes.append(f"urgency {urgency}: {first.phrase!r}")
    if latest is not None:
        notes.append(f"timeline_days {latest.days}: {latest.phrase!r}")
    return urgency, latest.days if latest is not None else None


# -- financing ----------------------------------------------------------------------------

_PRE = regex.compile(r"\bpre-(?:approv|qualif|aprob|calif)\w*|\bapproval\s+letter\b|\bapproved\s+(?:by|with|through)\s+"
                     r"(?:a|our|the|my)\s+(?:lender|bank|credit\s+union)|\b(?:lender|bank)\s+(?:has\s+)?(?:already\s+)?"
                     r"pre-approved\s+us\b", _F)
_PRE_NOT = regex.compile(r"\b(?:haven't|have\s+not|not)\s+(?:yet\s+)?(?:talked|spoken|met)\s+(?:to|with)\s+a\s+lender\b|"
                         r"\bdo\s+you\s+have\s+a\s+lender\??\s*:?\s*no\b|\bno\s+lender\b|\bwell,?\s+we\s+will\s+be\b|"
                         r"\bnot\s+official\b|\bexpired\b|\bdon't\s+qualify\b|\bwill\s+be\s+(?:pre-approved|next\s+week)\b|"
                         r"\bto\s+get\s+pre-approved\b|\bofficial\s+pre-approval\s+yet\b", _F)
_CASH = regex.compile(r"\ball[-\s]cash\b|\bcash\s+buyers?\b|\bpay(?:ing)?\s+(?:in\s+|with\s+|all\s+)?cash\b|\bcash\s+"
                      r"(?:purchase|offer|deal)\b|\bin\s+cash\b|(?:^|[.,;:!?]\s*)cash\s*[,.;!]|\bno\s+(?:loan|mortgage|"
                      r"financing)\s+(?:needed|necessary|required)\b|\bno\s+loan\b|\bproof\s+of\s+funds\b|\bde\s+contado\b|"
                      r"\btengo\s+(?:el\s+)?efectivo\b|\ben\s+efectivo\b|\bsin\s+(?:pr[eé]stamo|hipoteca)\b|"
                      r"\bpay\s+cash\b", _F)
_CASH_TRAPS = [r"\bcash[-\s]flow\w*", r"\bcash\s+only\b", r"\bcash\s+buyers?\s+welcome\b", r"\bcashing\s+out\b",
               r"\bfor\s+cash\b", r"\baccepts?\s+cash\b", r"\bcash\s+for\s+rent\b", r"\bsay\w*\s+\"[^\"]*\""]
_CASH_TRAP_RES = [regex.compile(p, _F) for p in _CASH_TRAPS]
_FINANCED = regex.compile(r"\bfinanc\w+|\bmortgages?\b|\bfha\b|\bva\s+loan\b|\bconventional\b|\bjumbo\b|\bhard\s+money\b|"
                          r"\bportfolio\s+lender\b|\b\d+\s*%\s*down\b|\bdown\s+payment\b|\bcarry\s+the\s+note\b|"
                          r"\bneed\s+a\s+loan\b|\bloan\b|\bhipoteca\b|\bpr[eé]stamo\b", _F)
_LENDER = regex.compile(r"\blender\b|\bpre-(?:approv|qualif|aprob|calif)\w*|\bapproval\s+letter\b|\bcredit\s+union\b", _F)
_IMMEDIATE_NO = regex.compile(r"\b(?:no|without|not|don't\s+need)\s+(?:a\s+|any\s+)?$|\bhaven't\s+\w+\s+(?:to\s+|with\s+)?"
                              r"(?:a\s+|the\s+)?(?:\w+\s+)?$", _F)

_INV_TRUE = regex.compile(r"\bto\s+rent\s+(?:it\s+)?out\b|\brent(?:ing)?\s+(?:it|them)\s+out\b|\brental\s+income\b|"
                          r"\bairbnb\b|\bvrbo\b|\bshort[-\s]term\s+rental\b|\bflip(?:s|ping)?\s+(?:\d|houses|homes|"
                          r"properties|it)\b|\bwe\s+flip\b|\bfix\s+(?:and|&|n)\s+flip\b|\b1031\b|\bcap\s+rate\b|"
                          r"\brent\s+roll\b|\bcash\s+flows?\s+from\b|\bcash[-\s]flowing\b|\bpositive\s+cash\s+flow\b|"
                          r"\bportfolio\b(?!\s+lender)|\bdoors\b|\binvestment\s+propert\w*|\bpurpose:\s*investment\b|"
                          r"\bas\s+an\s+investment\b|\bpara\s+(?:rentarla|rentar|alquilar)\w*|\bhouse[-\s]hack\w*|"
                          r"\brent\s+(?:out\s+)?the\s+other\b|\b(?:[2-4]|three|four)[-\s]?(?:to[-\s]\d[-\s])?unit\b|"
                          r"\b\d-\d\s+unit\b|\bduplex\b|\btriplex\b|\bfourplex\b|\bmulti[-\s]?family\b", _F)
_INV_SELF = regex.compile(r"\b(?:i'm|i\s+am|we're|we\s+are)\s+(?:an?\s+)?(?:real\s+estate\s+)?investors?\b", _F)
_INV_FALSE = regex.compile(r"\bnot\s+(?:an\s+)?investors?\b|\b(?:our|my)\s+(?:first\s+|own\s+|forever\s+)?(?:home|place)\b|"
                           r"\bfor\s+(?:me|us|my\s+family|our\s+family|myself|our\s+kids|the\s+kids|my\s+son|my\s+daughter|"
                           r"him|her|my\s+mom|my\s+dad|my\s+parents)\b|\bfirst[-\s]time\s+(?:home\s*)?buyers?\b|"
                           r"\b(?:live|living)\s+in\s+it\b|\bmove\s+in\b|\bmoving\s+(?:in|into|here)\b|\brelocat\w+|"
                           r"\bdownsiz\w+|\bupsiz\w+|\bwould\s+love\s+to\s+stay\b|\bvacation\s+home\b|\bmy\s+family\b|"
                           r"\btwins\b|\bbaby\b|\bour\s+(?:kids|daughter|son|children)\b|\bcloser\s+to\s+(?:(?:my|our)\s+)?"
                           r"(?:new\s+)?(?:job|work|office)\b|\bpcs\w*|\bpara\s+(?:mi|nuestra)\s+familia\b|\bpara\s+vivir\b|"
                           r"\bnot\s+(?:planning|going)\s+to\s+rent\s+it\s+out\b", _F)


def _last(findings: list[tuple[int, bool, bool, str]]) -> tuple[bool, str] | None:
    """The strong finding written last, else the weak one written last."""
    for strong in (True, False):
        chosen = [f for f in findings if f[2] is strong]
        if chosen:
            _pos, value, _strong, phrase = max(chosen)
            return value, phrase
    return None


def _pre_approved(text: str) -> tuple[bool, str] | None:
    nots = [(m.start(), m.end(), m[0]) for m in _PRE_NOT.finditer(text)]
    # "we will be pre-approved next week", "to get pre-approved": the phrase inside says no
    found = [(h.start, not h.negated, True, h.said) for h in _hits(_PRE, text)
             if not any(s <= h.start < e for s, e, _ in nots)]
    found += [(s, False, True, phrase) for s, _, phrase in nots]
    # "pre-qualified: yes / pre-approved: no": the pre-approval answer decides
    return _last(found)


def _cash(text: str) -> tuple[bool, str] | None:
    plain = _blank(text, _CASH_TRAP_RES)
    # "we will not be paying cash", "not a cash buyer": a negated cash phrase says no
    found = [(h.start, not h.negated, True, h.said.strip(" ,.;!")) for h in _hits(_CASH, plain)]
    spans = [(m.start(), m.end()) for m in _CASH.finditer(plain)]
    for m in _FINANCED.finditer(plain):
        if any(s <= m.start() < e for s, e in spans) or _IMMEDIATE_NO.search(plain[max(0, m.start() - 30):m.start()]):
            continue
        found.append((m.start(), False, True, m[0]))
    for h in _hits(_LENDER, plain):
        yet = _YET_AFTER.match(plain, h.end)
        if not h.negated or yet:
            found.append((h.start, False, False, h.phrase))
    return _last(found)


def _investor(text: str) -> tuple[bool, str] | None:
    strong = [h for h in _hits(_INV_TRUE, text) if not h.negated]
    if strong:
        return True, strong[-1].phrase
    falses = list(_INV_FALSE.finditer(text))
    if falses:
        return False, falses[-1][0]
    selves = [h for h in _hits(_INV_SELF, text) if not h.negated
              and not _BY_TRADE.match(text, h.end)]
    if selves:
        return True, selves[-1].phrase
    return None


# -- the reader ---------------------------------------------------------------------------


def read_inquiry(message: str | None, *, today: date | None = None, context: str | None = None,
                 intent: str | None = None) -> Inquiry:
    """The :class:`Inquiry` of one message: intent, urgency, financing facts and timeline.

    ``today`` is the day relative dates count from (the lead's received date; without it no
    date is converted). ``context`` is what is known of where the message came from (the
    lead's source, the email's subject, "rental listing"): it decides the intent of a short
    question about a listing. ``intent`` is an explicit intent from a rule's field; it wins
    over the reading, except that a seller or buyer who says they will do both stays
    ``buy_and_sell``. Never raises.
    """
    text = _normalize(message or "")
    notes: list[str] = []
    if not text.strip() and intent is None:
        return Inquiry()
    found = _intent(text, context, notes) if text.strip() else None
    if intent in ("buy", "sell", "rent") and not (found == "buy_and_sell" and intent != "rent"):
        if found != intent:
            notes = [n for n in notes if not n.startswith("intent ")] + [f"intent {intent}: the rule's field"]
        found = intent  # type: ignore[assignment]
    urgency, days = _timing(text, today, found, notes)
    pre = cash = investor = None
    if found in ("buy", "buy_and_sell"):
        for name, reader in (("pre_approved", _pre_approved), ("cash", _cash), ("investor", _investor)):
            result = reader(text)
            if result is not None:
                notes.append(f"{name} {str(result[0]).lower()}: {result[1]!r}")
                if name == "pre_approved":
                    pre = result[0]
                elif name == "cash":
                    cash = result[0]
                else:
                    investor = result[0]
    if cash is None and pre is True:
        cash = False  # financed, unless they also say cash
        notes.append("cash false: pre-approved")
    return Inquiry(intent=found, urgency=urgency, pre_approved=pre, cash=cash, investor=investor,
                   timeline_days=days, evidence=tuple(notes))
