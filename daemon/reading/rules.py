"""Rule files: their schema, and loading a directory of them.

One YAML file per lead source (see ``rules/README.md``). A file that does not load is
reported with its file, line and key, and the other files still load: one broken rule
must never stop leads from every other source.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import regex
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from daemon import yamlfile
from daemon.errors import RuleError

log = logging.getLogger(__name__)

#: Files in the rules directory that are not source rules.
SCORING_FILE, LABELS_FILE = "scoring.yaml", "labels.yaml"
RESERVED_FILES = frozenset({SCORING_FILE, LABELS_FILE})

#: Lead fields a rule may extract. Property fields are flat (``address``, ``city``…).
FieldName = Literal[
    "full_name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "address",
    "city",
    "state",
    "postal_code",
    "price",
    "mls_id",
    "url",
    "budget",
    "budget_min",
    "budget_max",
    "intent",
    "message",
]

REGEX_FLAGS = regex.IGNORECASE | regex.MULTILINE | regex.VERSION1

HEADER_ALIASES = ("from_name", "from_address", "reply_to", "reply_to_name", "subject", "to")


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """Compile a rule pattern the way the engine runs it; raises ``ValueError`` if bad.

    Cached: the engine asks for the same few hundred patterns for every email, and
    ``regex``'s own cache lookup (flags, locale, keyword checks) costs more than a search.
    """
    try:
        return regex.compile(pattern, REGEX_FLAGS)
    except regex.error as exc:
        raise ValueError(f"bad regular expression {pattern!r}: {exc}") from exc


def _as_list(value: Any) -> Any:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


StrList = Annotated[list[str], BeforeValidator(_as_list)]


def _valid_pattern(pattern: str) -> str:
    compile_pattern(pattern)
    return pattern


#: A regular expression in a rule file, checked to compile when the file loads.
Pattern = Annotated[str, AfterValidator(_valid_pattern)]
PatternList = Annotated[list[Pattern], BeforeValidator(_as_list)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RegexFilter(_Strict):
    regex: Pattern


class ReplaceFilter(_Strict):
    replace: tuple[Pattern, str]

    @model_validator(mode="after")
    def _replacement_fits(self) -> ReplaceFilter:
        check_replacement(*self.replace)
        return self


def check_replacement(pattern: str, replacement: str) -> None:
    """Raise ``ValueError`` when ``replacement`` names a group ``pattern`` lacks or has a
    bad escape. ``regex`` reads a replacement only when the pattern first matches, so
    without this a rule file would load and then fail on the first email it fits."""
    compiled = compile_pattern(pattern)
    names = {number: name for name, number in compiled.groupindex.items()}
    if len(names) != len(compiled.groupindex):
        return  # a group with two names: rare, and the stand-in below cannot copy it
    # A stand-in with the same group numbers and names that matches the empty string:
    # substituting with it makes ``regex`` read the replacement now, by its own rules.
    stand_in = "".join(f"(?P<{names[i]}>)" if i in names else "()" for i in range(1, compiled.groups + 1))
    try:
        regex.compile(stand_in, REGEX_FLAGS).sub(replacement, "", count=1)
    except (regex.error, IndexError) as exc:
        groups = ", ".join([*map(str, range(1, compiled.groups + 1)), *compiled.groupindex]) or "none"
        raise ValueError(f"replacement {replacement!r} does not fit pattern {pattern!r}: {exc} "
                         f"(the pattern's groups: {groups})") from exc


class BeforeFilter(_Strict):
    before: Pattern


class MapFilter(_Strict):
    map: dict[Pattern, str]


SimpleFilter = Literal["trim", "lower", "upper", "title", "digits", "money", "first_line", "collapse", "unquote"]
_FILTER_MODELS: dict[str, type[BaseModel]] = {
    "regex": RegexFilter, "replace": ReplaceFilter, "before": BeforeFilter, "map": MapFilter,
}


def _filter_kind(value: Any) -> str | None:
    """Which kind of filter ``value`` is, read from its form (a name, or a mapping with
    one key), so a broken filter is reported against its own kind only: without this,
    pydantic tries every member of the union and reports the first (a bad ``regex:``
    pattern came out as "Input should be 'trim', 'lower', …")."""
    if isinstance(value, str):
        return "tag:simple"
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _FILTER_MODELS:
        return f"tag:{next(iter(value))}"
    for key, model in _FILTER_MODELS.items():
        if isinstance(value, model):
            return f"tag:{key}"
    return None


#: One filter: a name (``trim``) or a mapping with one key (``regex:``, ``replace:``,
#: ``before:``, ``map:``). The ``tag:`` parts pydantic adds to an error's location are
#: dropped by ``yamlfile.problems``.
Filter = Annotated[
    Annotated[SimpleFilter, Tag("tag:simple")]
    | Annotated[RegexFilter, Tag("tag:regex")]
    | Annotated[ReplaceFilter, Tag("tag:replace")]
    | Annotated[BeforeFilter, Tag("tag:before")]
    | Annotated[MapFilter, Tag("tag:map")],
    Discriminator(
        _filter_kind,
        custom_error_type="filter",
        custom_error_message=(
            f"a filter is one of {', '.join(get_args(SimpleFilter))}, or a mapping with one key: "
            f"{', '.join(_FILTER_MODELS)}"
        ),
    ),
]

STRATEGIES = ("label", "regex", "selector", "header", "after", "value")


class Extractor(_Strict):
    """One way to find one field. Exactly one strategy key; the rest are options."""

    label: StrList | None = None
    regex: Pattern | None = None
    selector: str | None = None
    header: str | None = None
    after: Pattern | None = None
    value: str | None = None

    in_: Literal["text", "html", "subject", "all"] = Field("text", alias="in")
    until: Pattern | None = None
    lines: int = Field(1, ge=1, le=20)
    skip: int = Field(0, ge=0, le=20)
    join: str = " "
    attr: str | None = None
    filters: list[Filter] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_strategy(self) -> Extractor:
        chosen = [s for s in STRATEGIES if getattr(self, s) is not None]
        if len(chosen) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(STRATEGIES)} (found {', '.join(chosen) or 'none'})"
            )
        if self.until is not None and self.after is None:
            raise ValueError("`until` goes with `after`")
        if self.attr is not None and self.selector is None:
            raise ValueError("`attr` goes with `selector`")
        return self

    @field_validator("label")
    @classmethod
    def _labels_not_empty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not [x for x in v if x.strip()]:
            raise ValueError("label needs at least one non-empty label")
        return v

    @field_validator("selector")
    @classmethod
    def _selector_parses(cls, v: str | None) -> str | None:
        if v is not None:
            import cssselect

            from daemon.reading.message import compiled_selector

            try:
                compiled_selector(v)
            except cssselect.SelectorError as exc:
                raise ValueError(f"bad CSS selector {v!r}: {exc}") from exc
        return v

    @property
    def strategy(self) -> str:
        return next(s for s in STRATEGIES if getattr(self, s) is not None)

    def describe(self) -> str:
        """A short human description, used in dead-letter sentences."""
        s = self.strategy
        if s == "label":
            return "labels " + ", ".join(self.label or [])
        # the pattern as the author typed it in YAML; repr() would double every backslash
        return f"{s} `{getattr(self, s)}`"


def _extractor_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


ExtractorList = Annotated[list[Extractor], BeforeValidator(_extractor_list)]


class Match(_Strict):
    """How to recognise a source. Every kind given must match; within a kind, any pattern.

    ``from`` holds shell-style globs on the sender address (``*@zillow.com``);
    ``subject`` and ``body`` hold regular expressions (case-insensitive).
    """

    from_: StrList = Field(default_factory=list, alias="from")
    subject: PatternList = Field(default_factory=list)
    body: PatternList = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> Match:
        if not (self.from_ or self.subject or self.body):
            raise ValueError("match needs at least one of from, subject, body")
        return self


class Rule(_Strict):
    """One lead source: how to recognise its emails and extract each field."""

    source: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    version: str
    description: str | None = None
    priority: int = 0
    match: Match
    fields: dict[FieldName, ExtractorList]
    constants: dict[FieldName, str] = Field(default_factory=dict)
    required: list[FieldName] = Field(default_factory=list)
    require_any: list[list[FieldName]] = Field(
        default_factory=lambda: [["phone", "email"]], validate_default=True
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) else v

    @field_validator("required", "require_any")
    @classmethod
    def _required_are_extracted(cls, v: list[Any], info: ValidationInfo) -> list[Any]:
        return required_are_extracted(v, info)

    @property
    def name(self) -> str:
        """``zillow v3``: how people and dead letters name this rule."""
        return f"{self.source} v{self.version}"

    def sender_matches(self, address: str) -> bool:
        address = address.lower()
        return any(fnmatch.fnmatchcase(address, g.lower()) for g in self.match.from_)


def required_are_extracted(v: list[Any], info: ValidationInfo) -> list[Any]:
    """The check of ``required`` / ``require_any`` against ``fields`` and ``constants``
    (email rules and webhook mappings alike)."""
    # A field validator, not a model validator, so the error points at the line of
    # `required:` / `require_any:` instead of the top of the file.
    if "fields" not in info.data:
        return v  # `fields` itself is broken; that error is the one to read
    known = set(info.data["fields"]) | set(info.data.get("constants") or {})
    if "full_name" in known or {"first_name", "last_name"} & known:
        known |= {"full_name", "first_name", "last_name"}
    if "address" in known:
        known |= {"city", "state", "postal_code"}
    if "budget" in known:
        known |= {"budget_min", "budget_max"}
    if info.field_name == "required":
        for name in v:
            if name not in known:
                raise ValueError(f"required field `{name}` has no extractor under `fields`")
        return v
    for group in v:
        # "at least one of": one extractable field in the group is enough
        if not known & set(group):
            raise ValueError(
                f"require_any group [{', '.join(group)}]: none of these fields has an "
                "extractor under `fields` (the default group is [phone, email])"
            )
    return v


@dataclass(frozen=True)
class LoadedRule:
    """A rule and the file it came from."""

    rule: Rule
    file: str


@dataclass(frozen=True)
class RuleSet:
    """The rules that loaded, most specific first, and the errors of those that did not."""

    rules: tuple[LoadedRule, ...] = ()
    errors: tuple[RuleError, ...] = ()
    directory: str | None = None

    def __iter__(self) -> Iterator[Rule]:
        return (r.rule for r in self.rules)

    def by_source(self, source: str) -> Rule | None:
        return next((r.rule for r in self.rules if r.rule.source == source), None)


#: A drafted rule (``leadpipe rules new``) ends so; the daemon does not load it until
#: ``leadpipe rules promote`` renames it.
DRAFT_SUFFIX = ".draft.yaml"


def rule_files(directory: Path) -> list[Path]:
    """The source rule files in ``directory``, sorted by name (drafts left out)."""
    return sorted(
        p
        for p in directory.glob("*.y*ml")
        if p.suffix in (".yaml", ".yml") and p.name not in RESERVED_FILES
        and not p.name.endswith((DRAFT_SUFFIX, ".draft.yml"))
    )


def draft_files(directory: Path) -> list[Path]:
    """The drafted rule files in ``directory`` (``SOURCE.draft.yaml``), sorted by name."""
    return sorted(directory.glob(f"*{DRAFT_SUFFIX}"))


def load_rule_file(path: Path, text: str | None = None) -> Rule:
    """Load and check one rule file. Raises ``RuleError`` naming file, line and key."""
    name = str(path)
    try:
        doc = yamlfile.load(path, text)
    except yamlfile.YamlSyntaxError as exc:
        raise RuleError(f"YAML syntax error: {exc.problem}", file=name, line=exc.line, key=exc.key) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"cannot read the file: {exc}", file=name) from exc
    if not isinstance(doc.data, dict):
        raise RuleError(
            "a rule file must be a mapping of keys (source, version, match, fields)",
            file=name,
            line=1,
        )
    try:
        return Rule.model_validate(doc.data)
    except ValidationError as exc:
        first, *rest = yamlfile.problems(doc, exc, model=Rule)
        err = RuleError(first.message, file=name, line=first.line, key=first.key)
        err.also = [RuleError(p.message, file=name, line=p.line, key=p.key) for p in rest]
        raise err from exc


def load_rules(directory: Path | str) -> RuleSet:
    """Load every rule file in ``directory``. Broken files are reported, never fatal.

    Two files claiming the same ``source`` are an error for the second one. Errors are
    returned, not logged: the caller says them where its user looks (log, terminal).
    """
    directory = Path(directory)
    loaded: list[LoadedRule] = []
    errors: list[RuleError] = []
    seen: dict[str, str] = {}
    for path in rule_files(directory):
        try:
            rule = load_rule_file(path)
        except RuleError as exc:
            errors.append(exc)
            errors.extend(exc.also)
            continue
        if rule.source in seen:
            errors.append(
                RuleError(
                    f"source `{rule.source}` is already defined in {seen[rule.source]}",
                    file=str(path),
                    line=_line_of(path, ("source",)),
                    key="source",
                )
            )
            continue
        seen[rule.source] = str(path)
        loaded.append(LoadedRule(rule, str(path)))
    return ruleset_of(loaded, errors, directory)


def ruleset_of(loaded: Iterable[LoadedRule], errors: Iterable[RuleError], directory: Path | str | None,
               ) -> RuleSet:
    """A ``RuleSet`` of ``loaded`` in the order rules are tried."""
    # Higher priority first; then rules that check more kinds of evidence first, so a
    # specific layout (sender + subject) beats a broad one (sender only).
    ordered = sorted(loaded, key=lambda lr: (-lr.rule.priority, -_specificity(lr.rule), lr.rule.source))
    return RuleSet(tuple(ordered), tuple(errors), None if directory is None else str(directory))


@dataclass(frozen=True)
class Refused:
    """A rule file that does not load, and the senders it was written for: their emails
    wait as dead letters for the fix, rather than be read without the rule."""

    file: str
    source: str | None
    senders: tuple[str, ...]
    error: str

    def matches(self, address: str) -> bool:
        address = address.lower()
        return any(fnmatch.fnmatchcase(address, g.lower()) for g in self.senders)


_refused: dict[int, tuple[RuleSet, tuple[Refused, ...]]] = {}


def refused_files(ruleset: RuleSet) -> tuple[Refused, ...]:
    """The files of ``ruleset.errors`` whose source did not load, with the ``from`` globs
    their YAML still says (read loosely: the file is broken somewhere). Remembered for the
    rule set in force."""
    cached = _refused.get(id(ruleset))
    if cached is not None and cached[0] is ruleset:
        return cached[1]
    found = _read_refused(ruleset)
    _refused.clear()  # one rule set is in force at a time
    _refused[id(ruleset)] = (ruleset, found)
    return found


def _read_refused(ruleset: RuleSet) -> tuple[Refused, ...]:
    loaded = {r.file for r in ruleset.rules}
    out: list[Refused] = []
    for err in ruleset.errors:
        if not err.file or err.file in loaded or any(r.file == err.file for r in out):
            continue
        try:
            doc = yaml.safe_load(Path(err.file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        match = doc.get("match") if isinstance(doc, dict) else None
        senders = match.get("from") if isinstance(match, dict) else None
        if isinstance(senders, str):
            senders = [senders]
        if not isinstance(senders, list):
            continue
        globs = tuple(str(g) for g in senders if isinstance(g, str | int) and str(g) != "*")
        source = doc.get("source") if isinstance(doc.get("source"), str) else None
        if globs:
            out.append(Refused(err.file, source, globs, str(err)))
    return tuple(out)


def duplicate_source(path: Path, rule: Rule, others: Iterable[LoadedRule]) -> RuleError | None:
    """The error for ``rule`` of ``path`` when another file already defines its source."""
    other = next((o for o in others if o.rule.source == rule.source and o.file != str(path)), None)
    if other is None:
        return None
    return RuleError(f"source `{rule.source}` is already defined in {other.file}", file=str(path),
                     line=_line_of(path, ("source",)), key="source")


def _line_of(path: Path, key: tuple[str, ...]) -> int | None:
    """The line of ``key`` in a rule file that has already loaded once."""
    try:
        return yamlfile.load(path).line_of(key)
    except (OSError, UnicodeDecodeError, yamlfile.YamlSyntaxError):
        return None


def _specificity(rule: Rule) -> int:
    m = rule.match
    return sum(1 for kind in (m.from_, m.subject, m.body) if kind)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a rule file, for editors (``rules/schema.json``)."""
    schema = Rule.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "leadpipe rule file"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
