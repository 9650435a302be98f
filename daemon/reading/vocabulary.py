"""The label vocabulary (``rules/labels.yaml``) and finding a field by it.

Providers rename labels without warning (``Phone:`` becomes ``Phone Number:``). The
vocabulary lists, per lead field, the labels that mean it. When a rule's own extractors
find nothing, the engine looks for any of these labels, compared case-insensitively and
ignoring punctuation and spaces (``Phone #``, ``Phone#`` and ``phone`` are one label), and
keeps a value only if it has the field's shape (a valid phone, a valid email, a name of
letters). This module finds candidates and checks shapes; ``parsing`` decides when to ask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from daemon import yamlfile
from daemon.qualifying import normalize

#: The fields the vocabulary may name.
VocabularyField = Literal[
    "full_name", "first_name", "last_name", "email", "phone", "message", "address", "city", "state",
    "postal_code", "price", "mls_id",
]
VOCABULARY_FIELDS: tuple[str, ...] = VocabularyField.__args__  # type: ignore[attr-defined]
#: The fields a label may mean by its words: the vocabulary's, and two the reader
#: recognises so that their values are not mistaken for another field's.
WordField = Literal[
    "full_name", "first_name", "last_name", "email", "phone", "message", "address", "city", "state",
    "postal_code", "price", "mls_id", "budget", "move_in",
]

_NOT_KEY = re.compile(r"[\W_]+")
# A label is short: a few words, maybe a "#", "/" or "()"; longer text before a colon is prose.
_LABEL_TEXT = re.compile(r"^[^\W\d_][\w /#&'().,?-]{0,48}$")
_SEPARATOR = re.compile(r"\s*[:：](?!//)\s*|\t+|\s+[-–]\s+")
_HASH_LABEL = re.compile(r"^\s*(?P<label>[^\W\d_][\w .]{0,30}#)\s*(?P<value>\S.*)$")
_NAME_WORD = re.compile(r"^[^\W\d_]+(?:['’.-][^\W\d_]*)*\.?$")
_MLS = re.compile(r"^#?\s*(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{2,19}$", re.IGNORECASE)
_BARE_PHONE = re.compile(r"^[+(]?\d[\d\s().+-]{6,22}\d$")
_BARE_EMAIL = re.compile(r"^<?(?:mailto:)?[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+>?$", re.IGNORECASE)
_CITY = re.compile(r"^[^\W\d_][^\W\d_ .'’-]*(?:[ .'’-]+[^\W\d_]+){0,3}\.?$")
_TRIM = " \t:;,|*•·>"


def label_key(label: str) -> str:
    """``label`` compared as the engine compares labels: lower case, letters and digits only."""
    return _NOT_KEY.sub("", label.casefold())


class _LabelsFile(BaseModel):
    """The shape of ``rules/labels.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: yamlfile.VersionText
    description: str | None = None
    fields: dict[VocabularyField, list[str]] = Field(default_factory=dict)
    words: dict[WordField, list[str]] = Field(default_factory=dict)
    others: list[str] = Field(default_factory=list)
    not_names: list[str] = Field(default_factory=list)

    @field_validator("fields")
    @classmethod
    def _labels_unique(cls, v: dict[str, list[str]], info: ValidationInfo) -> dict[str, list[str]]:
        owner: dict[str, str] = {}
        for name, labels in v.items():
            for label in labels:
                key = label_key(label)
                if not key:
                    raise ValueError(f"`{name}`: label {label!r} has no letters or digits")
                if owner.get(key, name) != name:
                    raise ValueError(f"label {label!r} of `{name}` is also a label of `{owner[key]}`; "
                                     "a label may mean one field only")
                owner[key] = name
        return v


@dataclass(frozen=True)
class Vocabulary:
    """Label synonyms per field. An empty vocabulary (no ``labels.yaml``) finds nothing."""

    version: str = "0"
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    file: str | None = None
    #: per field, words (or phrases) that make a label mean it: ``Renter's e-mail``
    words: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: words that make a label someone else's: ``Listing Agent Phone``
    others: tuple[str, ...] = ()
    #: words that make a name label not a person's name: ``Property Name``
    not_names: tuple[str, ...] = ()
    _owner: dict[str, str] = field(init=False, repr=False, compare=False)
    _words: dict[str, _Words] = field(init=False, repr=False, compare=False)
    _others: _Words = field(init=False, repr=False, compare=False)
    _not_names: _Words = field(init=False, repr=False, compare=False)
    _understood: dict[str, Meaning | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        owner = {label_key(lbl): name for name, labels in self.labels.items() for lbl in labels}
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_words", {k: _Words.of(v) for k, v in self.words.items()})
        object.__setattr__(self, "_others", _Words.of(self.others))
        object.__setattr__(self, "_not_names", _Words.of(self.not_names))
        object.__setattr__(self, "_understood", {})

    def field_of(self, label: str) -> str | None:
        """The field ``label`` means, or ``None``."""
        return self._owner.get(label_key(label))

    def understand(self, label: str) -> Meaning | None:
        """What ``label`` means by its exact form or by its words (see ``understand``);
        remembered, since templates repeat their labels."""
        try:
            return self._understood[label]
        except KeyError:
            pass
        meaning = understand(self, label)
        if len(self._understood) < 20_000:
            self._understood[label] = meaning
        return meaning

    def __bool__(self) -> bool:
        return bool(self.labels)


def load_vocabulary(path: Path) -> Vocabulary:
    """Load ``labels.yaml``; a missing file is an empty vocabulary.

    Raises ``RuleError`` naming the file, line and key of the first problem (the others in
    ``also``).
    """
    if not path.exists():
        return Vocabulary()
    parsed, _ = yamlfile.load_rule_model(
        path, _LabelsFile, shape="labels.yaml must be a mapping with `version` and `fields`",
        suggest=False, first=_locate_duplicate)
    return Vocabulary(parsed.version, {k: tuple(v) for k, v in parsed.fields.items()}, str(path),
                      words={k: tuple(v) for k, v in parsed.words.items()},
                      others=tuple(parsed.others), not_names=tuple(parsed.not_names))


def _locate_duplicate(doc: yamlfile.YamlDocument, problem: yamlfile.Problem) -> yamlfile.Problem:
    """Point a duplicate-label error at the second occurrence, not at ``fields:``."""
    if problem.key != "fields" or "also a label" not in problem.message:
        return problem
    seen: dict[str, str] = {}
    for name, labels in (doc.data.get("fields") or {}).items():
        for i, label in enumerate(labels or []):
            key = label_key(str(label))
            if seen.get(key, name) != name:
                path = ("fields", name, i)
                return yamlfile.Problem(problem.file, doc.line_of(path), yamlfile.dotted(path), problem.message)
            seen[key] = name
    return problem


# -- labels understood by their words ------------------------------------------------------


@dataclass(frozen=True)
class Meaning:
    """What a label means: the field, and whether it is the prospect's (``Phone``) or
    someone else's (``Agent Phone``: its value must never become the lead's)."""

    field: str
    prospect: bool = True


# camelCase and snake_case keys of form builders: ``firstName``, ``contact.email``
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_CAMEL_TOKEN = re.compile(r"\b[A-Za-z][a-z]+(?:[A-Z][a-z]+)+\b")
_KEY_WORDS = frozenset({"first", "last", "full", "given", "family", "name", "email", "phone", "number", "mobile",
                        "cell", "address", "street", "message", "comments", "comment", "zip", "postal", "code",
                        "city", "state", "contact", "lead", "home", "work", "budget", "price", "move", "date",
                        "in", "sur", "user", "property", "listing", "id", "type", "time", "notes"})


def _split_camel(m: re.Match[str]) -> str:
    parts = _CAMEL.split(m.group(0))
    if m.group(0)[0].islower() or all(p.lower() in _KEY_WORDS for p in parts):
        return " ".join(parts)
    return m.group(0)


_MARKERS = re.compile(r"\((?:required|optional|if any|if applicable)\)|\*+|\brequired\b", re.IGNORECASE)
_WORD_SPLIT = re.compile(r"[^\w#]+|_")
_POSSESSIVE = re.compile(r"['’]s\b")
#: a label of more words than this is prose, whatever its words
MAX_LABEL_WORDS = 8
#: a label understood by its words has at most this many (``Best number to reach you``)
MAX_WORD_LABEL = 6
#: a form's question may be longer: ``What's the best email to reach you at?``
MAX_QUESTION_WORDS = 10
#: words of sentences, not of labels
_SENTENCE_WORDS = frozenset({"have", "has", "had", "is", "are", "was", "were", "will", "sent", "received",
                             "please", "click", "thanks", "thank", "we", "our", "just", "can", "could",
                             "should", "here", "below", "above", "this", "these", "if", "about"})
#: labels that name a person by the person's role alone (``Buyer: Ann Lee``)
_PERSON_WORDS = frozenset({"contact", "prospect", "buyer", "seller", "renter", "tenant", "applicant",
                           "client", "customer", "lead", "consumer", "guest", "visitor", "from",
                           "homeowner", "inquirer", "requester", "submitter", "resident", "caller",
                           "attendee", "registrant", "transferee"})


def label_words(label: str) -> tuple[str, ...]:
    """A label as lower-case words: markers (``(required)``, ``*``), possessives and the
    case and punctuation of keys (``firstName``, ``last_name``, ``contact.email``) dropped.
    A capitalised word is split only as a key would be (``FirstName``), not a brand
    (``RentCove`` stays one word)."""
    text = _MARKERS.sub(" ", label)
    text = _POSSESSIVE.sub("", _CAMEL_TOKEN.sub(_split_camel, text))
    text = text.replace("e-mail", "email").replace("E-mail", "email").replace("E-Mail", "email")
    return tuple(w for w in _WORD_SPLIT.split(text.casefold()) if w)


def _phrase(text: str) -> tuple[str, ...]:
    return tuple(w for w in _WORD_SPLIT.split(text.casefold().replace("e-mail", "email")) if w)


@dataclass(frozen=True)
class _Words:
    """A list of words and phrases of labels.yaml, compiled for matching a label's words."""

    single: frozenset[str] = frozenset()
    stems: tuple[str, ...] = ()
    phrases: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def of(cls, items: tuple[str, ...] | list[str]) -> _Words:
        single, stems, phrases = set(), [], []
        for item in items:
            want = _phrase(item)
            if not want:
                continue
            if len(want) > 1:
                phrases.append(want)
            elif item.endswith("-"):
                stems.append(want[0])  # "referr-": referrer, referral, referring
            else:
                single.add(want[0])
        return cls(frozenset(single), tuple(stems), tuple(phrases))

    def any_in(self, words: tuple[str, ...]) -> bool:
        if not self.single.isdisjoint(words):
            return True
        if self.stems and any(x.startswith(stem) for x in words for stem in self.stems):
            return True
        for want in self.phrases:
            n = len(want)
            if n <= len(words) and any(words[i:i + n] == want for i in range(len(words) - n + 1)):
                return True
        return False


#: The order fields are tried in: "Email Address" is an email, not an address; "Phone
#: Number" a phone; "First Name" a first name, not a name.
_CONTACT_FIELDS = frozenset(("full_name", "first_name", "last_name", "email", "phone"))
_ORDER = ("email", "phone", "first_name", "last_name", "full_name", "move_in", "budget", "message",
          "mls_id", "postal_code", "state", "city", "price", "address")


_PARENTHESES = re.compile(r"\s*\([^)]*\)")


def understand(vocabulary: Vocabulary, label: str) -> Meaning | None:
    """What ``label`` means, or ``None``: first an exact label of ``labels.yaml``'s
    ``fields``, then its words (``words``); a label with one of the ``others`` words is
    someone else's, and a name label with a ``not_names`` word is no person's name.

    A remark in parentheses is left out (``Email (we never share it)``), and a form's
    question is read by its clauses (``And your last name, Noor?``)."""
    bare = _PARENTHESES.sub(" ", label).strip()
    if bare and bare != label:
        found = _understand(vocabulary, bare, question=False)
        if found is not None:
            return found
    question = label.rstrip(" *:").endswith("?")
    if question:
        for clause in re.split(r"[,;]", bare or label):
            found = _understand(vocabulary, clause, question=True)
            if found is not None:
                return found
        return None
    return _understand(vocabulary, label, question=False)


def _understand(vocabulary: Vocabulary, label: str, *, question: bool) -> Meaning | None:
    words = label_words(label)
    if not words or len(words) > (MAX_QUESTION_WORDS if question else MAX_LABEL_WORDS):
        return None
    # only a contact can be someone else's: a "Listing Address" is the lead's property
    other = vocabulary._others.any_in(words)
    exact = vocabulary.field_of(label) or vocabulary.field_of(" ".join(words))
    name_fields = ("full_name", "first_name", "last_name")
    if exact is not None:
        if exact in name_fields and vocabulary._not_names.any_in(words):
            return None
        return Meaning(exact, prospect=not (other and exact in _CONTACT_FIELDS))
    if not question and (len(words) > MAX_WORD_LABEL or any(w in _SENTENCE_WORDS for w in words)
                         or label.rstrip().endswith(("!", "."))):
        return None  # prose that happens to hold a field's word ("You have a new inquiry!")
    for name in _ORDER:
        matcher = vocabulary._words.get(name)
        if matcher is None or not matcher.any_in(words):
            continue
        if name in name_fields and vocabulary._not_names.any_in(words):
            return None
        return Meaning(name, prospect=not (other and name in _CONTACT_FIELDS))
    if len(words) == 1 and words[0] in _PERSON_WORDS and vocabulary.words:
        return Meaning("full_name")
    return None


# -- shapes ---------------------------------------------------------------------------------


def has_shape(name: str, value: str, region: str = "US") -> bool:
    """Whether ``value`` looks like a ``name`` field: only such values are kept from a
    label the rule did not ask for. Fields without a known shape need any text."""
    v = value.strip(_TRIM)
    if not v:
        return False
    if name == "phone":
        return len(v) <= 40 and normalize.normalize_phone(v, region) is not None
    if name == "email":
        return normalize.normalize_email(v) is not None
    if name in ("full_name", "first_name", "last_name"):
        words = v.split()
        low, high = (2, 4) if name == "full_name" else (1, 3)
        return low <= len(words) <= high and all(_NAME_WORD.match(w) for w in words)
    if name == "message":
        return any(c.isalpha() for c in v)
    if name == "address":
        return bool(re.search(r"\d", v) and re.search(r"[^\W\d_]{2}", v)) and len(v) <= 200
    if name == "price":
        return normalize.parse_money(v) is not None
    if name == "mls_id":
        return bool(_MLS.match(v))
    if name == "city":
        return len(v) <= 40 and bool(_CITY.match(v))
    if name == "state":
        return normalize.state_code(v) is not None
    if name == "postal_code":
        return normalize.zip_code(v) is not None
    return True


# -- finding labels in text -----------------------------------------------------------------


def split_label(line: str) -> tuple[str, str] | None:
    """``(label, value)`` when ``line`` reads as a label with a value after it, or as a label
    alone (value ``""``); ``None`` for prose."""
    text = line.strip()
    if not text or len(text) > 2000:
        return None
    m = _SEPARATOR.search(text)
    if m and m.start() > 0:
        label, value = text[: m.start()].strip(), text[m.end() :].strip()
        if _LABEL_TEXT.match(label):
            return label, value
    hashed = _HASH_LABEL.match(text)
    if hashed:
        return hashed.group("label").strip(), hashed.group("value").strip()
    if _LABEL_TEXT.match(text.rstrip(":： ")) and len(text.split()) <= 6:
        return text.rstrip(":： "), ""
    return None
