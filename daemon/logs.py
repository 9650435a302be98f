"""Log output and redaction.

``setup`` sends the daemon's log to stderr, human-readable (``text``, the default) or one
JSON object per line (``log_format: json``) for a log collector. ``redact`` masks email
addresses and phone numbers in free text (a dead letter's detail, an alert, an error a
CRM sent back) before it is logged: leads' contact details never appear in full at INFO
or above. Lines about a lead name its id (``lead #12``), not its person.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from daemon.terminal import json_text, printable

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-][\w.+'-]*)@([\w-]+(?:\.[\w-]+)*)")
# A run of digits and phone punctuation; ``_phone`` decides whether it is a phone number.
_PHONEISH = re.compile(r"(?<![\w+#.:/-])\+?\(?\d[\d().\s-]{5,}\d(?![\w])")
_DATE_OR_TIME = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}:\d{2}")


def _phone(m: re.Match[str]) -> str:
    """Mask a phone number, even one too short or long to be valid (what a lead typed); leave
    dates, times and plain ids (fewer than 10 digits without phone punctuation) alone."""
    text = m.group(0)
    digits = sum(c.isdigit() for c in text)
    punctuated = text.startswith("+") or any(c in text for c in "()-. ")
    if _DATE_OR_TIME.search(text) or not 7 <= digits <= 15 or (not punctuated and digits < 10):
        return text
    return mask_phone(text.strip())


#: attributes every LogRecord has; the rest were passed in ``extra=`` and go into JSON
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def mask_email(address: str) -> str:
    """``ana.ruiz@example.com`` → ``a***@example.com``."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_phone(number: str) -> str:
    """``+13055550142`` → ``***0142``: enough to tell two leads apart in a log."""
    digits = re.sub(r"\D", "", number)
    return "***" + digits[-4:] if len(digits) > 4 else "***"


def redact(text: object) -> str:
    """``text`` with every email address and phone number in it masked."""
    value = _EMAIL.sub(lambda m: mask_email(m.group(0)), str(text))
    return _PHONEISH.sub(_phone, value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and exception, extras)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        return json_text(out)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` for people, with the control characters an email's text can carry
    (a subject in an alert, a CRM's answer) escaped, so a log read in a terminal cannot
    retitle or clear it (JSON lines escape them as JSON does)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def setup(level: int | str = logging.INFO, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send the log to ``stream`` (stderr) as ``text`` or ``json``, in place of the root
    logger's plain stream handlers."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        # plain stream handlers (basicConfig's, an earlier setup's); others (a test
        # runner's capture, a syslog handler) stay
        if type(old) is logging.StreamHandler:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet_libraries()


#: libraries' loggers and the least level of theirs worth a line in the daemon's log
LIBRARY_LEVELS = {
    # Alembic narrates every migration step at INFO; only its problems matter here.
    "alembic": logging.WARNING,
    # APScheduler logs every run of every job (the rules reload runs each second: two
    # lines a second, all day) and every job it adds.
    "apscheduler": logging.WARNING,
    # The HTTP clients log every request; the dispatcher logs each delivery already.
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "urllib3": logging.WARNING,
    "slack_sdk": logging.WARNING,
    # mail-parser warns about each MIME defect it works around; the reader turns what
    # matters into a lead's warnings or a dead letter's reason.
    "mailparser": logging.ERROR,
    "charset_normalizer": logging.WARNING,
    # inotify events of the directory inbox (daemon/intake/inbox_watch.py)
    "watchdog": logging.WARNING,
    "multipart": logging.WARNING,
    "uvicorn": logging.WARNING,
}


def quiet_libraries() -> None:
    """Keep libraries' routine chatter out of the log at any level we are set to: an idle
    daemon writes no line per second; their problems still come through. A library logger
    someone set higher (quieter) is left as it is."""
    for name, least in LIBRARY_LEVELS.items():
        logger = logging.getLogger(name)
        if logger.level < least:
            logger.setLevel(least)
