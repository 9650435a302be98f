"""The admin site: what every page shares — sessions, CSRF checks, rendering, the audit.

``Admin`` is built by the daemon with its database, the callable that returns the rule
engine in force (the daemon reloads rules while it runs), the router (a replayed dead
letter is routed like any new lead) and a callable that wakes the dispatcher.
``daemon.web.admin.pages.admin_router(admin)`` is the ``APIRouter`` mounted at ``/admin``
(the page modules import this one; this one imports none of them).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, quote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from daemon.config import Settings
from daemon.web.admin import email_view, filters
from daemon.web.admin.auth import Accounts, LoginLimiter, Session, Sessions, csrf_ok
from storage import audit, dead_letters, inbound
from storage.db import Database

if TYPE_CHECKING:
    from sqlalchemy.orm import Session as DbSession

    from daemon.pipeline import Engine
    from daemon.routing.assign import Router

log = logging.getLogger(__name__)
T = TypeVar("T")

PREFIX = "/admin"
COOKIE = "leadpipe_admin"
#: the admin pages run no script at all; styles from our own stylesheet, and inline ones
#: only for the sanitized email shown in a sandboxed srcdoc frame (which inherits this)
CSP = ("default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_MAX_FORM = 256 * 1024


@dataclass(frozen=True)
class Posted:
    """A POSTed form from a signed-in session whose CSRF token checked out."""

    session: Session
    form: Mapping[str, list[str]]
    ip: str | None

    @property
    def user(self) -> str:
        assert self.session.user is not None
        return self.session.user

    def first(self, key: str) -> str | None:
        values = self.form.get(key)
        return values[0] if values else None

    def ints(self, key: str) -> list[int]:
        return sorted({int(v) for v in self.form.get(key, []) if v.strip().isdigit()})


class Admin:
    """The admin pages' shared state and helpers (see the module docstring)."""

    def __init__(self, db: Database, settings: Settings, *, engine: Callable[[], Engine],
                 router: Router | None = None, wake: Callable[[], None] | None = None,
                 clock: Callable[[], datetime] | None = None):
        self.db = db
        self.settings = settings
        self.engine = engine
        self.routing = router
        self.wake = wake or (lambda: None)
        self.clock = clock or (lambda: datetime.now(UTC))
        conf = settings.admin
        self.accounts = Accounts(conf)
        secret = conf.session_secret
        if secret is None:
            secret = secrets.token_urlsafe(32)
            log.info("admin.session_secret not set: admin sessions end when the daemon restarts")
        self.sessions = Sessions(secret, lifetime=conf.session_lifetime.total_seconds(),
                                 accounts=self.accounts)
        self.limiter = LoginLimiter(conf.login_attempts, conf.login_window.total_seconds())
        self.cookie_secure = conf.cookie_secure
        self.templates = Environment(loader=PackageLoader("daemon.web.admin", "templates"),
                                     autoescape=select_autoescape(default=True),
                                     trim_blocks=True, lstrip_blocks=True)
        filters.install(self.templates)

    # -- sessions ------------------------------------------------------------------------

    def session_of(self, request: Request) -> Session | None:
        return self.sessions.load(request.cookies.get(COOKIE))

    def viewer(self, request: Request) -> Session:
        """The signed-in session of a page request; else a redirect to the login page."""
        session = self.session_of(request)
        if session is None or session.user is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(status_code=303, detail="sign in first",
                                headers={"Location": f"{PREFIX}/login?next={quote(target)}"})
        return session

    async def posted(self, request: Request) -> Posted:
        """A form POST: refused (403) without a signed-in session or with a wrong CSRF token."""
        session = self.session_of(request)
        form = await read_form(request)
        if session is None or session.user is None:
            raise HTTPException(status_code=403, detail="not signed in")
        if not csrf_ok(session, (form.get("csrf") or [""])[0]):
            log.warning("admin: refused a POST to %s with a missing or wrong CSRF token",
                        request.url.path)
            raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
        return Posted(session, form, client_ip(request))

    def set_cookie(self, response: Response, session: Session) -> None:
        response.set_cookie(COOKIE, self.sessions.dump(session), path=PREFIX, httponly=True,
                            samesite="lax", secure=self.cookie_secure,
                            max_age=int(self.sessions.lifetime))

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="lax",
                               secure=self.cookie_secure)

    # -- responses -----------------------------------------------------------------------

    def page(self, template: str, session: Session | None, *, status_code: int = 200,
             nav: str = "", **values: Any) -> HTMLResponse:
        """Render ``template`` with the values every page uses."""
        open_dead = 0
        if session is not None and session.user is not None:
            with self.db.session() as s:
                open_dead = dead_letters.count_open(s)
        html = self.templates.get_template(template).render(
            user=session.user if session else None, csrf=session.csrf if session else "",
            nav=nav, open_dead=open_dead, now=self.clock(), prefix=PREFIX, **values)
        return HTMLResponse(html, status_code=status_code, headers=HEADERS)

    def redirect(self, path: str) -> RedirectResponse:
        return RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})

    def audit(self, actor: str, action: str, *, target: str | None = None,
              detail: str | None = None, ip: str | None = None) -> None:
        with self.db.session() as s:
            audit.record(s, at=self.clock(), actor=actor, action=action, target=target,
                         detail=detail, ip=ip)
        log.info("admin: %s %s %s", actor, action, target or "")


async def read_form(request: Request) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body (every admin form is one)."""
    body = await request.body()
    if len(body) > _MAX_FORM:
        raise HTTPException(status_code=413, detail="form too large")
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def found(row: T | None, what: str) -> T:
    """``row``, or the 404 that says there is no ``what`` (``lead #12``)."""
    if row is None:
        raise HTTPException(status_code=404, detail=f"no {what}")
    return row


def email_of(s: DbSession, inbound_email_id: int | None) -> email_view.EmailView | None:
    """The stored email ``inbound_email_id`` as the admin shows it; ``None`` without one."""
    raw = inbound.get_raw(s, inbound_email_id) if inbound_email_id else None
    return email_view.view(raw.data) if raw is not None else None
