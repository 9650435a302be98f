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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from daemon import normalize, yamlfile
from daemon.errors import RuleError

#: The fields the vocabulary may name.
VocabularyField = Literal[
    "full_name", "first_name", "last_name", "email", "phone", "message", "address", "price", "mls_id",
]
VOCABULARY_FIELDS: tuple[str, ...] = VocabularyField.__args__  # type: ignore[attr-defined]

_NOT_KEY = re.compile(r"[\W_]+")
# A label is short: a few words, maybe a "#", "/" or "()"; longer text before a colon is prose.
_LABEL_TEXT = re.compile(r"^[^\W\d_][\w /#&'().,?-]{0,48}$")
_SEPARATOR = re.compile(r"\s*[:：](?!//)\s*|\t+|\s+[-–]\s+")
_HASH_LABEL = re.compile(r"^\s*(?P<label>[^\W\d_][\w .]{0,30}#)\s*(?P<value>\S.*)$")
_NAME_WORD = re.compile(r"^[^\W\d_]+(?:['’.-][^\W\d_]*)*\.?$")
_MLS = re.compile(r"^#?\s*(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{2,19}$", re.IGNORECASE)
_BARE_PHONE = re.compile(r"^[+(]?\d[\d\s().+-]{6,22}\d$")
_BARE_EMAIL = re.compile(r"^<?(?:mailto:)?[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+>?$", re.IGNORECASE)
_TRIM = " \t:;,|*•·>"


def label_key(label: str) -> str:
    """``label`` compared as the engine compares labels: lower case, letters and digits only."""
    return _NOT_KEY.sub("", label.casefold())


class _LabelsFile(BaseModel):
    """The shape of ``rules/labels.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    description: str | None = None
    fields: dict[VocabularyField, list[str]] = Field(default_factory=dict)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) else v

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
    _owner: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        owner = {label_key(lbl): name for name, labels in self.labels.items() for lbl in labels}
        object.__setattr__(self, "_owner", owner)

    def field_of(self, label: str) -> str | None:
        """The field ``label`` means, or ``None``."""
        return self._owner.get(label_key(label))

    def __bool__(self) -> bool:
        return bool(self.labels)


def load_vocabulary(path: Path) -> Vocabulary:
    """Load ``labels.yaml``; a missing file is an empty vocabulary.

    Raises ``RuleError`` naming the file, line and key of the first problem (the others in
    ``also``).
    """
    name = str(path)
    if not path.exists():
        return Vocabulary()
    try:
        doc = yamlfile.load(path)
    except yamlfile.YamlSyntaxError as exc:
        raise RuleError(f"YAML syntax error: {exc.problem}", file=name, line=exc.line, key=exc.key) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"cannot read the file: {exc}", file=name) from exc
    if not isinstance(doc.data, dict):
        raise RuleError("labels.yaml must be a mapping with `version` and `fields`", file=name, line=1)
    try:
        parsed = _LabelsFile.model_validate(doc.data)
    except ValidationError as exc:
        first, *rest = yamlfile.problems(doc, exc)
        if first.key == "fields" and "also a label" in first.message:
            first = _locate_duplicate(doc, first)
        err = RuleError(first.message, file=name, line=first.line, key=first.key)
        err.also = [RuleError(p.message, file=name, line=p.line, key=p.key) for p in rest]
        raise err from exc
    return Vocabulary(parsed.version, {k: tuple(v) for k, v in parsed.fields.items()}, name)


def _locate_duplicate(doc: yamlfile.YamlDocument, problem: yamlfile.Problem) -> yamlfile.Problem:
    """Point a duplicate-label error at the second occurrence, not at ``fields:``."""
    seen: dict[str, str] = {}
    for name, labels in (doc.data.get("fields") or {}).items():
        for i, label in enumerate(labels or []):
            key = label_key(str(label))
            if seen.get(key, name) != name:
                path = ("fields", name, i)
                return yamlfile.Problem(problem.file, doc.line_of(path), yamlfile.dotted(path), problem.message)
            seen[key] = name
    return problem


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
    return True


# -- finding labels in text -----------------------------------------------------------------


@dataclass(frozen=True)
class Labelled:
    """A label found on a line, and the raw value after it (or on the following lines)."""

    label: str
    value: str
    line: int


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


#: Only the top of an email is searched for labels: a lead's labels are there, and a
#: multi-megabyte body must not cost seconds per field.
MAX_LINES = 3000
#: Places of one field's labels tried for a value of the field's shape.
MAX_TRIES = 20


class LabelIndex:
    """Every label line in the top ``MAX_LINES`` lines of an email, by label key: built once
    per email, then each field's labels are looked up instead of scanning again."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.hits: dict[str, list[Labelled]] = {}
        for i, line in enumerate(lines[:MAX_LINES]):
            pair = split_label(line)
            if pair is not None:
                self.hits.setdefault(label_key(pair[0]), []).append(Labelled(pair[0], pair[1], i))


def labelled(index: LabelIndex, vocabulary: Vocabulary, name: str, *, count: int = 1,
             join: str = " ") -> Iterator[Labelled]:
    """Each place where a label of field ``name`` stands, with its value, in document order
    (at most ``MAX_TRIES``). A label alone on its line takes the next ``count`` non-empty
    lines, unless the next line is itself a label."""
    wanted = {label_key(lbl) for lbl in vocabulary.labels.get(name, ())}
    hits = sorted((h for key in wanted for h in index.hits.get(key, ())), key=lambda h: h.line)
    for hit in hits[:MAX_TRIES]:
        if hit.value:
            yield hit
            continue
        following = _next_lines(index.lines, hit.line + 1, count)
        if following and not _is_label_line(following[0], vocabulary):
            yield Labelled(hit.label, join.join(following), hit.line)


def _is_label_line(line: str, vocabulary: Vocabulary) -> bool:
    found = split_label(line)
    if found is None:
        return False
    return (not found[1] and line.rstrip().endswith((":", "："))) or vocabulary.field_of(found[0]) is not None


def _next_lines(lines: list[str], start: int, count: int) -> list[str]:
    out: list[str] = []
    for line in lines[start:]:
        if line.strip():
            out.append(line.strip())
            if len(out) == count:
                break
    return out


def bare_values_near(lines: list[str], anchor: str, name: str, *, region: str = "US",
                     distance: int = 6, exclude: frozenset[str] = frozenset()) -> list[str]:
    """Distinct values of field ``name`` (``phone`` or ``email``) standing alone on a line
    or in a table cell within ``distance`` lines of the first line holding ``anchor`` (the
    lead's name). Values in ``exclude`` (the sender's own addresses) do not count."""
    if name not in ("phone", "email") or not anchor.strip():
        return []
    needle = anchor.casefold()
    at = next((i for i, line in enumerate(lines[:MAX_LINES]) if needle in line.casefold()), None)
    if at is None:
        return []
    shape = _BARE_PHONE if name == "phone" else _BARE_EMAIL
    found: dict[str, str] = {}
    for line in lines[max(at - distance, 0) : at + distance + 1]:
        for cell in line.split("\t"):
            cell = cell.strip(_TRIM)
            if not shape.match(cell) or not has_shape(name, cell, region):
                continue
            key = (normalize.normalize_phone(cell, region) if name == "phone"
                   else normalize.normalize_email(cell)) or cell
            if key not in exclude:
                found.setdefault(key, cell)
    return list(found.values())
