"""The sections of the configuration file, each a checked model: mailboxes, Slack, the web
server, agents and routing, delivery, the admin pages, webhooks, health, silence, the
providers (geocoder, enrichment) and the model endpoint; and the values they share
(durations, sizes, ``<key>_file`` secrets). ``daemon.config`` puts them together."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from daemon.yamlfile import AtKey

DEFAULT_DATABASE_URL = "sqlite:///leadpipe.db"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> timedelta:
    """``'5m'``, ``'30s'``, ``'2h'``, ``'1d'``, ``'250ms'`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration: {value!r} (write e.g. 30s, 5m, 2h, 1d)")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


class _Section(BaseModel):
    """A config section: unknown keys are errors; ``x_file`` fills ``x`` from a file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: keys that may be given as ``<key>_file``
    secret_keys: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        return with_secret_files(data, cls.secret_keys)


def with_secret_files(data: Any, keys: tuple[str, ...] | None) -> Any:
    """``data`` with each ``<key>_file`` read into ``<key>``; ``keys=None``: every ``*_file`` key."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    if keys is None:
        keys = tuple(k[: -len("_file")] for k in data if isinstance(k, str) and k.endswith("_file"))
    for key in keys:
        path = data.pop(f"{key}_file", None)
        if path is not None:
            _secret_from_file(data, key, str(path))
    return data


def _secret_from_file(data: dict[Any, Any], key: str, path: Any) -> None:
    """``data[key]`` from the file ``path`` that ``<key>_file`` named; giving both is an error."""
    if data.get(key):
        raise AtKey((f"{key}_file",), f"give `{key}` or `{key}_file`, not both")
    data[key] = read_secret(key, path)


def read_secret(key: str, path: Any) -> str:
    """The content of the file ``path`` that ``<key>_file`` named, stripped."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise AtKey((f"{key}_file",), f"cannot read {path}: {exc.strerror}") from exc


class MailboxSettings(_Section):
    """One IMAP mailbox to watch."""

    secret_keys: ClassVar[tuple[str, ...]] = ("password", "oauth2_token")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    host: str
    port: int | None = None
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str
    password: str | None = None
    oauth2_token: str | None = None
    oauth2_token_command: str | None = None
    folder: str = "INBOX"
    processed_folder: str | None = None
    processed_keyword: str = "LeadpipeProcessed"
    start_from: str = "new"
    poll_interval: timedelta = timedelta(seconds=60)
    idle_timeout: timedelta = timedelta(minutes=25)
    fetch_batch: int = Field(100, ge=1, le=1000)
    #: a batch holds fewer emails when they are big: it stops before this many bytes (an
    #: email bigger than this alone is fetched by itself), so a backlog of emails with
    #: attachments does not hold ``fetch_batch`` × their size in memory at once
    fetch_batch_bytes: int = Field(25_000_000, ge=65_536)
    alert_after: timedelta = timedelta(minutes=10)
    timeout: timedelta = timedelta(seconds=30)

    _durations = field_validator(
        "poll_interval", "idle_timeout", "alert_after", "timeout", mode="before"
    )(lambda v: parse_duration(v))
    _sizes = field_validator("fetch_batch_bytes", mode="before")(lambda v: parse_size(v))

    @field_validator("start_from")
    @classmethod
    def _start_from(cls, v: str) -> str:
        if v in ("new", "all"):
            return v
        if v.startswith("since:"):
            try:
                date.fromisoformat(v[len("since:") :])
            except ValueError as exc:
                raise ValueError(f"start_from: bad date in {v!r} (write since:YYYY-MM-DD)") from exc
            return v
        raise ValueError(f"start_from must be new, all or since:YYYY-MM-DD, not {v!r}")

    @model_validator(mode="after")
    def _credentials(self) -> MailboxSettings:
        given = [
            k for k in ("password", "oauth2_token", "oauth2_token_command") if getattr(self, k)
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of password(_file), oauth2_token(_file), oauth2_token_command"
                f" (found {', '.join(given) or 'none'})"
            )
        if self.security == "none" and self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(
                "security: none sends the password in clear; it is allowed only on loopback"
            )
        return self

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "ssl" else 143)


class SlackSettings(_Section):
    secret_keys: ClassVar[tuple[str, ...]] = ("bot_token", "app_token", "signing_secret")

    bot_token: str | None = None
    app_token: str | None = None
    signing_secret: str | None = None
    base_url: str = "https://slack.com/api/"
    alerts_channel: str | None = None
    hot_leads_channel: str | None = None
    claim_timeout: timedelta = timedelta(minutes=5)

    _durations = field_validator("claim_timeout", mode="before")(lambda v: parse_duration(v))


class WebSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


class AgentSettings(_Section):
    """One agent leads can go to; ``weight`` gives extra round-robin turns."""

    name: str
    email: str | None = None
    slack_user_id: str | None = None
    crm_user_id: str | None = None
    active: bool = True
    weight: int = Field(1, ge=1, le=100)
    #: the agent's IANA time zone, for ``hours`` (checked by daemon/routing/flows.py)
    time_zone: str | None = None
    #: working hours per day or range of days (``mon-fri: "09:00-17:00"``); none: any time
    hours: dict[str, str] = Field(default_factory=dict)


class RoutingSettings(_Section):
    """How leads are given to agents (daemon/routing/decide.py)."""

    #: a lead whose phone or email matches a lead this recent keeps that lead's agent
    repeat_window: timedelta = timedelta(days=30)
    #: hot leads are offered in Slack for claiming; off (or Slack not configured): round robin
    offer_hot_leads: bool = True
    #: how often offers past their claim deadline (and leads past their deadline to
    #: accept) are looked for
    timeout_check_interval: timedelta = timedelta(seconds=5)
    #: lead flows, first match wins (checked by daemon/routing/flows.py); none: one rotation
    flows: list[dict[str, Any]] = Field(default_factory=list)
    #: the office's clock, for flows matching on the time of day
    time_zone: str = "UTC"
    #: the default flow's deadline to accept a lead (a flow sets its own); None: none
    accept_deadline: timedelta | None = None
    #: an agent missing this many deadlines within a day: the team lead is told
    miss_alert_after: int = Field(3, ge=1, le=1000)

    _durations = field_validator("repeat_window", "timeout_check_interval", mode="before")(
        lambda v: parse_duration(v)
    )
    _deadline = field_validator("accept_deadline", mode="before")(
        lambda v: None if v is None else parse_duration(v)
    )


class DeliverySettings(_Section):
    """How the dispatcher retries outbox rows (daemon/delivery/dispatch.py)."""

    #: attempts before a delivery is dead (an alert, and it waits for a retry by hand)
    max_attempts: int = Field(8, ge=1, le=100)
    #: the first retry waits up to this long; each further one up to twice as long
    backoff_base: timedelta = timedelta(seconds=2)
    #: no retry waits longer than this, unless the server's Retry-After says so
    backoff_cap: timedelta = timedelta(minutes=10)
    #: connect and read timeout of every outbound call
    timeout: timedelta = timedelta(seconds=10)
    #: a delivery in flight this long is taken to have died with its process, and retried
    lease: timedelta = timedelta(seconds=60)

    _durations = field_validator(
        "backoff_base", "backoff_cap", "timeout", "lease", mode="before"
    )(lambda v: parse_duration(v))


class AdminUser(_Section):
    """One person who may sign in to the admin pages (``leadpipe admin hash-password``)."""

    name: str = Field(min_length=1, max_length=100)
    password_hash: str

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, v: str) -> str:
        if not v.startswith("$argon2"):
            raise ValueError("password_hash must be an Argon2 hash; make one with "
                             "`leadpipe admin hash-password`")
        return v


class AdminSettings(_Section):
    """The admin pages under ``/admin`` (daemon/web/admin/): on when a user or a token is set."""

    secret_keys: ClassVar[tuple[str, ...]] = ("token", "session_secret")

    users: list[AdminUser] = Field(default_factory=list)
    #: one shared admin token instead of (or beside) users; at least 16 characters
    token: str | None = Field(None, min_length=16)
    #: signs the session cookies; unset: a random key per start (sessions end on restart)
    session_secret: str | None = Field(None, min_length=16)
    session_lifetime: timedelta = timedelta(hours=12)
    #: send cookies over HTTPS only; false only for plain http on loopback
    cookie_secure: bool = True
    #: failed logins per client address (and per user name) within ``login_window``
    login_attempts: int = Field(5, ge=1, le=1000)
    login_window: timedelta = timedelta(minutes=15)

    _durations = field_validator("session_lifetime", "login_window", mode="before")(
        lambda v: parse_duration(v)
    )

    @property
    def enabled(self) -> bool:
        return bool(self.users or self.token)

    @model_validator(mode="after")
    def _names_unique(self) -> AdminSettings:
        seen: set[str] = set()
        for i, u in enumerate(self.users):
            if u.name in seen:
                raise AtKey(("users", i, "name"), f"two users have the name {u.name!r}")
            seen.add(u.name)
        return self


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2}


def parse_size(value: Any) -> int:
    """``'1MB'``, ``'512KiB'``, ``'64kb'`` or a number of bytes."""
    if isinstance(value, int):
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"not a size: {value!r} (write e.g. 1MB, 512KB, or a number of bytes)")
    unit = m.group(2).lower() if m.group(2) else None
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


class WebhookSourceSettings(_Section):
    """The secret of one webhook source (its scheme is in rules/webhooks/SOURCE.yaml)."""

    secret_keys: ClassVar[tuple[str, ...]] = ("secret",)

    secret: str | None = Field(None, min_length=8)


class WebhookSettings(_Section):
    """``POST /webhooks/{source}`` (daemon/intake/webhooks.py)."""

    #: a bigger body is refused with 413
    max_body: int = Field(1_048_576, ge=1024)
    #: per source: ``secret`` or ``secret_file``
    sources: dict[str, WebhookSourceSettings] = Field(default_factory=dict)

    _sizes = field_validator("max_body", mode="before")(lambda v: parse_size(v))


class HealthSettings(_Section):
    """``GET /readyz`` and ``leadpipe status`` (daemon/ops/health.py)."""

    #: not ready when the oldest outbox row due for sending has waited longer than this
    outbox_stuck_after: timedelta = timedelta(minutes=10)
    #: not ready when the oldest stored email still waiting for the pipeline is older than this
    email_stuck_after: timedelta = timedelta(minutes=10)
    #: how often each running daemon writes its heartbeat row
    heartbeat_interval: timedelta = timedelta(seconds=5)
    #: not ready when no daemon has written its heartbeat for longer than this
    heartbeat_stale_after: timedelta = timedelta(seconds=30)

    _durations = field_validator("outbox_stuck_after", "email_stuck_after", "heartbeat_interval",
                                 "heartbeat_stale_after", mode="before")(lambda v: parse_duration(v))

    @model_validator(mode="after")
    def _stale_after_beats(self) -> HealthSettings:
        if self.heartbeat_interval <= timedelta(0):
            raise ValueError("heartbeat_interval must be more than 0s")
        if self.heartbeat_stale_after <= self.heartbeat_interval:
            raise ValueError(f"heartbeat_stale_after ({self.heartbeat_stale_after.total_seconds():g}s) "
                             "must be longer than heartbeat_interval "
                             f"({self.heartbeat_interval.total_seconds():g}s)")
        return self


class SilenceSettings(_Section):
    """The source-silence alert (daemon/ops/silence.py)."""

    enabled: bool = True
    #: a source is watched once its history averages at least this many leads a week
    min_per_week: float = Field(5.0, gt=0)
    #: how far back its history goes
    history: timedelta = timedelta(days=30)
    #: silent: no lead for longer than ``multiplier`` × its median gap between leads …
    multiplier: float = Field(3.0, gt=0)
    #: … and never less than this
    floor: timedelta = timedelta(hours=6)
    check_interval: timedelta = timedelta(minutes=5)

    _durations = field_validator("history", "floor", "check_interval", mode="before")(
        lambda v: parse_duration(v)
    )


class ProviderSettings(_Section):
    """A provider that answers questions about a lead over the network (daemon/providers/):
    which one, where, its key, and how much of it leadpipe may use. With no ``provider``
    (the default) nothing is asked and everything works as without it."""

    secret_keys: ClassVar[tuple[str, ...]] = ("api_key",)

    #: the adapter's name (an unknown one stops the start listing the valid ones); None: off
    provider: str | None = None
    #: the API's root, for a stand-in or a self-hosted server; None: the provider's public one
    base_url: str | None = None
    api_key: str | None = None
    #: sent as User-Agent (Nominatim's policy asks for one naming the application and a contact)
    user_agent: str | None = None
    #: requests per second, per process (replicas sharing a key: divide it); None: the
    #: provider's published limit
    rate: float | None = Field(None, gt=0)
    #: calls per UTC day, counted in the database (so replicas and restarts share it); None: no cap
    daily_quota: int | None = Field(None, ge=1)
    #: the tech channel hears once a day when this share of ``daily_quota`` is used
    alert_at: float = Field(0.9, gt=0, le=1)
    #: how long the pipeline may wait for an answer before routing the lead without it
    budget: timedelta = timedelta(seconds=1.5)
    #: connect and read timeout of a lookup done later, off the pipeline
    timeout: timedelta = timedelta(seconds=10)
    #: a lookup done later is given up (and alerted) after this many transient failures
    max_attempts: int = Field(12, ge=1, le=100)

    _durations = field_validator("budget", "timeout", mode="before")(lambda v: parse_duration(v))


class ModelSettings(_Section):
    """An OpenAI-compatible chat-completions endpoint (a local Ollama or vLLM server, or a
    hosted one), optional: with no ``base_url`` (the default) no model is ever asked."""

    secret_keys: ClassVar[tuple[str, ...]] = ("api_key",)

    #: the API's root, e.g. http://127.0.0.1:11434/v1 (Ollama) or https://api.openai.com/v1
    base_url: str | None = None
    #: the model's name at that endpoint (``llama3.1:8b``, ``gpt-4o-mini``)
    model: str = ""
    api_key: str | None = None
    #: how long one answer may take
    timeout: timedelta = timedelta(seconds=20)
    #: requests per second, per process
    rate: float = Field(1.0, gt=0)
    #: what it is asked: ``reading`` — the last resort for an email neither a rule nor the
    #: reader can read; ``intent`` — what the person wants, beside the built-in reading
    use_for: tuple[Literal["reading", "intent"], ...] = ("reading",)

    _durations = field_validator("timeout", mode="before")(lambda v: parse_duration(v))

    @model_validator(mode="after")
    def _named(self) -> ModelSettings:
        if self.base_url and not self.model:
            raise ValueError("model: give the model's name at base_url (e.g. model: llama3.1:8b)")
        return self
