"""The admin pages over HTTP (daemon/web/admin/): a real Service's web server on 127.0.0.1,
port 0, a real database, and an HTTP client with a cookie jar.

When these fail, someone without a password reads leads, a forged form replays or retries
on a signed-in user's behalf, a lead cannot be found by the phone number a client reads
out, a dead letter cannot be recovered after a rule fix, a lead's email runs a script in
the admin's browser, or an action leaves no trace of who did it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from adminkit import (
    PASSWORD,
    TOKEN,
    USER,
    Site,
    add_dead_delivery,
    csrf_of,
    lead_email,
    running_site,
)

from daemon.config import AdminSettings
from daemon.errors import ConfigError
from daemon.web.admin import email_view
from daemon.web.admin.auth import Accounts, LoginLimiter, Sessions, hash_password
from daemon.web.admin.chart import bar_chart, days_ending
from daemon.web.admin.search import with_query
from storage import dead_letters, leads, outbox
from storage.lead_search import LeadFilter

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

EVIL_HTML = ("<p onclick=\"steal()\">Hello <b>there</b></p><script>alert('x')</script>"
             "<img src=\"http://tracker.example/p.gif\" onerror=\"alert(1)\">"
             "<a href=\"javascript:alert(2)\">bad link</a><iframe src=\"http://x.example\"></iframe>"
             "<link rel=stylesheet href=\"http://x.example/s.css\">"
             "<div style=\"color:red;background-image:url(http://tracker.example/bg)\">red</div>")


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    with running_site(tmp_path, database_url) as s:
        s.deliver(
            lead_email("Dana Lee", "+1 305 555 0142", n=1, html=EVIL_HTML),
            lead_email("Marco Silva", "(954) 555-0187", n=2, message="Just browsing"),
            lead_email("Eve Park", "(786) 555-0199", n=3, phone_label="Cell"),
            lead_email("Ivan Roe", "(786) 555-0111", n=4, phone_label="Cell"),
        )
        yield s


@pytest.fixture
def client(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=10) as c:
        yield c


def login(c: httpx.Client, user: str = USER, password: str = PASSWORD, **extra: str) -> httpx.Response:
    page = c.get("/admin/login")
    return c.post("/admin/login", data={"csrf": csrf_of(page.text), "username": user,
                                        "password": password, **extra})


@pytest.fixture
def signed_in(client: httpx.Client) -> httpx.Client:
    r = login(client)
    assert r.status_code == 303, r.text
    return client


def lead_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<td><a href="/admin/leads/(\d+)">\1</a></td>', html)]


def open_dead_letters(site: Site) -> list[int]:
    with site.service.db.session() as s:
        return [d.id for d in dead_letters.listing(s, status="open", limit=None)]


# --- who may come in ----------------------------------------------------------------------


@sqlite_only
def test_every_page_without_a_session_redirects_to_the_login_form(client: httpx.Client):
    for path in ("/admin/leads", "/admin/leads/1", "/admin/dead-letters", "/admin/dead-letters/1",
                 "/admin/deliveries", "/admin/sources", "/admin/audit"):
        r = client.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/admin/login?next=")
        assert "Dana" not in r.text


@sqlite_only
def test_a_post_without_a_session_is_refused_and_changes_nothing(client: httpx.Client, site: Site):
    site.fix_rule()
    before = open_dead_letters(site)
    r = client.post("/admin/dead-letters/replay", data={"all": "1", "csrf": "anything"})
    assert r.status_code == 403
    assert open_dead_letters(site) == before


@sqlite_only
def test_a_post_with_a_wrong_or_missing_csrf_token_is_refused(signed_in: httpx.Client, site: Site):
    site.fix_rule()
    before = open_dead_letters(site)
    assert signed_in.post("/admin/dead-letters/replay", data={"all": "1", "csrf": "forged"}).status_code == 403
    assert signed_in.post("/admin/dead-letters/replay", data={"all": "1"}).status_code == 403
    assert signed_in.post("/admin/deliveries/retry", data={"id": "1"}).status_code == 403
    assert signed_in.post("/admin/logout", data={}).status_code == 403
    assert open_dead_letters(site) == before
    assert signed_in.get("/admin/leads").status_code == 200  # still signed in


@sqlite_only
def test_login_needs_the_login_forms_csrf_token(client: httpx.Client):
    r = client.post("/admin/login", data={"username": USER, "password": PASSWORD})
    assert r.status_code == 403
    assert "leadpipe_admin" not in r.headers.get("set-cookie", "")


@sqlite_only
def test_login_sets_a_signed_httponly_samesite_cookie_and_a_new_session(client: httpx.Client):
    first = client.get("/admin/login")
    before = client.cookies["leadpipe_admin"]
    r = client.post("/admin/login", data={"csrf": csrf_of(first.text), "username": USER,
                                          "password": PASSWORD, "next": "/admin/sources"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/sources"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # cookie_secure: false in these tests (plain http)
    assert client.cookies["leadpipe_admin"] != before  # no session fixation
    # a tampered cookie is no session
    client.cookies.set("leadpipe_admin", client.cookies["leadpipe_admin"][:-2] + "xx", path="/admin")
    assert client.get("/admin/leads").status_code == 303


@sqlite_only
def test_secure_cookies_are_the_default(tmp_path: Path, database_url: str):
    with running_site(tmp_path, database_url, cookie_secure=True) as s, \
            httpx.Client(base_url=s.url) as c:
        page = c.get("/admin/login")
        assert "Secure" in page.headers["set-cookie"]
        # over plain http the browser keeps the cookie to itself: the refusal says why
        r = c.post("/admin/login", data={"csrf": csrf_of(page.text), "username": USER,
                                         "password": PASSWORD})
        assert r.status_code == 403 and "admin.cookie_secure" in r.text


@sqlite_only
def test_a_wrong_password_is_refused_audited_and_rate_limited(client: httpx.Client, site: Site):
    for _ in range(5):
        assert login(client, password="guess").status_code == 401
    r = login(client)  # even the right password, until the window passes
    assert r.status_code == 429
    assert "Too many failed attempts" in r.text
    assert login(client, user="ben", password="guess").status_code == 429  # same address
    login(client.__class__(base_url=site.url), user=USER)  # another client: per address and user
    with site.service.db.session() as s:
        from storage import audit
        actions = [e.action for e in audit.recent(s)]
    assert actions.count("login_failed") == 5
    assert "login_blocked" in actions


@sqlite_only
def test_without_users_or_a_token_there_are_no_admin_pages(tmp_path: Path, database_url: str):
    with running_site(tmp_path, database_url, users=[]) as s, httpx.Client(base_url=s.url) as c:
        assert c.get("/admin/login").status_code == 404
        assert c.get("/healthz").status_code == 200


@sqlite_only
def test_the_admin_token_signs_in_when_configured(tmp_path: Path, database_url: str):
    with running_site(tmp_path, database_url, token=TOKEN) as s, \
            httpx.Client(base_url=s.url) as c:
        page = c.get("/admin/login")
        assert 'name="token"' in page.text
        bad = c.post("/admin/login", data={"csrf": csrf_of(page.text), "token": "x" * 20})
        assert bad.status_code == 401
        ok = c.post("/admin/login", data={"csrf": csrf_of(page.text), "token": TOKEN})
        assert ok.status_code == 303
        assert "admin (token)" in c.get("/admin/audit").text


@sqlite_only
def test_next_never_redirects_outside_the_admin_pages(client: httpx.Client):
    for target in ("https://evil.example/", "//evil.example/admin/", "/admin/../x", "/elsewhere"):
        r = login(client, next=target)
        assert r.status_code == 303
        assert r.headers["location"] in ("/admin/leads", target) and \
            r.headers["location"].startswith("/admin/")
        client.cookies.clear()


@sqlite_only
def test_logout_ends_the_session_even_for_a_copied_cookie(signed_in: httpx.Client, site: Site):
    copied = signed_in.cookies["leadpipe_admin"]
    page = signed_in.get("/admin/leads")
    r = signed_in.post("/admin/logout", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"
    with httpx.Client(base_url=site.url) as other:
        other.cookies.set("leadpipe_admin", copied, path="/admin")
        assert other.get("/admin/leads").status_code == 303


def test_sessions_end_when_the_password_changes_or_the_user_is_removed():
    old = AdminSettings(users=[{"name": "ana", "password_hash": hash_password("x" * 12)}])  # type: ignore[list-item]
    cookie = Sessions("k" * 32, lifetime=60, accounts=Accounts(old)).dump(
        Sessions("k" * 32, lifetime=60, accounts=Accounts(old)).new("ana"))
    assert Sessions("k" * 32, lifetime=60, accounts=Accounts(old)).load(cookie) is not None
    changed = AdminSettings(users=[{"name": "ana", "password_hash": hash_password("y" * 12)}])  # type: ignore[list-item]
    assert Sessions("k" * 32, lifetime=60, accounts=Accounts(changed)).load(cookie) is None
    assert Sessions("k" * 32, lifetime=60, accounts=Accounts(AdminSettings())).load(cookie) is None
    assert Sessions("other-secret" * 3, lifetime=60, accounts=Accounts(old)).load(cookie) is None


def test_login_limiter_forgets_failures_after_the_window():
    now = [0.0]
    limiter = LoginLimiter(2, 60, clock=lambda: now[0])
    limiter.failed("ip:a")
    limiter.failed("ip:a")
    assert limiter.blocked("ip:a", "user:x")
    assert not limiter.blocked("ip:b")
    now[0] = 61
    assert not limiter.blocked("ip:a")


def test_a_password_hash_that_is_not_argon2_is_a_config_error(tmp_path: Path):
    from daemon.config import load_settings

    path = tmp_path / "leadpipe.yaml"
    path.write_text("admin:\n  users:\n    - name: ana\n      password_hash: plaintext\n")
    with pytest.raises(ConfigError, match=r"leadpipe.yaml:4: admin.users\[0\].password_hash: .*hash-password"):
        load_settings(path)


def test_hash_password_prints_an_argon2_hash_that_verifies(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]):
    import io

    from daemon.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["admin", "hash-password", "--user", "ana"]) == 0
    out = capsys.readouterr()
    hashed = out.out.strip()
    assert hashed.startswith("$argon2id$")
    accounts = Accounts(AdminSettings(users=[{"name": "ana", "password_hash": hashed}]))  # type: ignore[list-item]
    assert accounts.check_password("ana", "a long enough password")
    assert not accounts.check_password("ana", "a long enough passworD")
    assert "password_hash:" in out.err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["admin", "hash-password"]) == 1


# --- leads --------------------------------------------------------------------------------


PHONES_TYPED = ["(305) 555-0142", "305.555.0142", "+1 305 555 0142", "1-305-555-0142",
                "3055550142", "555-0142", "555 0142"]


def test_a_lead_is_found_by_its_phone_typed_any_way(signed_in: httpx.Client):
    """Stored as +13055550142; found however a client reads it out, or by part of it."""
    for typed in PHONES_TYPED:
        r = signed_in.get("/admin/leads", params={"q": typed})
        assert r.status_code == 200
        assert lead_ids(r.text) == [1], typed
        assert "+13055550142" in r.text


@sqlite_only
def test_a_lead_is_found_by_name_email_or_id(signed_in: httpx.Client):
    for typed, found in [("dana", [1]), ("SILVA", [2]), ("dana.lee@example", [1]), ("#2", [2]),
                         ("2", [2]), ("nobody", []), ("100%", []), ("d_na", [])]:
        assert lead_ids(signed_in.get("/admin/leads", params={"q": typed}).text) == found, typed


def test_leads_are_newest_first_and_filter_by_source_tier_agent_status_and_date(
        signed_in: httpx.Client, site: Site):
    everything = lead_ids(signed_in.get("/admin/leads").text)
    assert everything == [2, 1]
    with site.service.db.session() as s:
        dana, marco = leads.get(s, 1), leads.get(s, 2)
    assert dana is not None and marco is not None

    def ids(**params: str) -> list[int]:
        return lead_ids(signed_in.get("/admin/leads", params=params).text)

    assert ids(source="portal") == [2, 1]
    assert ids(source="zillow") == []
    # "Just browsing" scores low: drip, no agent; Dana is standard, given to Ana
    assert (marco.lead.tier, marco.status, dana.lead.tier, dana.status) == \
        ("low", "drip", "standard", "assigned")
    assert ids(tier="low") == [2]
    assert ids(tier="standard") == [1]
    assert ids(agent=str(dana.agent)) == [1]
    assert ids(status="drip") == [2]
    assert ids(status="drip", tier="standard") == []
    today = datetime.now(UTC).date().isoformat()
    assert ids(since=today, until=today) == [2, 1]
    assert ids(until="2020-01-01") == []
    assert ids(since="not a date") == [2, 1]


def test_a_leads_page_shows_fields_score_routing_deliveries_attempts_and_the_email(
        signed_in: httpx.Client, site: Site):
    with site.service.db.session() as s:
        add_dead_delivery(s, lead_id=1)
    r = signed_in.get("/admin/leads/1")
    assert r.status_code == 200
    html = r.text
    for expected in ("Dana Lee", "+13055550142", "dana.lee@example.com", "rule v1",
                     "reachable by phone", "+20",  # score breakdown
                     'class="event assigned"', "round robin",  # routing history
                     "followupboss", "401 Unauthorized: check the API key", "84 ms",  # attempts
                     "Phone: +1 305 555 0142"):  # the email's text
        assert expected in html, expected
    assert signed_in.get("/admin/leads/999").status_code == 404


@sqlite_only
def test_the_emails_html_is_sanitized_sandboxed_and_under_a_strict_policy(signed_in: httpx.Client):
    r = signed_in.get("/admin/leads/1")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "frame-ancestors 'none'" in csp
    frame = re.search(r'<iframe class="email-html" sandbox="" [^>]*srcdoc="([^"]*)"', r.text)
    assert frame, "no sandboxed frame"
    doc = frame.group(1)
    assert "Hello" in doc and "color:red" in doc
    for bad in ("script", "onclick", "onerror", "tracker.example", "javascript:", "iframe",
                "stylesheet", "url("):
        assert bad not in doc, bad
    assert "default-src &#39;none&#39;" in doc  # the document's own policy


def test_sanitize_keeps_layout_and_drops_everything_that_runs_or_loads():
    clean = email_view.sanitize_html(
        '<table><tr><td style="color:#333;position:fixed">x</td></tr></table>'
        '<img src="data:image/png;base64,iVBORw0KGgo=" alt="logo"><form action="x"><input></form>'
        '<svg onload="alert(1)"><script>alert(1)</script></svg><a href="https://ok.example">ok</a>')
    assert '<td style="color:#333">x</td>' in clean
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in clean
    assert "<form" not in clean and "<input" not in clean and "svg" not in clean
    assert "alert" not in clean
    assert 'href="https://ok.example"' in clean


# --- dead letters ----------------------------------------------------------------------------


def test_dead_letters_are_grouped_by_source_and_reason_with_rule_and_fields(signed_in: httpx.Client):
    r = signed_in.get("/admin/dead-letters")
    assert r.status_code == 200
    assert re.search(r"<h2>portal <span class=\"reason\">missing_required_field</span> "
                     r"<span class=\"muted\">2</span>", r.text)
    one = signed_in.get("/admin/dead-letters/1").text
    assert "portal v1" in one and "required field `phone` not found" in one
    assert "<dt>full_name</dt><dd>Eve Park</dd>" in one
    assert '<ul class="missing"><li>phone</li></ul>' in one
    assert "Cell: (786) 555-0199" in one


def test_replaying_a_selection_after_a_rule_fix_shows_which_became_leads(
        signed_in: httpx.Client, site: Site):
    page = signed_in.get("/admin/dead-letters")
    # before the fix: still a dead letter, with the reason
    r = signed_in.post("/admin/dead-letters/replay", data={"csrf": csrf_of(page.text), "id": "1"})
    assert "replayed 1: 0 now leads, 1 still dead letters" in r.text
    site.fix_rule()
    r = signed_in.post("/admin/dead-letters/replay",
                       data={"csrf": csrf_of(page.text), "id": ["1", "2"]})
    assert r.status_code == 200
    assert "replayed 2: 2 now leads, 0 still dead letters" in r.text
    new = [int(x) for x in re.findall(r'class="new-lead" href="/admin/leads/(\d+)"', r.text)]
    assert len(new) == 2
    assert "Eve Park" in signed_in.get(f"/admin/leads/{new[0]}").text
    assert open_dead_letters(site) == []
    assert lead_ids(signed_in.get("/admin/leads", params={"q": "(786) 555-0199"}).text) == [new[0]]
    audit_page = signed_in.get("/admin/audit").text
    assert "selected: replayed 2: 2 now leads" in audit_page
    assert "dead_letter:1,dead_letter:2" in audit_page


@sqlite_only
def test_replaying_all_of_a_source_routes_the_new_leads(signed_in: httpx.Client, site: Site):
    site.fix_rule()
    page = signed_in.get("/admin/dead-letters")
    r = signed_in.post("/admin/dead-letters/replay",
                       data={"csrf": csrf_of(page.text), "source": "portal", "id": "1"})
    assert "all open of source portal: replayed 2" not in r.text  # the what is in the heading
    assert "replayed 2: 2 now leads" in r.text
    with site.service.db.session() as s:
        routed = [x for x in leads.newest(s) if x.lead.full_name in ("Eve Park", "Ivan Roe")]
    assert {x.status for x in routed} == {"assigned"}


# --- deliveries, sources, audit -------------------------------------------------------------


def test_a_dead_delivery_is_listed_by_notifier_and_retried_from_the_page(
        signed_in: httpx.Client, site: Site):
    with site.service.db.session() as s:
        dead_id = add_dead_delivery(s, lead_id=1)
    page = signed_in.get("/admin/deliveries")
    assert "<h2>followupboss" in page.text and "401 Unauthorized" in page.text
    r = signed_in.post("/admin/deliveries/retry", data={"csrf": csrf_of(page.text), "id": str(dead_id)})
    assert r.status_code == 303 and r.headers["location"] == "/admin/deliveries?retried=1"
    with site.service.db.session() as s:
        row = outbox.get(s, dead_id)
    assert row is not None and (row.status, row.attempts) == ("pending", 0)
    assert site.service.deliver_wake.is_set()  # the dispatcher is woken for it
    assert "1 delivery is due again now" in signed_in.get(r.headers["location"]).text
    assert re.search(rf"retry</span></td><td class=\"small\">delivery:{dead_id}<",
                     signed_in.get("/admin/audit").text)


@sqlite_only
def test_retrying_all_dead_of_a_notifier(signed_in: httpx.Client, site: Site):
    with site.service.db.session() as s:
        ids = [add_dead_delivery(s, lead_id=n) for n in (1, 2)]
        add_dead_delivery(s, lead_id=1, notifier="hubspot")
    page = signed_in.get("/admin/deliveries")
    r = signed_in.post("/admin/deliveries/retry", data={"csrf": csrf_of(page.text), "notifier": "followupboss"})
    assert r.headers["location"] == "/admin/deliveries?retried=2"
    with site.service.db.session() as s:
        assert [outbox.get(s, i).status for i in ids] == ["pending", "pending"]  # type: ignore[union-attr]
        assert [d.notifier for d in outbox.listing(s, status="dead")] == ["hubspot"]


def test_sources_show_leads_per_day_dead_letter_share_and_last_lead(signed_in: httpx.Client):
    r = signed_in.get("/admin/sources")
    assert r.status_code == 200
    row = re.search(r'<a href="/admin/leads\?source=portal">portal</a>.*?</tr>', r.text, re.S)
    assert row, r.text
    cells = row.group(0)
    assert "<svg" in cells and 'class="bar"' in cells
    assert f"{date.today().isoformat()}: 2 leads" in cells or \
        f"{datetime.now(UTC).date().isoformat()}: 2 leads" in cells
    assert "50%" in cells  # 2 of 4 emails failed
    assert "just now" in cells


def test_audit_page_lists_logins_with_who_and_from_where(signed_in: httpx.Client):
    html = signed_in.get("/admin/audit").text
    assert re.search(r"<td>ana</td><td><span class=\"event login\">login</span>", html)
    assert "127.0.0.1" in html


# --- pure parts -------------------------------------------------------------------------------


def test_search_terms_from_what_was_typed():
    f = LeadFilter()
    assert with_query(f, "(305) 555-0142").phone == "+13055550142"
    assert with_query(f, "(305) 555-0142").digits == "3055550142"
    assert with_query(f, "+1 305 555 0142").digits == "13055550142"
    assert with_query(f, "0142").digits == "0142" and with_query(f, "0142").lead_id == 142
    assert with_query(f, "#12").lead_id == 12 and with_query(f, "#12").text is None
    assert with_query(f, "Dana Lee").text == "Dana Lee" and with_query(f, "Dana Lee").phone is None
    assert with_query(f, "  ") == f


def test_bar_chart_has_a_bar_and_a_tooltip_per_day():
    days = days_ending(date(2026, 11, 3), 3)
    svg = bar_chart({date(2026, 11, 2): 4}, days)
    assert svg.count("<rect") == 3 and svg.count('class="bar"') == 1
    assert "2026-11-02: 4 leads" in svg and "2026-11-01: 0 leads" in svg
    assert "<script" not in svg
