"""One error tree for leadpipe. Vendor exceptions are re-raised as these at the edge."""

from __future__ import annotations

from datetime import datetime


class LeadpipeError(Exception):
    """Root of every error leadpipe raises on purpose."""


class ConfigError(LeadpipeError):
    """Raised when the configuration file or environment holds a bad or missing value.

    The message names the file, the line and the key wherever they are known. Raised
    about one key of a ``notifiers:`` entry (whose checks know neither file nor line), it
    also carries that ``key`` and the ``problem`` alone, and
    ``daemon.config.locate_notifier_error`` names the file, line and key as written.
    """

    def __init__(self, message: str, *, key: str | None = None, problem: str | None = None,
                 suggestion: str | None = None):
        super().__init__(message)
        self.key = key
        self.problem = problem
        #: for an unknown key, the known key nearest it
        self.suggestion = suggestion


class RuleError(LeadpipeError):
    """Raised when a rule file cannot be loaded: YAML syntax, an unknown key, a bad regex.

    ``file``, ``line`` and ``key`` say where; ``str()`` gives ``file:line: key: message``.
    """

    def __init__(self, message: str, *, file: str, line: int | None = None, key: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        #: further problems found in the same file, reported together
        self.also: list[RuleError] = []
        where = file if line is None else f"{file}:{line}"
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


class DraftError(LeadpipeError):
    """Raised when a draft rule cannot be written or promoted: a bad source name, a file
    that exists already, a source another file defines."""


class StorageError(LeadpipeError):
    """Raised when the database cannot be reached or its schema cannot be brought up to date."""


class MailboxError(LeadpipeError):
    """Raised when a mailbox cannot be reached, logged in to, or selected."""


class DeliveryError(LeadpipeError):
    """Raised by a notifier when an outbound call did not succeed.

    ``retry_after`` is the earliest time the server will accept another try (its
    ``Retry-After``); ``status_code`` and ``response`` (the first 2 KB of the answer)
    go into the delivery log when known.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: datetime | None = None,
        status_code: int | None = None,
        response: str | None = None,
    ):
        super().__init__(message)
        self.retry_after = retry_after
        self.status_code = status_code
        self.response = response


class TransientDeliveryError(DeliveryError):
    """Raised for failures worth retrying: timeouts, connection errors, 429 and 5xx."""


class PermanentDeliveryError(DeliveryError):
    """Raised for failures that retrying cannot fix: 4xx other than 429, bad credentials."""
