"""Who may use the admin pages: password hashes, signed session cookies, CSRF tokens,
and a limit on failed logins.

Passwords are hashed with Argon2id (``argon2-cffi``, the OWASP-recommended algorithm;
passlib is unmaintained and bcrypt truncates at 72 bytes). A session is a cookie signed
with ``itsdangerous`` holding the user's name, a per-session CSRF token, a session id and
a fingerprint of the user's password hash — so changing a password in the configuration
ends that user's sessions, and removing the user ends them too. Logout revokes the
session id in this process (each replica keeps its own list until the cookie expires).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from daemon.config import AdminSettings

_HASHER = PasswordHasher()
#: the name a token login is recorded under
TOKEN_USER = "admin (token)"


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` for ``admin.users[].password_hash``."""
    return _HASHER.hash(password)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user name is unknown, so the answer takes as long."""
    return _HASHER.hash("leadpipe: no such user")


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Session:
    """A browser's session: ``user`` is ``None`` before login (the login form's CSRF token
    lives in such a session)."""

    user: str | None
    csrf: str
    sid: str
    fingerprint: str = ""


class Accounts:
    """Checks credentials against the ``admin:`` settings."""

    def __init__(self, settings: AdminSettings):
        self._hashes = {u.name: u.password_hash for u in settings.users}
        self._token = settings.token

    @property
    def has_users(self) -> bool:
        return bool(self._hashes)

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def check_password(self, name: str, password: str) -> bool:
        stored = self._hashes.get(name)
        try:
            return _HASHER.verify(stored or _dummy_hash(), password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def check_token(self, token: str) -> bool:
        if self._token is None or not token:
            return False
        return hmac.compare_digest(token.encode(), self._token.encode())

    def fingerprint(self, user: str) -> str | None:
        """What a session of ``user`` must carry to be valid; ``None``: no such user."""
        if user == TOKEN_USER:
            return _fingerprint(self._token) if self._token else None
        stored = self._hashes.get(user)
        return _fingerprint(stored) if stored else None


class Sessions:
    """Signs and reads session cookies; remembers sessions ended by logout."""

    def __init__(self, secret: str, *, lifetime: float, accounts: Accounts,
                 clock: Callable[[], float] = time.time):
        self._signer = URLSafeTimedSerializer(secret, salt="leadpipe-admin-session")
        self.lifetime = lifetime
        self.accounts = accounts
        self.clock = clock
        self._revoked: dict[str, float] = {}
        self._lock = threading.Lock()

    def new(self, user: str | None = None) -> Session:
        fp = (self.accounts.fingerprint(user) or "") if user else ""
        return Session(user, secrets.token_urlsafe(32), secrets.token_urlsafe(16), fp)

    def dump(self, session: Session) -> str:
        return self._signer.dumps({"u": session.user, "c": session.csrf, "s": session.sid,
                                   "f": session.fingerprint})

    def load(self, cookie: str | None) -> Session | None:
        """The session in a cookie; ``None`` when absent, forged, expired, logged out, or
        its user was removed or given a new password since."""
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=int(self.lifetime))
        except BadSignature:  # SignatureExpired is one
            return None
        if not isinstance(data, dict):
            return None
        session = Session(data.get("u"), str(data.get("c", "")), str(data.get("s", "")),
                          str(data.get("f", "")))
        if not session.csrf or not session.sid:
            return None
        with self._lock:
            if session.sid in self._revoked:
                return None
        if session.user is not None:
            expected = self.accounts.fingerprint(session.user)
            if expected is None or not hmac.compare_digest(expected, session.fingerprint):
                return None
        return session

    def revoke(self, session: Session) -> None:
        now = self.clock()
        with self._lock:
            for sid, until in list(self._revoked.items()):
                if until < now:
                    del self._revoked[sid]
            self._revoked[session.sid] = now + self.lifetime


def csrf_ok(session: Session | None, token: str | None) -> bool:
    """Whether a form's CSRF token is the session's own."""
    if session is None or not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode())


class LoginLimiter:
    """At most ``attempts`` failed logins per key (client address, user name) within
    ``window`` seconds; the rest are refused until the oldest failure ages out."""

    def __init__(self, attempts: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.attempts = attempts
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, *keys: str) -> bool:
        now = self.clock()
        with self._lock:
            return any(len(self._recent(k, now)) >= self.attempts for k in keys)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for k in keys:
                self._recent(k, now).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        if not q and len(self._failures) > 10_000:  # many one-off keys: keep memory bounded
            self._failures = {k: v for k, v in self._failures.items() if v}
            self._failures[key] = q
        return q
