"""Settings: one YAML file plus ``LEADPIPE_`` environment variables, checked once at start.

Environment variables override the file (``LEADPIPE_SLACK__BOT_TOKEN`` sets
``slack.bot_token``). A key ending in ``_file`` names a file whose content is the value of
the key without the suffix (Docker secrets). Any problem is a ``ConfigError`` naming the
file, the line and the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from daemon import yamlfile
from daemon.config.sections import (  # noqa: F401 - the sections, importable from here
    DEFAULT_DATABASE_URL,
    AdminSettings,
    AdminUser,
    AgentSettings,
    DeliverySettings,
    HealthSettings,
    MailboxSettings,
    ModelSettings,
    ProviderSettings,
    RoutingSettings,
    SilenceSettings,
    SlackSettings,
    WebhookSettings,
    WebhookSourceSettings,
    WebSettings,
    parse_duration,
    parse_size,
    read_secret,
    with_secret_files,
)
from daemon.errors import ConfigError
from daemon.yamlfile import AtKey


class NotifierSettings(BaseModel):
    """One outside system; checked by the notifier it names (its own keys vary)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        # Any `<key>_file` of a notifier is a secret file (api_key_file, secret_file, …).
        return with_secret_files(data, None)


class Settings(BaseSettings):
    """The whole configuration, validated once at start."""

    model_config = SettingsConfigDict(
        env_prefix="LEADPIPE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )
    #: ``database_url_file`` (read by ``_database_url_file``); named so that an unknown key
    #: near it is told about it
    secret_keys: ClassVar[tuple[str, ...]] = ("database_url",)

    database_url: str = DEFAULT_DATABASE_URL
    rules_dir: Path = Path("rules")
    fixtures_dir: Path = Path("fixtures/emails")
    inbox_dir: Path = Path("inbox")
    #: a file in inbox_dir with no close-write event is taken once unchanged this long
    inbox_settle: timedelta = timedelta(seconds=10)
    default_region: str = Field("US", pattern=r"^[A-Z]{2}$")
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    regex_timeout: timedelta = timedelta(seconds=1)
    poll_interval: timedelta = timedelta(seconds=2)
    mailboxes: list[MailboxSettings] = Field(default_factory=list)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    agents: list[AgentSettings] = Field(default_factory=list)
    #: teams of agents that flows route to (checked by daemon/routing/flows.py)
    teams: list[dict[str, Any]] = Field(default_factory=list)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    notifiers: list[NotifierSettings] = Field(default_factory=list)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    silence: SilenceSettings = Field(default_factory=SilenceSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    #: coordinates and county of a lead's property (daemon/providers/); off by default
    geocoder: ProviderSettings = Field(default_factory=ProviderSettings)
    #: the company, job title and public profiles of a lead's person, looked up by email
    #: (daemon/providers/enrichment.py); off by default
    enrichment: ProviderSettings = Field(default_factory=ProviderSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)

    _durations = field_validator("regex_timeout", "poll_interval", "inbox_settle", mode="before")(
        lambda v: parse_duration(v)
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (passed in as init values).
        return (env_settings, init_settings)

    @model_validator(mode="before")
    @classmethod
    def _database_url_file(cls, data: Any) -> Any:
        if isinstance(data, dict) and "database_url_file" in data:
            data = dict(data)
            data["database_url"] = read_secret("database_url", data.pop("database_url_file"))
        return data

    @model_validator(mode="after")
    def _agents_unique(self) -> Settings:
        for key in ("name", "slack_user_id"):
            seen: dict[str, str] = {}
            for i, a in enumerate(self.agents):
                value = getattr(a, key)
                if value is not None and value in seen:
                    raise AtKey(("agents", i, key), f"{seen[value]} has {key} {value!r} already; "
                                "each agent's must be unique")
                if value is not None:
                    seen[value] = a.name
        return self

    #: where each value came from (the file's lines, the environment), for errors found
    #: after loading (``locate_notifier_error``)
    _origin: tuple[yamlfile.YamlDocument, dict[tuple[str, ...], str]] | None = PrivateAttr(None)

    @property
    def agents_by_name(self) -> dict[str, AgentSettings]:
        return {a.name: a for a in self.agents}


def locate_notifier_error(settings: Settings, index: int, error: ConfigError) -> ConfigError:
    """``error``, raised while building ``notifiers[index]`` (the notifier's own checks,
    which see neither file nor line), as ``file:line: notifiers[i].KEY: problem`` with the
    key as written (``secrt_file`` where the check saw ``secrt``), or naming the
    environment variable the entry came from."""
    doc, env = settings._origin or (yamlfile.YamlDocument(data={}, file=""), {})
    path: tuple[str | int, ...] = ("notifiers", index)
    key, problem, suggestion = error.key, error.problem or str(error), error.suggestion
    if key is not None:
        if (*path, key) not in doc.lines and (*path, f"{key}_file") in doc.lines:
            key = f"{key}_file"  # read from a file into `key` before the check saw it
            suggestion = f"{suggestion}_file" if suggestion else None
        path = (*path, key)
    if suggestion:
        problem += f"; did you mean `{suggestion}`?"
    where = yamlfile.source_of(path, env)
    if where is None and doc.file:
        line = doc.line_of(path)
        where = f"{doc.file}:{line}" if line else doc.file
    located = f"{yamlfile.dotted(path)}: {problem}"  # no file: Settings built in code
    return ConfigError(f"{where}: {located}" if where else located, key=error.key, problem=problem)


ENV_PREFIX = "LEADPIPE_"


def environment_keys(environ: Mapping[str, str] | None = None) -> dict[tuple[str, ...], str]:
    """The key path each ``LEADPIPE_`` environment variable sets (``("slack",
    "claim_timeout")`` for ``LEADPIPE_SLACK__CLAIM_TIMEOUT``), to the name errors give it."""
    environ = os.environ if environ is None else environ
    found = {}
    for name in environ:
        if name.upper().startswith(ENV_PREFIX) and name.upper() != "LEADPIPE_CONFIG":
            path = tuple(name[len(ENV_PREFIX):].lower().split("__"))
            found[path] = f"environment variable {name}"
    return found


def load_settings(path: Path | str | None = None) -> Settings:
    """Read ``path`` (if given) and the environment into ``Settings``.

    Raises ``ConfigError`` whose message lists every problem as ``file:line: key: what``.
    """
    doc = yamlfile.YamlDocument(data={}, file="(defaults)")
    if path is not None:
        try:
            doc = yamlfile.load(path)
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: no such configuration file") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except yamlfile.YamlSyntaxError as exc:
            raise ConfigError(str(exc)) from exc
        if doc.data is None:
            doc = yamlfile.YamlDocument(data={}, file=str(path))
        elif not isinstance(doc.data, dict):
            raise ConfigError(f"{path}:1: the configuration must be a mapping of keys")
    env = environment_keys()
    try:
        settings = Settings(**doc.data)
    except ValidationError as exc:
        lines = [str(p) for p in yamlfile.problems(doc, exc, model=Settings, elsewhere=env)]
        raise ConfigError("bad configuration:\n  " + "\n  ".join(lines)) from exc
    settings._origin = (doc, env)
    return settings


def locate_error(settings: Settings, section: tuple[str | int, ...], error: ConfigError) -> ConfigError:
    """``error``, raised about one key of ``section`` by a check that runs after loading (a
    provider's name, a key it needs), as ``file:line: section.KEY: problem`` — or naming the
    environment variable the value came from."""
    doc, env = settings._origin or (yamlfile.YamlDocument(data={}, file=""), {})
    path = (*section, error.key) if error.key else section
    problem = error.problem or str(error)
    where = yamlfile.source_of(path, env)
    if where is None and doc.file:
        line = doc.line_of(path) or doc.line_of(section)
        where = f"{doc.file}:{line}" if line else doc.file
    located = f"{yamlfile.dotted(path)}: {problem}"
    return ConfigError(f"{where}: {located}" if where else located, key=error.key, problem=problem)
