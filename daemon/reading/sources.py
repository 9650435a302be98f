"""What an email rule and a webhook mapping share: both are a source file.

A source file (``rules/SOURCE.yaml`` for emails, ``rules/webhooks/SOURCE.yaml`` for JSON
posted to leadpipe) names its ``source`` and ``version``, says where each lead field is
(``fields``), which values are fixed (``constants``) and which fields a lead must have
(``required``, ``require_any``), and cleans what it finds with the same ``filters``. This
module holds those common parts: the lead field names, the regular expressions and filters
of a rule file, the ``SourceFile`` model the two schemas extend, and the JSON Schema export.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar, get_args

import regex
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from daemon.yamlfile import VersionText

#: what a source's name may be: it is also a file name and, for webhooks, a URL
SOURCE_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"

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


class Strict(BaseModel):
    """Unknown keys are errors; a loaded file never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RegexFilter(Strict):
    regex: Pattern


class ReplaceFilter(Strict):
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


class BeforeFilter(Strict):
    before: Pattern


class MapFilter(Strict):
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



class SourceFile(Strict):
    """The keys every source file has. ``fields`` is each kind's own: where an email rule
    or a webhook mapping finds a field."""

    source: str = Field(pattern=SOURCE_PATTERN)
    version: VersionText
    description: str | None = None
    fields: dict[FieldName, Any]
    constants: dict[FieldName, str] = Field(default_factory=dict)
    required: list[FieldName] = Field(default_factory=list)
    require_any: list[list[FieldName]] = Field(
        default_factory=lambda: [["phone", "email"]], validate_default=True
    )

    @field_validator("required", "require_any")
    @classmethod
    def _required_are_extracted(cls, v: list[Any], info: ValidationInfo) -> list[Any]:
        return required_are_extracted(v, info)

    @property
    def name(self) -> str:
        """``zillow v3``: how people and dead letters name this source's file."""
        return f"{self.source} v{self.version}"


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



S = TypeVar("S", bound=SourceFile)


@dataclass(frozen=True)
class Loaded(Generic[S]):
    """A source file that loaded: what it says (a ``Rule``, a ``WebhookMapping``), and the
    path it came from."""

    spec: S
    file: str


def json_schema_of(model: type[BaseModel], title: str) -> dict[str, Any]:
    """The JSON Schema of a kind of source file, for editors (``rules/schema.json``)."""
    schema = model.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = title
    return schema
