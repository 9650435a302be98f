"""Rule files: their schema, and loading a directory of them.

One YAML file per lead source (see ``rules/README.md``). A file that does not load is
reported with its file, line and key, and the other files still load: one broken rule
must never stop leads from every other source.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, Field, field_validator, model_validator

from daemon import yamlfile
from daemon.errors import RuleError
from daemon.reading.sources import (
    FieldName,
    Filter,
    Loaded,
    Pattern,
    PatternList,
    SourceFile,
    Strict,
    StrList,
    json_schema_of,
)

log = logging.getLogger(__name__)

#: Files in the rules directory that are not source rules.
SCORING_FILE, LABELS_FILE = "scoring.yaml", "labels.yaml"
RESERVED_FILES = frozenset({SCORING_FILE, LABELS_FILE})

STRATEGIES = ("label", "regex", "selector", "header", "after", "value")


class Extractor(Strict):
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

            from daemon.reading.htmltext import compiled_selector

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


class Match(Strict):
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


class Rule(SourceFile):
    """One lead source: how to recognise its emails and extract each field."""

    priority: int = 0
    match: Match
    fields: dict[FieldName, ExtractorList]

    def sender_matches(self, address: str) -> bool:
        address = address.lower()
        return any(fnmatch.fnmatchcase(address, g.lower()) for g in self.match.from_)



#: a rule and the file it came from
LoadedRule = Loaded[Rule]


@dataclass(frozen=True)
class RuleSet:
    """The rules that loaded, most specific first, and the errors of those that did not."""

    rules: tuple[LoadedRule, ...] = ()
    errors: tuple[RuleError, ...] = ()
    directory: str | None = None

    def __iter__(self) -> Iterator[Rule]:
        return (r.spec for r in self.rules)

    def by_source(self, source: str) -> Rule | None:
        return next((r.spec for r in self.rules if r.spec.source == source), None)


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
    rule, _ = yamlfile.load_rule_model(
        path, Rule, text=text, shape="a rule file must be a mapping of keys (source, version, match, fields)")
    return rule


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
    ordered = sorted(loaded, key=lambda lr: (-lr.spec.priority, -_specificity(lr.spec), lr.spec.source))
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
    other = next((o for o in others if o.spec.source == rule.source and o.file != str(path)), None)
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
    return json_schema_of(Rule, "leadpipe rule file")


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
