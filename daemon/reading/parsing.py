"""The rule engine: recognise an email's source and extract each field with its rule.

``extract`` is a pure function of an email and the rules. It returns the raw strings
each field yielded (``Extraction``) or says why it could not (``NoRule``); normalizing
those strings is the next stage's job.
"""

from __future__ import annotations

import bisect
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

import regex

from daemon.reading import sources
from daemon.reading.candidates import Found, Reading
from daemon.reading.message import Message
from daemon.reading.reader import read
from daemon.reading.rules import Extractor, Rule, RuleSet
from daemon.reading.senders import Parties
from daemon.reading.sources import compile_pattern
from daemon.reading.vocabulary import Vocabulary, has_shape

log = logging.getLogger(__name__)

# Values that mean "nothing here" in provider templates.
_EMPTY_VALUES = frozenset({"", "n/a", "na", "none", "null", "-", "--", "—", "not provided", "unknown"})
_TRIM = " \t\n:;,|*•·>"
_QUOTES = "\"'“”‘’«»"


class RuleTimeout(Exception):
    """Raised when a rule's regular expression runs longer than the configured limit."""

    def __init__(self, rule: str, pattern: str):
        super().__init__(f"{rule}: pattern {pattern!r} ran past its time limit")
        self.rule = rule
        self.pattern = pattern


@dataclass(frozen=True)
class FieldTrace:
    """What was tried for one field, for dead-letter sentences and ``rules test``."""

    field: str
    tried: tuple[str, ...]


@dataclass(frozen=True)
class Extraction:
    """The raw strings a rule found, keyed by field name, plus what it tried for the rest."""

    rule: Rule
    fields: dict[str, str]
    missing: tuple[FieldTrace, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class NoRule:
    """No rule recognised the email."""

    tried: int


@dataclass
class Patterns:
    """A rule's compiled patterns, searched under its time limit (filters need only this:
    webhook mappings run the same filters on JSON values)."""

    timeout: float
    rule_name: str
    patterns: dict[str, regex.Pattern[str]] = field(default_factory=dict)

    def pattern(self, p: str) -> regex.Pattern[str]:
        compiled = self.patterns.get(p)
        if compiled is None:
            compiled = self.patterns[p] = compile_pattern(p)
        return compiled

    def search(self, p: str, text: str) -> regex.Match[str] | None:
        try:
            return self.pattern(p).search(text, timeout=self.timeout)
        except TimeoutError as exc:
            raise RuleTimeout(self.rule_name, p) from exc


@dataclass
class _Context(Patterns):
    """Per-email caches shared by the extractors of one rule run."""

    msg: Message = field(kw_only=True)
    #: who sent and received the email (a forward's outer email adds its people)
    parties: Parties | None = field(default=None, kw_only=True)
    #: what the reader found in the email, when the caller has read it already
    reading: Reading | None = field(default=None, kw_only=True)

    @functools.cached_property
    def line_starts(self) -> list[int]:
        """Where each of ``msg.lines`` starts in ``msg.text``."""
        starts = [0]
        text = self.msg.text
        i = text.find("\n")
        while i >= 0:
            starts.append(i + 1)
            i = text.find("\n", i + 1)
        return starts

    def haystack(self, where: str) -> str:
        if where == "html":
            return self.msg.html
        if where == "subject":
            return self.msg.subject or ""
        if where == "all":
            return "\n".join((self.msg.subject or "", self.msg.text, self.msg.html_text))
        return self.msg.text


def find_rule(msg: Message, ruleset: RuleSet, timeout: float = 1.0) -> Rule | None:
    """The first rule, most specific first, whose ``match`` section fits ``msg``."""
    for rule in ruleset:
        if matches(rule, msg, timeout):
            return rule
    return None


def matches(rule: Rule, msg: Message, timeout: float = 1.0) -> bool:
    m = rule.match
    ctx = _Context(timeout, rule.name, msg=msg)
    if m.from_ and not rule.sender_matches(msg.from_address or ""):
        return False
    if m.subject and not any(ctx.search(p, msg.subject or "") for p in m.subject):
        return False
    return not (m.body and not any(ctx.search(p, msg.text) or ctx.search(p, msg.html_text) for p in m.body))


@dataclass(frozen=True)
class NearMatch:
    """A rule whose sender and one other kind of evidence match, but not the third: its
    provider may have changed the template (``warning`` says what no longer matches)."""

    rule: Rule
    warning: str


def near_matches(msg: Message, ruleset: RuleSet, timeout: float = 1.0) -> Iterable[NearMatch]:
    """Rules with ``from``, ``subject`` and ``body`` whose sender matches and exactly one of
    subject and body does not, most specific first. Tried only when no rule matches."""
    for rule in ruleset:
        m = rule.match
        if not (m.from_ and m.subject and m.body) or not rule.sender_matches(msg.from_address or ""):
            continue
        ctx = _Context(timeout, rule.name, msg=msg)
        subject_ok = any(ctx.search(p, msg.subject or "") for p in m.subject)
        body_ok = any(ctx.search(p, msg.text) or ctx.search(p, msg.html_text) for p in m.body)
        if subject_ok == body_ok:
            continue
        if subject_ok:
            what = f"no body pattern ({_patterns(m.body)}) is in the email"
        else:
            what = f"no subject pattern ({_patterns(m.subject)}) matches {msg.subject or ''!r}"
        kept = "subject" if subject_ok else "body"
        yield NearMatch(rule, f"{rule.name}: matched on sender and {kept} only; {what} {_DRIFT}")


def _patterns(patterns: list[str]) -> str:
    return ", ".join(f"'{p}'" for p in patterns)


def extract(msg: Message, rule: Rule, timeout: float = 1.0, *,
            labels: Vocabulary | None = None, region: str = "US",
            parties: Parties | None = None, reading: Reading | None = None) -> Extraction:
    """Run every field's extractors in order; the first value found wins.

    A field the rule's extractors miss is then taken from the email's lead metadata tags
    (``<meta name="lead_phone">``), and, with a label vocabulary, from a synonym of its
    label or a bare phone/email line near the lead's name, with a drift warning (see
    ``daemon.reading.vocabulary``). Raises ``RuleTimeout`` when a pattern runs too long.
    """
    ctx = _Context(timeout, rule.name, msg=msg, parties=parties, reading=reading)
    found: dict[str, str] = {}
    missing: dict[str, FieldTrace] = {}
    for name, extractors in rule.fields.items():
        value = None
        for ex in extractors:
            value = run_extractor(ex, ctx)
            if value is not None:
                break
        if value is None:
            missing[name] = FieldTrace(name, tuple(ex.describe() for ex in extractors))
        else:
            found[name] = value
    for name, constant in rule.constants.items():
        found.setdefault(name, constant)
    _fill_from_meta(msg, found)
    warnings: list[str] = []
    if labels:
        warnings = _fill_by_vocabulary(ctx, rule, labels, found, region)
    return Extraction(rule=rule, fields=found,
                      missing=tuple(t for n, t in missing.items() if n not in found),
                      warnings=tuple(warnings))


#: leadmetadata.org tag names (without ``lead_``) and the fields they fill.
META_FIELDS = {"name": "full_name", "email": "email", "phone": "phone", "property_address": "address",
               "mls": "mls_id", "message": "message", "type": "intent"}
_NAMES = ("full_name", "first_name", "last_name")
_DRIFT = DRIFT_MARK = "(template drift?)"


def _fill_from_meta(msg: Message, found: dict[str, str]) -> None:
    """Lead metadata tags fill what the rule did not find (they are the portal's own
    statement of the lead, so no warning)."""
    for tag, value in msg.lead_meta.items():
        name = META_FIELDS.get(tag)
        if name is None or name in found:
            continue
        if name == "full_name" and any(n in found for n in _NAMES):
            continue
        found[name] = value


def _fill_by_vocabulary(ctx: _Context, rule: Rule, labels: Vocabulary, found: dict[str, str],
                        region: str) -> list[str]:
    """Fields the rule asks for but did not find, taken from what the reader finds in the
    email (``daemon.reading.reader``: a synonym of the label, a bare line, a sentence), each with a
    drift warning. The reader keeps only values with the field's shape that are the
    prospect's: a field that cannot be trusted stays empty."""
    wanted = [name for name in rule.fields if name not in found and name in _READER_FIELDS]
    if "full_name" in wanted and ("first_name" in found or "last_name" in found):
        wanted.remove("full_name")
    if "full_name" in found:
        wanted = [n for n in wanted if n not in ("first_name", "last_name")]
    if not wanted:
        return []
    reading = ctx.reading or read(ctx.msg, labels, region, parties=ctx.parties)
    warnings: list[str] = []
    names_given = any(n in found for n in _NAMES)
    for name in wanted:
        hit = reading.chosen.get(name)
        if hit is None and name == "full_name" and not names_given:
            first, last = reading.chosen.get("first_name"), reading.chosen.get("last_name")
            if first is not None:
                found["first_name"] = first.value
                if last is not None:
                    found["last_name"] = last.value
                warnings.append(_drift(rule, name, first, rule.fields[name]))
            continue
        if hit is None or (not has_shape(name, hit.value, region) and name in ("phone", "email")):
            continue
        found[name] = hit.value
        warnings.append(_drift(rule, name, hit, rule.fields[name]))
    return warnings


_READER_FIELDS = frozenset(("full_name", "first_name", "last_name", "email", "phone", "message", "address",
                            "price", "budget"))


def _drift(rule: Rule, name: str, hit: Found, extractors: list[Extractor]) -> str:
    where = f"under {hit.how}" if hit.label else f"in {hit.how}"
    if hit.how == "a bare line":
        where = "on an unlabelled line near the name"
    return f"{rule.name}: field `{name}` found {where} instead of {_expected(extractors)} {_DRIFT}"


_PLAIN = Extractor(label=["-"])


def _expected(extractors: list[Extractor]) -> str:
    labels = [lbl for ex in extractors if ex.label for lbl in ex.label]
    return ", ".join(labels) if labels else "; ".join(ex.describe() for ex in extractors)


def is_drift_warning(warning: str) -> bool:
    """Whether a lead warning says a rule no longer fits its provider's template."""
    return warning.endswith(_DRIFT)


def run_extractor(ex: Extractor, ctx: _Context) -> str | None:
    """One extractor's value after its filters, or ``None``."""
    strategy = _STRATEGIES[ex.strategy]
    for candidate in strategy(ex, ctx):
        value = apply_filters(candidate, ex, ctx)
        if value is not None:
            return value
    return None


# -- strategies: each yields candidate raw values in document order -------------------


def _label(ex: Extractor, ctx: _Context) -> Iterable[str]:
    lines = ctx.msg.lines
    for label in ex.label or ():
        for i, value in _label_hits(label, lines, ctx):
            if value:
                yield value
                continue
            # The label stands alone: the value is on the following line(s).
            following = _next_lines(lines, i + 1, ex.lines)
            if following and not _looks_like_label(following[0]):
                yield ex.join.join(following)


def _label_hits(label: str, lines: list[str], ctx: _Context) -> Iterable[tuple[int, str]]:
    escaped = [regex.escape(w) for w in label.split()]
    words = r"\s*".join(escaped)
    # A label ending in punctuation (``MLSID #``) needs no separator after it.
    sep = r"(?:\s*[:：]|\t|\s+[-–]\s+)" + ("?" if not label[-1:].isalnum() else "")
    pattern = rf"^\s*{words}\s*{sep}\s*(?P<value>.*)$"
    compiled = ctx.pattern(pattern)
    bare = ctx.pattern(rf"^\s*{words}\s*[:：]?\s*$")
    for i in _lines_starting_with(escaped, ctx):
        line = lines[i]
        if len(line) > 2000:
            continue
        m = compiled.match(line, timeout=ctx.timeout) or bare.match(line, timeout=ctx.timeout)
        if m:
            yield i, (m.groupdict().get("value") or "").strip()


def _lines_starting_with(escaped_words: list[str], ctx: _Context) -> Iterable[int]:
    """Indexes of ``msg.lines`` that start (after blanks) with the words: one search of
    the whole text instead of a match per line, which would cost ~100 matches per label.
    Every line a label pattern can match is among them."""
    blank = r"[^\S\n]*"  # white space within one line, as \s is within a line alone
    head = ctx.pattern(rf"^{blank}" + blank.join(escaped_words))
    try:
        for m in head.finditer(ctx.msg.text, timeout=ctx.timeout):
            yield bisect.bisect_right(ctx.line_starts, m.start()) - 1
    except TimeoutError as exc:
        raise RuleTimeout(ctx.rule_name, head.pattern) from exc


def _next_lines(lines: list[str], start: int, count: int) -> list[str]:
    out = []
    for line in lines[start:]:
        if line.strip():
            out.append(line.strip())
            if len(out) == count:
                break
    return out


_LABEL_LIKE = regex.compile(r"^[A-Za-z][A-Za-z /#&'()-]{0,40}:\s*$")


def _looks_like_label(line: str) -> bool:
    return bool(_LABEL_LIKE.match(line))


def _regex(ex: Extractor, ctx: _Context) -> Iterable[str]:
    assert ex.regex is not None
    m = ctx.search(ex.regex, ctx.haystack(ex.in_))
    if m:
        yield _group(m)


def _group(m: regex.Match[str]) -> str:
    if "value" in m.groupdict():
        return m.group("value") or ""
    if m.re.groups:
        return next((g for g in m.groups() if g), "")
    return m.group(0)


def _selector(ex: Extractor, ctx: _Context) -> Iterable[str]:
    assert ex.selector is not None
    yield from ctx.msg.select(ex.selector, ex.attr)


def _header(ex: Extractor, ctx: _Context) -> Iterable[str]:
    assert ex.header is not None
    value = ctx.msg.header_value(ex.header)
    if value:
        yield value


def _after(ex: Extractor, ctx: _Context) -> Iterable[str]:
    assert ex.after is not None
    text = ctx.haystack(ex.in_)
    m = ctx.search(ex.after, text)
    if not m:
        return
    rest = text[m.end() :]
    if ex.until is not None:
        end = ctx.search(ex.until, rest)
        block = rest[: end.start()] if end else rest
        yield " ".join(block.split())
        return
    line_end = rest.find("\n")
    same_line = (rest if line_end < 0 else rest[:line_end]).strip()
    following = "" if line_end < 0 else rest[line_end + 1 :]
    # The text on the anchor's own line counts as the first line, when there is any.
    candidates = ([same_line] if same_line else []) + _next_lines(
        following.split("\n"), 0, ex.skip + ex.lines
    )
    wanted = candidates[ex.skip : ex.skip + ex.lines]
    if wanted:
        yield ex.join.join(wanted)


def _value(ex: Extractor, ctx: _Context) -> Iterable[str]:
    assert ex.value is not None
    yield ex.value


_STRATEGIES: dict[str, Callable[[Extractor, _Context], Iterable[str]]] = {
    "label": _label,
    "regex": _regex,
    "selector": _selector,
    "header": _header,
    "after": _after,
    "value": _value,
}


# -- filters ----------------------------------------------------------------------------


def apply_filters(value: str, ex: Extractor, ctx: _Context) -> str | None:
    """Run ``ex.filters`` in order, then the final trim; ``None`` when nothing is left."""
    return filter_value(value, ex.filters, ctx)


def filter_value(value: str, filters: Iterable[sources.Filter], ctx: Patterns | _Context) -> str | None:
    """Run ``filters`` on ``value`` in order, then the final trim; ``None`` when nothing is
    left. Raises ``RuleTimeout`` when a pattern runs too long."""
    current: str | None = value
    for f in filters:
        if current is None:
            return None
        current = _filter(f, current, ctx)
    if current is None:
        return None
    current = current.strip(_TRIM)
    if current.lower() in _EMPTY_VALUES:
        return None
    return current


def _filter(f: sources.Filter, value: str, ctx: Patterns | _Context) -> str | None:
    if isinstance(f, str):
        return _SIMPLE[f](value)
    if isinstance(f, sources.RegexFilter):
        m = ctx.search(f.regex, value)
        return _group(m) if m else None
    if isinstance(f, sources.ReplaceFilter):
        try:
            return ctx.pattern(f.replace[0]).sub(f.replace[1], value, timeout=ctx.timeout)
        except TimeoutError as exc:
            raise RuleTimeout(ctx.rule_name, f.replace[0]) from exc
    if isinstance(f, sources.BeforeFilter):
        m = ctx.search(f.before, value)
        return value[: m.start()] if m else value
    if isinstance(f, sources.MapFilter):
        for pattern, mapped in f.map.items():
            if ctx.search(pattern, value):
                return mapped
        return None
    raise AssertionError(f"unknown filter {f!r}")  # the schema admits no other


_MONEY = regex.compile(r"\$?\s*\d[\d,]*(?:\.\d+)?\s*(?:[kKmM](?:illion)?\b)?")


def _first_line(v: str) -> str:
    return next((line for line in v.split("\n") if line.strip()), "")


def _money(v: str) -> str | None:
    m = _MONEY.search(v)
    return m.group(0).strip() if m else None


def _unquote(v: str) -> str:
    v = v.strip()
    while len(v) >= 2 and v[0] in _QUOTES and v[-1] in _QUOTES:
        v = v[1:-1].strip()
    return v


_SIMPLE: dict[str, Callable[[str], str | None]] = {
    "trim": lambda v: v.strip(_TRIM),
    "lower": str.lower,
    "upper": str.upper,
    "title": str.title,
    "digits": lambda v: "".join(c for c in v if c.isdigit()),
    "money": _money,
    "first_line": _first_line,
    "collapse": lambda v: " ".join(v.split()),
    "unquote": _unquote,
}


def timeout_seconds(limit: timedelta) -> float:
    return max(limit.total_seconds(), 0.001)
