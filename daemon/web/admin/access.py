"""Signing in and out, the stylesheet, and the audit page."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from daemon.web.admin.auth import TOKEN_USER, csrf_ok
from daemon.web.admin.site import PREFIX, Admin, Posted, client_ip, read_form
from storage import audit

_CSS = resources.files("daemon.web.admin").joinpath("static/admin.css")


def routes(admin: Admin) -> APIRouter:
    r = APIRouter()
    form_post = Depends(admin.posted)  # a signed-in session and a good CSRF token

    @r.get("", include_in_schema=False)
    @r.get("/", include_in_schema=False)
    def home() -> Response:
        return admin.redirect(f"{PREFIX}/leads")

    @r.get("/static/admin.css", include_in_schema=False)
    def stylesheet() -> Response:
        return Response(_CSS.read_bytes(), media_type="text/css",
                        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"})

    @r.get("/login")
    def login_form(request: Request, next: str = "") -> Response:
        return _login_form(admin, request, next)

    @r.post("/login")
    async def login(request: Request) -> Response:
        return await _sign_in(admin, request)

    @r.post("/logout")
    def logout(posted: Posted = form_post) -> Response:
        admin.sessions.revoke(posted.session)
        admin.audit(posted.user, "logout", ip=posted.ip)
        response = admin.redirect(f"{PREFIX}/login")
        admin.clear_cookie(response)
        return response

    @r.get("/audit")
    def audit_page(request: Request, page: int = 1) -> Response:
        session = admin.viewer(request)
        page = max(page, 1)
        per_page = 100
        with admin.db.session() as s:
            entries = audit.recent(s, limit=per_page, offset=(page - 1) * per_page)
            total = audit.count(s)
        return admin.page("audit.html", session, nav="audit", entries=entries, page=page,
                          more=total > page * per_page)

    return r


def _login_form(admin: Admin, request: Request, next: str) -> Response:
    session = admin.session_of(request)
    if session is not None and session.user is not None:
        return admin.redirect(_safe_next(next))
    session = session or admin.sessions.new()
    response = admin.page("login.html", session, next=_safe_next(next), error=None,
                          users=admin.accounts.has_users, token=admin.accounts.has_token)
    admin.set_cookie(response, session)
    return response


async def _sign_in(admin: Admin, request: Request) -> Response:
    """A login POST: a password or the admin token, limited per address and user name."""
    form = await read_form(request)
    session = admin.session_of(request)

    def field(key: str) -> str:
        return (form.get(key) or [""])[0]

    if not csrf_ok(session, field("csrf")):
        why = "missing or wrong CSRF token: reload the login page"
        if session is None and admin.cookie_secure and request.url.scheme == "http":
            why = ("no session cookie came back: admin.cookie_secure is true, so the browser "
                   "sends it over HTTPS only; serve /admin over HTTPS (or, on 127.0.0.1 "
                   "only, set admin.cookie_secure: false)")
        return Response(why, status_code=403)
    assert session is not None
    ip = client_ip(request)
    name = field("username").strip()
    token = field("token")
    actor = TOKEN_USER if token and not name else (name or "?")
    keys = (f"ip:{ip}", f"user:{actor}")

    def again(error: str, status: int) -> Response:
        return admin.page("login.html", session, status_code=status, next=_safe_next(field("next")),
                          error=error, users=admin.accounts.has_users,
                          token=admin.accounts.has_token, username=name)

    if admin.limiter.blocked(*keys):
        admin.audit(actor, "login_blocked", ip=ip, detail="too many failed logins")
        return again("Too many failed attempts; try again later.", 429)
    ok = (admin.accounts.check_token(token) if token and not name
          else bool(name) and admin.accounts.check_password(name, field("password")))
    if not ok:
        admin.limiter.failed(*keys)
        admin.audit(actor, "login_failed", ip=ip)
        return again("Wrong user name, password or token.", 401)
    admin.limiter.succeeded(*keys)
    # a fresh session id and CSRF token at login: no fixation of a pre-login session
    signed_in = admin.sessions.new(actor)
    admin.audit(actor, "login", ip=ip)
    response = admin.redirect(_safe_next(field("next")))
    admin.set_cookie(response, signed_in)
    return response


def _safe_next(target: str | None) -> str:
    """Only a path inside the admin pages: never an open redirect elsewhere."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") \
            and "\\" not in target and ".." not in target and "/login" not in target:
        return target
    return f"{PREFIX}/leads"
