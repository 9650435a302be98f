"""Webhook mappings: how a JSON lead source's body becomes a lead.

One YAML file per JSON source in ``rules/webhooks/`` (see ``rules/README.md``): JSON paths
to lead fields, with the same filters, ``constants``, ``required`` and ``require_any`` as
an email rule, plus how the source authenticates its requests and where its event id is.
The file's name is the source's name and its URL: ``rules/webhooks/website_form.yaml`` is
``POST /webhooks/website_form``.

``read_webhook`` is pure: the stored body and the mapping in, the fields it finds (or the
dead letter of a body that is not JSON) out; the pipeline normalizes and scores them like
an email rule's (``daemon.pipeline.parse.parse_webhook``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from daemon import yamlfile
from daemon.config import parse_duration
from daemon.errors import RuleError
from daemon.lead import DeadLetter, DeadLetterReason, Origin, RawEmail
from daemon.reading.parsing import Patterns, filter_value, timeout_seconds
from daemon.reading.sources import (
    FieldName,
    Filter,
    Loaded,
    SourceFile,
    Strict,
    json_schema_of,
)

log = logging.getLogger(__name__)

#: the folder of ``rules_dir`` that holds the webhook mappings
WEBHOOKS_DIR = "webhooks"
#: the URL prefix, and what ``RawEmail.path`` of a stored webhook body starts with
URL_PREFIX = "/webhooks/"


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




def _duration(v: Any) -> timedelta:
    return parse_duration(v)


class TokenAuth(Strict):
    """A shared secret sent as it is in a header (``X-Leadpipe-Token: <secret>``)."""

    type: Literal["token"]
    header: str = "X-Leadpipe-Token"
    #: text before the secret in the header, e.g. ``"Bearer "`` for ``Authorization``
    prefix: str = ""


class HmacAuth(Strict):
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


class JsonField(Strict):
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


class WebhookMapping(SourceFile):
    """One JSON lead source: how its requests authenticate and where each field is."""

    auth: Auth
    #: JSON path of the provider's event id: the same id posted twice is one lead.
    #: Without it, the same body posted twice is.
    event_id: str | None = None
    fields: dict[FieldName, JsonFieldList]

    @field_validator("event_id")
    @classmethod
    def _event_id_parses(cls, v: str | None) -> str | None:
        if v is not None:
            parse_path(v)
        return v


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


#: a webhook mapping and the file it came from
LoadedMapping = Loaded[WebhookMapping]


@dataclass(frozen=True)
class MappingSet:
    """The webhook mappings that loaded, and the errors of the files that did not."""

    mappings: tuple[LoadedMapping, ...] = ()
    errors: tuple[RuleError, ...] = ()

    def __iter__(self) -> Iterator[WebhookMapping]:
        return (m.spec for m in self.mappings)

    def __len__(self) -> int:
        return len(self.mappings)

    def get(self, source: str) -> WebhookMapping | None:
        return next((m.spec for m in self.mappings if m.spec.source == source), None)

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
    mapping, doc = yamlfile.load_rule_model(
        path, WebhookMapping,
        shape="a webhook mapping must be a mapping of keys (source, version, auth, fields)")
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
    return json_schema_of(WebhookMapping, "leadpipe webhook mapping")

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


# -- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JsonFound:
    """What a mapping found in one JSON body: each field's text (filtered, not yet
    normalized), the paths tried for each field it did not find, and the event id."""

    mapping: WebhookMapping
    fields: dict[str, str]
    tried: dict[str, list[str]]
    event_id: str | None


def read_webhook(data: bytes, mapping: WebhookMapping, regex_timeout: timedelta) -> JsonFound | DeadLetter:
    """The fields ``mapping`` finds in one JSON body, or the dead letter of a body that is
    empty or not JSON. Raises ``RuleTimeout`` when a filter's pattern runs too long."""
    if not data.strip():
        return DeadLetter(DeadLetterReason.EMPTY_BODY, f"{mapping.name}: the body is empty",
                          rule=mapping.name)
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        return DeadLetter(DeadLetterReason.UNREADABLE_PAYLOAD,
                          f"{mapping.name}: the body is not JSON: {str(exc)[:200]}",
                          rule=mapping.name)
    ctx = Patterns(timeout_seconds(regex_timeout), mapping.name)
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
    return JsonFound(mapping, found, tried, mapping.event_id_of(data))
