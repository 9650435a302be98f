"""What a lead's values look like: cleaning a raw value, and the shapes the reader
recognises without a label — a person's name, an email, a phone, a street address, the
sentences that introduce a lead (``<Name> says:``, ``Meet <Name>``).

Pure functions and patterns; ``daemon/reading/reader.py`` decides what to do with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

#: The lead fields of a contact, and of a name.
CONTACTS = ("email", "phone")
NAMES = ("full_name", "first_name", "last_name")
#: The parts of the property's place that forms ask for apart from its street.
PLACES = ("city", "state", "postal_code")



# what mail clients append to a link's text: "ann@example.com<mailto:ann@example.com>"
DECORATION = re.compile(r"\s*[<\[(]\s*(?:mailto|tel|sms|callto|https?):[^<>\[\]()]{0,300}[>\])]", re.IGNORECASE)
MARKER = re.compile(r"\((?:optional|required|not required|if any)\)|^\*+|\*+$", re.IGNORECASE)
PLACEHOLDER = re.compile(
    r"^(?:n/?a|n\.a\.|none(?: given| provided)?|null|nil|undefined|unknown|not (?:provided|given|"
    r"specified|available|applicable|entered|supplied)|no (?:answer|response|value|data|info(?:rmation)?)"
    r"(?: (?:given|provided))?|no (?:first |last )?name(?: given| provided)?|no (?:e-?mail|phone|message|"
    r"comments?)(?: given| provided)?|prefer not to say|blank|empty|-+|–|—|\.|\?|x|tbd|anonymous)$",
    re.IGNORECASE,
)
QUOTES = "\"'“”‘’«»`"
REMARK = re.compile(r"(?<=\S)\s+\((?![\d\s.-]+\))[^)]*\)\s*$")
TRAILING_WORDS = re.compile(
    r"\s+(?:is|are|has|have|was|says?|wants?|would|just|sent|requested|submitted|left|via|from|on|at|"
    r"inquired|asked|needs?|could)\b.*$", re.IGNORECASE)
BRACKETED = re.compile(r"\s*[\[(<][^\])>]*[\])>]")


NICKNAME = re.compile(r"\s+[\"“'‘][^\"”'’\s][^\"”'’]{0,20}[\"”'’](?=\s)")


def clean(name: str, raw: str) -> str | None:
    """``raw`` as a value of field ``name`` without link decorations, markers, quotes and
    placeholders; ``None`` when nothing is left or it stands for nothing (``N/A``)."""
    text = DECORATION.sub("", raw or "")
    text = " ".join(text.split())
    text = MARKER.sub("", text).strip(" \t:;,|•·>")
    if text[:1] in QUOTES and text.rstrip(",;")[-1:] in QUOTES:
        text = text.rstrip(",;")  # a data dump's '"ann@example.com",'
    if name in CONTACTS or name in NAMES:
        text = REMARK.sub("", text)  # '"ann@example.com" (preferred)'
    while len(text) >= 2 and text[0] in QUOTES and text[-1] in QUOTES:
        text = text[1:-1].strip()
    if name != "message":
        text = text.strip(QUOTES + " ")
    if not text or PLACEHOLDER.match(text) or PLACEHOLDER.match(text.strip("()[]<> ")):
        return None
    if name in NAMES:
        text = NICKNAME.sub(" ", text)  # 'Jonah "Jay" Whitfield'
        text = BRACKETED.sub("", text).strip(" ,")
        text = TRAILING_WORDS.sub("", text).strip(" ,")
        return text or None
    return text


# -- unlabelled ------------------------------------------------------------------------------

NAME = r"(?P<name>[^\W\d_][\w'’.-]*(?:\s+[^\W\d_][\w'’.-]*){0,3})"
SENTENCES = (
    re.compile(rf"^{NAME}\s+says\s*:?\s*(?P<rest>.*)$"),
    re.compile(rf"^{NAME}\s+(?:is|are)\s+(?:interested|looking|asking|inquiring|requesting|searching|"
               rf"hoping|curious)\b(?P<rest>.*)$"),
    re.compile(rf"^{NAME}\s*\([^()]{{0,120}}\)\s+(?:asked|inquired|is interested|wants|requested|would like|sent"
               rf"|has|just)\b(?P<rest>.*)$"),  # "Ann Lee (ann@…, 303-…) asked about 12 Elm St"
    re.compile(rf"^{NAME}\s+(?:wants|would like|has (?:a question|questions|requested|sent|asked)|sent you|"
               rf"requested|submitted|left you|inquired|contacted you|asked|just (?:inquired|requested|"
               rf"contacted|sent|asked|submitted))\b(?P<rest>.*)$"),
    re.compile(rf"^(?:Meet|Information for|Info for|Say hello to|Say hi to|Details for|Lead details for)\s+"
               rf"{NAME}\s*(?:[.!:,]|$)\s*(?P<rest>.*)$"),
    re.compile(rf"\b(?:lead|inquiry|enquiry|message|request|contact|question|submission|response|note)\s+"
               rf"from\s+{NAME}\s*(?:[(–|:,!.]|\s-\s|$)(?P<rest>.*)$", re.IGNORECASE),
    # "New Lead from Zillow - Søren Østergaard", "Lead Alert | Ann Lee | $499,000"
    re.compile(rf"\b(?:lead|inquiry|enquiry|contact|alert)\b[^-–|\n]{{0,40}}\s[-–|]\s+{NAME}\s*(?:[-–|(]|$)"
               rf"(?P<rest>.*)$", re.IGNORECASE),
)
STOP = frozenset("""
you your we our us a an the someone somebody anyone new lead leads buyer buyers renter renters seller
client customer prospect user visitor guest agent team hi hello dear there this that it he she they i
contact contacts website web site facebook instagram google portal form app mobile online internet page
campaign ad ads zapier marketplace referral partner network listing property home house apartment unit
open our your one message inquiry request question someone tenant applicant consumer who details info
information email phone name sender reply notification alert update today now please thanks thank
leasing realty properties apartments residences rentals rental lofts llc inc ltd group management homes
zillow trulia realtor redfin hotpads zumper craigslist apartmentlist homesnap movoto opendoor offerpad
compass coldwell keller remax sotheby century tiktok youtube linkedin twitter nextdoor yelp bing
estates flats partners associates company corp services office realtors brokerage support sales admin
noreply no-reply
""".split())  # noqa: SIM905 (a word list reads best as words)
BARE_EMAIL = re.compile(r"^<?(?:mailto:)?[\w.+'’-]+@[\w-]+(?:\.[\w-]+)+>?$", re.IGNORECASE)
BARE_PHONE = re.compile(r"^(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?:\s*(?:x|ext\.?)\s*\d{1,5})?$")
ANY_EMAIL = re.compile(r"(?<![\w.+'’-])[\w.+'’-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,8}\.[a-z]{2,24}\b",
                        re.IGNORECASE)
ANY_PHONE = re.compile(r"(?<![\d-])(?:\+?1[\s.-]?)?\(?[2-9]\d{2}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?![\d-])")
NAME_LINE = re.compile(r"^[^\W\d_][\w'’.-]*(?:\s+[^\W\d_][\w'’.-]*){0,3}$")
_SUFFIX = (r"(?:St|Street|Ave|Avenue|Rd|Road|Blvd|Boulevard|Dr|Drive|Ln|Lane|Ct|Court|Way|Pl|Place|Ter|Terrace"
           r"|Cir|Circle|Pkwy|Parkway|Hwy|Highway|Trl|Trail|Loop|Row|Sq|Square|Pike|Run|Path|Walk|Crossing|Xing"
           r"|Point|Pt|Alley|Cove|Bend|Broadway)\b\.?")
STREET = re.compile(
    r"\b\d{1,6}[A-Z]?\s+(?:[NSEW]\.?\s+)?(?:[\w'’.-]+\s+){0,4}?" + _SUFFIX
    # a name that is itself a street word: "45 Willow Bend Rd", "9 Harbor Point Dr"
    + r"(?:\s+(?!Broadway\b)" + _SUFFIX + r")?"
    r"(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b\.?)?"
    r"(?:,?\s*(?:#\s*|Apt\.?\s*|Apartment\s+|Unit\s+|Suite\s+|Ste\.?\s*|Bldg\.?\s*)[\w-]+)?", re.IGNORECASE)
# streets named before their number's type ("1209 Calle del Sol") and grid addresses ("845 W 600 N")
PREFIX_STREET = re.compile(
    r"\b\d{1,6}\s+(?:(?:Calle|Camino|Avenida|Paseo|Via|Vía|Rua|Rue|Avenue of the)\s+[\w'’.-]+"
    r"(?:\s+(?:del|de|la|las|los|el)\b)?(?:\s+(?!Unit\b|Apt\b)[A-Z][\w'’.-]*){0,2}|[NSEW]\.?\s+\d{1,5}\s+[NSEW]\b\.?)"
    r"(?:,?\s*(?:#\s*|Apt\.?\s*|Unit\s+|Suite\s+|Ste\.?\s*)[\w-]+)?")
# an opening sentence about a property: "… interested in 12 Elm St", "New inquiry for 12 Elm St"
ABOUT_STREET = re.compile(r"\b(?:about|for|at|regarding|re|in|on|of|to)\s+(?:the\s+)?(?:home\s+at\s+)?\d",
                           re.IGNORECASE)
ZIP = re.compile(r"\b\d{5}(?:-\d{4})?\b")
CITY_LINE = re.compile(r"^[A-Za-z][A-Za-z .'-]+,?\s+[A-Z]{2}\.?\s+\d{5}(?:-\d{4})?$")
#: a city line's parts: ``Asheville, NC 28803``
CITY_PARTS = re.compile(r"^(?P<city>[A-Za-z][A-Za-z .'-]*?),?\s+(?P<state>[A-Z]{2})\.?\s+"
                        r"(?P<postal_code>\d{5}(?:-\d{4})?)$")
TOLL_FREE = re.compile(r"^\+18(?:00|33|44|55|66|77|88)")


DOMAIN_WORD = re.compile(r"\w\.(?:com|net|org|co|io|us|biz|info|example|test)\b")


SURNAME_FIRST = re.compile(r"^[^\W\d_][\w'’.-]*(?:\s+[^\W\d_][\w'’.-]*)?,\s+[^\W\d_][\w'’.-]*(?:\s+[^\W\d_][\w'’.-]*)?$")


#: subjects only: "New chat lead: Ann Lee", "Open house visitor: Ann Lee (12 Elm St)" (in a
#: body, "Preferred contact: Either" would read as a name)
SUBJECT_SENTENCES = (
    re.compile(rf"\b(?:lead|inquiry|enquiry|contact|request|message|visitor|caller|submission|registration|entry"
               rf"|referral|prospect|buyer|renter|seller)\s*:\s*{NAME}\s*(?:[(\-–|]|$)(?P<rest>.*)$", re.IGNORECASE),
)


def person_name(text: str, brand: frozenset[str]) -> str | None:
    """``text`` when it reads as a person's name (1-4 words of letters, or ``Last, First``;
    not a brand, a role or a stock word), else ``None``."""
    value = clean("full_name", text)
    if value is None or not (NAME_LINE.match(value) or SURNAME_FIRST.match(value)):
        return None
    words = [w.strip(".'’,").casefold() for w in value.split()]
    if not words or any(w in STOP or w in brand or DOMAIN_WORD.search(w) for w in words):
        return None
    if len(words) == 1 and len(words[0]) < 2:
        return None
    return value


#: the first patterns of SENTENCES are what the person did ("says", "is interested in");
#: the others introduce them ("Meet …", "Lead from …"): only after the first is the next
#: paragraph the person's own words
PERSON_VERBS = 4


LABELLED_NAME = re.compile(r"^[^\W\d_][\w'’.-]*,?(?:\s+[^\W\d_][\w'’.-]*){0,5}$")
#: words no person's name has, even under a name label ("Contact: Cheesman Flats Leasing")
BUSINESS = frozenset("""leasing realty properties apartments residences rentals rental lofts llc inc ltd
group management team office brokerage company corp services associates partners website form""".split())  # noqa: SIM905


def labelled_name(text: str, brand: frozenset[str]) -> str | None:
    """``text`` under a label that says it is a name: any 1-6 words of letters (``Tom
    House``, ``Maria de los Angeles Garcia``), but no business's words and not the brand."""
    value = clean("full_name", text)
    if value is None or not LABELLED_NAME.match(value):
        return None
    words = [w.strip(".'’,").casefold() for w in value.split()]
    if any(w in BUSINESS or w in brand or DOMAIN_WORD.search(w) for w in words):
        return None
    return value


def sentence_names(text: str, brand: frozenset[str], *, subject: bool = False
                   ) -> Iterator[tuple[str, str, bool]]:
    """``(name, the rest of the line, whether the person is the sentence's subject)``;
    ``subject``: the line is an email's subject, where ``…lead: <Name>`` names them too."""
    for k, pattern in enumerate((*SENTENCES, *SUBJECT_SENTENCES) if subject else SENTENCES):
        m = pattern.search(text)
        if m:
            name = person_name(m["name"], brand)
            if name is not None:
                yield name, m["rest"].strip(), k < PERSON_VERBS


def find_street(text: str) -> str | None:
    m = STREET.search(text) or PREFIX_STREET.search(text)
    return m.group(0).strip(" ,.") if m else None


def street_at_start(text: str) -> str | None:
    m = STREET.match(text) or PREFIX_STREET.match(text)
    return m.group(0).strip(" ,.") if m else None
