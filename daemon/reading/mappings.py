"""Webhook mappings: how a JSON lead source's body becomes a lead.

One YAML file per JSON source in ``rules/webhooks/`` (see ``rules/README.md``): JSON paths
to lead fields, with the same filters, ``constants``, ``required`` and ``require_any`` as
an email rule, plus how the source authenticates its requests and where its event id is.
The file's name is the source's name and its URL: ``rules/webhooks/website_form.yaml`` is
``POST /webhooks/website_form``.

``parse_webhook`` is pure, like ``parse_email``: the stored body and the mapping in, a
``Lead`` or a ``DeadLetter`` out. It never raises.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from daemon import yamlfile
from daemon.config import parse_duration
from daemon.errors import RuleError
from daemon.lead import DeadLetter, DeadLetterReason, Lead, Origin, ParseOutcome, RawEmail
from daemon.qualifying import normalize
from daemon.reading.parsing import Patterns, RuleTimeout, filter_value, timeout_seconds
from daemon.reading.rules import FieldName, Filter, required_are_extracted

if TYPE_CHECKING:
    from daemon.pipeline import Engine

log = logging.getLogger(__name__)

#: the folder of ``rules_dir`` that holds the webhook mappings
WEBHOOKS_DIR = "webhooks"
#: the URL prefix, and what ``RawEmail.path`` of a stored webhook body starts with
URL_PREFIX = "/webhooks/"
SOURCE_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"


# -- JSON paths --------------------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """``[key=value]``: the first object of a list whose ``key`` is ``value``."""

    key: str
    value: str


Step = str | int | Where


def parse_path(text: str) -> tuple[Step, ...]:
    """``contact.phone``, ``$.data[0].email``, ``field_data[name=email].values[0]``,
    ``["first name"]``. Raises ``ValueError`` saying what is wrong."""
    s = text.strip()
    i = 1 if s.startswith("$") else 0
    steps: list[Step] = []
    first = True
    while i < len(s):
        c = s[i]
        if c == "[":
            end = _closing(s, i)
            steps.append(_bracket(s[i + 1 : end].strip(), text))
            i = end + 1
        else:
            if c == ".":
                i += 1
            elif not first:
                raise ValueError(f"bad JSON path {text!r}: expected . or [ at {s[i:]!r}")
            j = i
            while j < len(s) and s[j] not in ".[]":
                j += 1
            name = s[i:j].strip()
            if not name:
                raise ValueError(f"bad JSON path {text!r}: an empty key")
            steps.append(name)
            i = j
        first = False
    if not steps:
        raise ValueError(f"bad JSON path {text!r}: no key")
    return tuple(steps)


def _closing(s: str, start: int) -> int:
    quote: str | None = None
    for k in range(start + 1, len(s)):
        c = s[k]
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "]":
            return k
    raise ValueError(f"bad JSON path {s!r}: [ without ]")


def _bracket(inner: str, text: str) -> Step:
    if inner.lstrip("-").isdigit():
        return int(inner)
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "\"'":
        return inner[1:-1]
    if "=" in inner:
        key, _, value = inner.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if key.strip():
            return Where(key.strip(), value)
    raise ValueError(f"bad JSON path {text!r}: [{inner}] is neither an index, a \"key\" nor key=value")


#: what ``resolve`` returns for a path that leads nowhere
MISSING = object()


def resolve(doc: Any, steps: tuple[Step, ...]) -> Any:
    """The value at ``steps`` in ``doc``, or ``MISSING``."""
    current = doc
    for step in steps:
        if isinstance(step, Where):
            if not isinstance(current, list):
                return MISSING
            current = next((x for x in current if isinstance(x, dict)
                            and _text(x.get(step.key), ", ") == step.value), MISSING)
        elif isinstance(step, int):
            if not isinstance(current, list) or not -len(current) <= step < len(current):
                return MISSING
            current = current[step]
        else:
            if not isinstance(current, dict) or step not in current:
                return MISSING
            current = current[step]
        if current is MISSING:
            return MISSING
    return current


def _text(value: Any, join: str) -> str | None:
    """A JSON value as the text a filter sees; ``None`` for null, objects and nothing."""
    if value is None or value is MISSING or isinstance(value, dict):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        parts = [t for t in (_text(v, join) for v in value if not isinstance(v, list)) if t]
        return join.join(parts) if parts else None
    return str(value).replace("\x00", "")  # PostgreSQL text holds no NUL


# -- the mapping file --------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _duration(v: Any) -> timedelta:
    return parse_duration(v)


class TokenAuth(_Strict):
    """A shared secret sent as it is in a header (``X-Leadpipe-Token: <secret>``)."""

    type: Literal["token"]
    header: str = "X-Leadpipe-Token"
    #: text before the secret in the header, e.g. ``"Bearer "`` for ``Authorization``
    prefix: str = ""


class HmacAuth(_Strict):
    """An HMAC of the raw body with the shared secret, sent in a header.

    With ``timestamp: true`` the header is ``t=<unix seconds>,v1=<signature>`` and the
    signed text is ``<t>.<body>``; a timestamp further than ``tolerance`` from now is refused.
    """

    type: Literal["hmac"]
    header: str = "X-Signature"
    algorithm: Literal["sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    #: text before the signature in the header, e.g. ``"sha256="``
    prefix: str = ""
    timestamp: bool = False
    tolerance: Annotated[timedelta, BeforeValidator(_duration)] = timedelta(minutes=5)


Auth = Annotated[TokenAuth | HmacAuth, Field(discriminator="type")]


class JsonField(_Strict):
    """One place to look for one field: a JSON path, then filters on the value found."""

    path: str
    filters: list[Filter] = Field(default_factory=list)
    #: how a list of values is joined into one text
    join: str = ", "

    @field_validator("path")
    @classmethod
    def _parses(cls, v: str) -> str:
        parse_path(v)
        return v

    @property
    def steps(self) -> tuple[Step, ...]:
        return parse_path(self.path)


def _fields(value: Any) -> Any:
    items = value if isinstance(value, list) else [value]
    return [{"path": x} if isinstance(x, str) else x for x in items]


JsonFieldList = Annotated[list[JsonField], BeforeValidator(_fields)]


class WebhookMapping(_Strict):
    """One JSON lead source: how its requests authenticate and where each field is."""

    source: str = Field(pattern=SOURCE_PATTERN)
    version: str
    description: str | None = None
    auth: Auth
    #: JSON path of the provider's event id: the same id posted twice is one lead.
    #: Without it, the same body posted twice is.
    event_id: str | None = None
    fields: dict[FieldName, JsonFieldList]
    constants: dict[FieldName, str] = Field(default_factory=dict)
    required: list[FieldName] = Field(default_factory=list)
    require_any: list[list[FieldName]] = Field(
        default_factory=lambda: [["phone", "email"]], validate_default=True
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) else v

    @field_validator("event_id")
    @classmethod
    def _event_id_parses(cls, v: str | None) -> str | None:
        if v is not None:
            parse_path(v)
        return v

    @field_validator("required", "require_any")
    @classmethod
    def _required_are_mapped(cls, v: list[Any], info: ValidationInfo) -> list[Any]:
        return required_are_extracted(v, info)

    @property
    def name(self) -> str:
        """``website_form v2``: how people and dead letters name this mapping."""
        return f"{self.source} v{self.version}"

    def event_id_of(self, body: bytes) -> str | None:
        """The provider's event id in ``body``, or ``None`` (no path, not JSON, absent)."""
        if self.event_id is None:
            return None
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            return None
        found = _text(resolve(doc, parse_path(self.event_id)), ",")
        return (found.strip()[:200] or None) if found else None


@dataclass(frozen=True)
class LoadedMapping:
    mapping: WebhookMapping
    file: str


@dataclass(frozen=True)
class MappingSet:
    """The webhook mappings that loaded, and the errors of the files that did not."""

    mappings: tuple[LoadedMapping, ...] = ()
    errors: tuple[RuleError, ...] = ()

    def __iter__(self) -> Iterator[WebhookMapping]:
        return (m.mapping for m in self.mappings)

    def __len__(self) -> int:
        return len(self.mappings)

    def get(self, source: str) -> WebhookMapping | None:
        return next((m.mapping for m in self.mappings if m.mapping.source == source), None)

    def refused(self, source: str) -> RuleError | None:
        """The error of ``source``'s file when it exists but does not load."""
        return next((e for e in self.errors if Path(e.file).stem == source), None)


def mapping_files(rules_dir: Path) -> list[Path]:
    """The webhook mapping files under ``rules_dir``, sorted by name."""
    folder = Path(rules_dir) / WEBHOOKS_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def load_mapping_file(path: Path) -> WebhookMapping:
    """Load and check one mapping file. Raises ``RuleError`` naming file, line and key."""
    name = str(path)
    try:
        doc = yamlfile.load(path)
    except yamlfile.YamlSyntaxError as exc:
        raise RuleError(f"YAML syntax error: {exc.problem}", file=name, line=exc.line, key=exc.key) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"cannot read the file: {exc}", file=name) from exc
    if not isinstance(doc.data, dict):
        raise RuleError("a webhook mapping must be a mapping of keys (source, version, auth, fields)",
                        file=name, line=1)
    try:
        mapping = WebhookMapping.model_validate(doc.data)
    except ValidationError as exc:
        first, *rest = yamlfile.problems(doc, exc, model=WebhookMapping)
        err = RuleError(first.message, file=name, line=first.line, key=first.key)
        err.also = [RuleError(p.message, file=name, line=p.line, key=p.key) for p in rest]
        raise err from exc
    if mapping.source != path.stem:
        raise RuleError(f"source `{mapping.source}` must be the file's name ({path.stem}): it is "
                        f"the URL {URL_PREFIX}{path.stem}", file=name, line=doc.line_of(("source",)),
                        key="source")
    return mapping


def load_mappings(rules_dir: Path | str) -> MappingSet:
    """Every mapping in ``rules_dir/webhooks``. Broken files are reported, never fatal."""
    loaded: list[LoadedMapping] = []
    errors: list[RuleError] = []
    for path in mapping_files(Path(rules_dir)):
        try:
            loaded.append(LoadedMapping(load_mapping_file(path), str(path)))
        except RuleError as exc:
            errors.extend([exc, *exc.also])
    return MappingSet(tuple(loaded), tuple(errors))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a webhook mapping file (``rules/webhooks/schema.json``)."""
    schema = WebhookMapping.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "leadpipe webhook mapping"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


# -- stored bodies -----------------------------------------------------------------------


def webhook_raw(source: str, body: bytes, received_at: datetime) -> RawEmail:
    """The ``RawEmail`` a webhook body is stored as: origin ``webhook``, ``path`` its URL."""
    return RawEmail(data=body, origin=Origin.WEBHOOK, received_at=received_at,
                    path=URL_PREFIX + source)


def source_of(raw: RawEmail) -> str:
    """The webhook source a stored body was posted to."""
    return (raw.path or "").removeprefix(URL_PREFIX)


# -- parsing -----------------------------------------------------------------------------


def parse_stored_webhook(raw: RawEmail, engine: Engine) -> ParseOutcome:
    """A stored webhook body's lead or dead letter, with the engine's mapping for its source."""
    source = source_of(raw)
    mapping = engine.webhooks.get(source)
    if mapping is None:
        return DeadLetter(DeadLetterReason.NO_MATCHING_RULE,
                          f"no webhook mapping rules/{WEBHOOKS_DIR}/{source}.yaml is in force",
                          rule=None)
    return parse_webhook(raw.data, mapping, engine, received_at=raw.received_at)


def parse_webhook(data: bytes, mapping: WebhookMapping, engine: Engine, *,
                  received_at: datetime | None = None) -> Lead | DeadLetter:
    """Turn one JSON body into a lead or a dead letter. Never raises."""
    try:
        return _parse(data, mapping, engine, received_at)
    except RuleTimeout as exc:
        return DeadLetter(DeadLetterReason.RULE_TIMEOUT, str(exc), rule=mapping.name)
    except Exception as exc:  # isolation boundary: one body's failure is its dead letter
        log.exception("webhook %s: parser error", mapping.source)
        return DeadLetter(DeadLetterReason.PARSER_ERROR,
                          f"the parser failed: {type(exc).__name__}: {exc}", rule=mapping.name)


def _parse(data: bytes, mapping: WebhookMapping, engine: Engine, received_at: datetime | None,
           ) -> Lead | DeadLetter:
    if not data.strip():
        return DeadLetter(DeadLetterReason.EMPTY_BODY, f"{mapping.name}: the body is empty",
                          rule=mapping.name)
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        return DeadLetter(DeadLetterReason.UNREADABLE_PAYLOAD,
                          f"{mapping.name}: the body is not JSON: {str(exc)[:200]}",
                          rule=mapping.name)
    ctx = Patterns(timeout_seconds(engine.regex_timeout), mapping.name)
    found: dict[str, str] = {}
    tried: dict[str, list[str]] = {}
    for name, places in mapping.fields.items():
        for place in places:
            text = _text(resolve(doc, place.steps), place.join)
            value = filter_value(text, place.filters, ctx) if text is not None else None
            if value is not None:
                found[name] = value
                break
        else:
            tried[name] = [f"path `{p.path}`" for p in places]
    for name, constant in mapping.constants.items():
        found.setdefault(name, constant)
    lead = normalize.normalize_fields(
        found, source=mapping.source, rule_version=mapping.version,
        message_id=mapping.event_id_of(data), received_at=received_at, region=engine.region)
    problem = _missing_required(mapping, lead, found, tried)
    if problem is not None:
        return problem
    return engine.scoring.score(lead)


def _value(lead: Lead, name: str) -> Any:
    p = lead.property
    return {
        "address": p.address, "city": p.city, "state": p.state, "postal_code": p.postal_code,
        "price": p.price, "mls_id": p.mls_id, "url": p.url,
        "budget": lead.budget_min if lead.budget_min is not None else lead.budget_max,
    }.get(name, getattr(lead, name, None))


def _missing_required(mapping: WebhookMapping, lead: Lead, found: dict[str, str],
                      tried: dict[str, list[str]]) -> DeadLetter | None:
    missing: list[str] = [n for n in mapping.required if _value(lead, n) is None]
    for group in mapping.require_any:
        if all(_value(lead, n) is None for n in group):
            missing.append(" or ".join(group))
    if not missing:
        return None
    parts = []
    for name in missing:
        sentence = f"required field `{name}` not found"
        for single in name.split(" or "):
            if single in found:
                sentence += f"; `{single}` was {found[single]!r} but is not valid"
            elif single in tried:
                sentence += f"; {single}: tried {', '.join(tried[single])}"
        parts.append(sentence)
    return DeadLetter(DeadLetterReason.MISSING_REQUIRED_FIELD,
                      f"{mapping.name}: " + ". ".join(parts), rule=mapping.name,
                      fields_found=dict(found), fields_missing=tuple(missing))
