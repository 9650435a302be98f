"""Shared pieces of the admin page tests: a real Service with the admin pages on, served by
uvicorn on 127.0.0.1 port 0, a portal rule that breaks and is fixed, and lead emails."""

from __future__ import annotations

import functools
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from daemon.config import Settings
from daemon.service import Service
from daemon.web.app import WebServer
from storage import outbox

ROOT = Path(__file__).resolve().parent.parent
USER = "ana"
PASSWORD = "correct horse battery staple"
TOKEN = "tok-0123456789abcdef-admin"

RULE_V1 = """\
source: portal
version: 1
match:
  from: ["*@portal.example"]
fields:
  full_name:
    - label: Name
  phone:
    - label: Phone
  email:
    - label: Email
  message:
    - label: Message
required: [full_name, phone]
"""
# The provider renamed "Phone" to "Cell"; version 2 of the rule reads both.
RULE_V2 = RULE_V1.replace("version: 1", "version: 2").replace(
    "- label: Phone", "- label: [Phone, Cell]")


@functools.cache
def password_hash() -> str:
    """An Argon2id hash with the cheapest parameters: verifying it takes milliseconds (the
    daemon verifies with whatever parameters the configured hash names)."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


def lead_email(name: str, phone: str, *, n: int, phone_label: str = "Phone",
               html: str | None = None, message: str = "Can I see it Saturday?") -> bytes:
    m = EmailMessage()
    m["From"] = "Portal Leads <leads@portal.example>"
    m["To"] = "inbox@brokerage.example"
    m["Subject"] = f"New lead: {name}"
    m["Message-ID"] = f"<lead.{n}@portal.example>"
    m["Date"] = "Tue, 03 Nov 2026 14:22:05 -0500"
    slug = name.lower().replace(" ", ".")
    m.set_content(f"Name: {name}\n{phone_label}: {phone}\nEmail: {slug}@example.com\n"
                  f"Message: {message}\n")
    if html is not None:
        m.add_alternative(html, subtype="html")
    return bytes(m)


def settings(tmp_path: Path, database_url: str, **admin: object) -> Settings:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "portal.yaml").write_text(RULE_V1, encoding="utf-8")
    shutil.copy(ROOT / "rules" / "scoring.yaml", rules / "scoring.yaml")
    (tmp_path / "inbox").mkdir(exist_ok=True)
    conf: dict[str, object] = {
        "users": [{"name": USER, "password_hash": password_hash()}],
        "cookie_secure": False, "session_secret": "s" * 32, **admin,
    }
    return Settings(
        database_url=database_url, rules_dir=rules, inbox_dir=tmp_path / "inbox",
        web={"host": "127.0.0.1", "port": 0},
        agents=[{"name": "Ana Ruiz", "email": "ana@example.com", "slack_user_id": "U0ANA"},
                {"name": "Ben Okafor", "email": "ben@example.com", "slack_user_id": "U0BEN"}],
        admin=conf,  # type: ignore[arg-type]
    )


class Site:
    """A Service and its web server; emails go in through its directory inbox."""

    def __init__(self, service: Service, server: WebServer, tmp_path: Path):
        self.service = service
        self.server = server
        self.tmp_path = tmp_path
        self._n = 0

    @property
    def url(self) -> str:
        return self.server.url

    def deliver(self, *emails: bytes) -> None:
        """Drop emails in the inbox and let the daemon process them."""
        for data in emails:
            self._n += 1
            (self.tmp_path / "inbox" / f"{self._n:03d}.eml").write_bytes(data)
        self.service.run_once()

    def fix_rule(self) -> None:
        """The developer's fix, picked up by the daemon's rules reload job."""
        (self.tmp_path / "rules" / "portal.yaml").write_text(RULE_V2, encoding="utf-8")
        self.service.reload_rules()
        assert self.service.engine.rules.by_source("portal").version == "2"  # type: ignore[union-attr]


@contextmanager
def running_site(tmp_path: Path, database_url: str, **admin: object) -> Iterator[Site]:
    service = Service(settings(tmp_path, database_url, **admin))
    server = WebServer(service.web_app(), "127.0.0.1", 0).start()
    try:
        yield Site(service, server, tmp_path)
    finally:
        server.stop()
        service.db.dispose()


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def add_dead_delivery(session: Session, *, lead_id: int, notifier: str = "followupboss",
                      action: str = "create") -> int:
    """A delivery the dispatcher tried once and gave up on (the CRM said 401)."""
    now = datetime.now(UTC)
    row = outbox.enqueue(session, notifier=notifier, action=action, lead_id=lead_id,
                         idempotency_key=outbox.key(lead_id, notifier, action), at=now)
    (leased,) = outbox.claim_due(session, now=now, lease_until=now + timedelta(seconds=60),
                                 notifiers=[notifier])
    outbox.record_attempt(session, row.id, at=now, outcome="permanent", status_code=401,
                          latency_ms=84.0, response='{"errorMessage":"Invalid API key"}',
                          error="401 Unauthorized: check the API key")
    outbox.finish(session, row.id, leased.attempts, status="dead", at=now,
                  error="401 Unauthorized: check the API key")
    return row.id
