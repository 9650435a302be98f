"""Reading one ``notifiers:`` entry's keys, for the notifiers that take them.

Every entry may give ``name`` (two entries of one type need different names), ``timeout``
and ``connect_timeout`` (default: ``delivery.timeout``) and ``rate_limit``; each notifier
adds its own keys. A key no notifier knows, a missing required value or a bad duration is
a ``ConfigError`` naming the entry and the key. (``<key>_file`` was already read into
``<key>`` by ``daemon/config.py``.)
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from daemon.errors import ConfigError
from notifiers.base import RateLimit

#: keys every entry may hold; ``type`` and ``lease`` are set by leadpipe itself
COMMON_KEYS = frozenset({"type", "name", "timeout", "connect_timeout", "lease", "rate_limit"})

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def seconds(value: Any) -> float:
    """``'30s'``, ``'5m'``, ``'250ms'``, a number of seconds, or a ``timedelta``.

    Raises ``ValueError`` for anything else."""
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration: {value!r} (write e.g. 10s, 5m, 250ms)")
    return float(m.group(1)) * _UNITS[m.group(2)]


class Options:
    """One entry's keys, checked against the keys its notifier knows."""

    def __init__(self, kind: str, options: Mapping[str, Any], keys: Iterable[str]):
        self.options = dict(options)
        self.where = f"notifiers ({options.get('name') or kind})"
        known = COMMON_KEYS | set(keys)
        unknown = sorted(set(self.options) - known)
        if unknown:
            valid = ", ".join(sorted(known - {"type", "lease"}))
            close = difflib.get_close_matches(unknown[0], sorted(known - {"type", "lease"}), n=1)
            raise ConfigError(f"{self.where}: unknown key {unknown[0]!r}; valid keys: {valid}"
                              + (f"; did you mean `{close[0]}`?" if close else ""),
                              key=unknown[0], problem=f"unknown key; valid keys: {valid}",
                              suggestion=close[0] if close else None)

    def text(self, key: str, default: str | None = None, *, required: bool = False,
             why: str = "") -> str | None:
        value = self.options.get(key)
        if value is None or value == "":
            if required:
                raise ConfigError(f"{self.where}: `{key}` (or `{key}_file`) is required{why}", key=key,
                                  problem=f"is required (or `{key}_file`){why}")
            return default
        return str(value)

    def required(self, key: str, why: str = "") -> str:
        value = self.text(key, required=True, why=why)
        assert value is not None
        return value

    def seconds(self, key: str, default: float) -> float:
        value = self.options.get(key)
        if value is None:
            return default
        try:
            result = seconds(value)
        except ValueError as exc:
            raise self.error(str(exc), key=key) from exc
        if result <= 0:
            raise self.error("must be more than 0", key=key)
        return result

    def timeouts(self) -> tuple[float, float]:
        """(read, connect) timeouts in seconds: ``timeout`` (default ``delivery.timeout``,
        10 s) for reading, writing and waiting for a pooled connection, ``connect_timeout``
        (default: the same, at most 10 s) for opening one."""
        read = self.seconds("timeout", 10.0)
        return read, self.seconds("connect_timeout", min(read, 10.0))

    def error(self, text: str, *, key: str | None = None) -> ConfigError:
        """``text`` about this entry, or about its ``key`` (``notifiers (NAME): `key`: text``)."""
        if key is None:
            return ConfigError(f"{self.where}: {text}")
        return ConfigError(f"{self.where}: `{key}`: {text}", key=key, problem=text)

    def rate_limit(self, key: str, default: RateLimit) -> RateLimit:
        """``{requests: N, per: 10s}``; absent: ``default``."""
        return self.optional_rate_limit(key) or default

    def optional_rate_limit(self, key: str) -> RateLimit | None:
        """``{requests: N, per: 10s}``, or ``None`` when absent."""
        value = self.options.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping) or set(value) - {"requests", "per"} or "requests" not in value:
            raise ConfigError(f"{self.where}: `{key}` must look like {{requests: 100, per: 10s}}", key=key,
                              problem="must look like {requests: 100, per: 10s}")
        try:
            requests = int(value["requests"])
            per = seconds(value.get("per", 1))
        except (TypeError, ValueError) as exc:
            raise self.error(str(exc), key=key) from exc
        if requests < 1 or per <= 0:
            raise self.error("requests and per must be more than 0", key=key)
        return RateLimit(requests, per)

    def choice(self, key: str, value: Any, choices: Iterable[str]) -> str:
        allowed = tuple(choices)
        if value not in allowed:
            raise self.error(f"{value!r} is not one of {', '.join(allowed)}", key=key)
        return str(value)
