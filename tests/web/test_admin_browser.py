"""The admin pages end to end, in a real headless Chromium driven by Playwright, against the
daemon's own web server (uvicorn on 127.0.0.1, port 0) and a real database.

When this fails, the broker-owner cannot sign in, cannot find a lead by the phone number a
client reads out, cannot recover a lead from a dead letter after a rule fix, or a page
lets a request in without a session or with a forged form. Screenshots of every page are
saved to ``tests/artifacts/`` for a person to look at.

Needs Debian's ``chromium`` (``/usr/bin/chromium``; ``.ci/run`` installs it): skipped
without it, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from adminkit import PASSWORD, USER, Site, add_dead_delivery, lead_email, running_site

from storage import leads

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
#: the flags this machine's Chromium needs (no sandbox as root, no calls to the outside)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

HTML = """\
<html><head><style>body{background:url(http://tracker.example/bg.png)}</style>
<script>parent.document.title = 'pwned by script';</script></head>
<body><table border="1" cellpadding="6">
<tr><td style="font-weight:bold;color:#1f5fbf">Name</td><td>Dana Lee</td></tr>
<tr><td>Phone</td><td>+1 305 555 0142</td></tr>
<tr><td>Message</td><td>Can I see it Saturday?</td></tr></table>
<img src="http://tracker.example/open.gif" onerror="parent.document.title='pwned by handler'">
<p onmouseover="alert(1)">Sent by <a href="https://portal.example/lead/1">Portal</a></p>
</body></html>
"""


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _need(what: str) -> None:
    if _in_ci():
        pytest.fail(f"CI=true: {what}", pytrace=False)
    pytest.skip(what)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _need(f"{CHROMIUM} not found: apt-get install chromium (.ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("the playwright package is not installed: pip install -e '.[test]'")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    with running_site(tmp_path, sqlite_url) as s:
        s.deliver(
            lead_email("Dana Lee", "+1 305 555 0142", n=1, html=HTML),
            lead_email("Marco Silva", "(954) 555-0187", n=2, message="Just browsing"),
            lead_email("Priya Shah", "786.555.0123", n=3, message="Pre-approved, ready to buy now"),
            # the provider renamed "Phone" to "Cell": the rule misses it → a dead letter
            lead_email("Eve Park", "(786) 555-0199", n=4, phone_label="Cell"),
        )
        with s.service.db.session() as db:  # a delivery the CRM refused, for its page
            add_dead_delivery(db, lead_id=1)
        slack_ids = {"Ana Ruiz": "U0ANA", "Ben Okafor": "U0BEN"}
        with s.service.db.session() as db:  # two answers, one each, for the Responses page
            given = {r.agent: r.id for r in leads.newest(db) if r.agent}
        for agent, lead_id in given.items():
            assert s.service.router.accept(lead_id, slack_ids[str(agent)]) == "accepted"
        yield s


def shot(page: Any, name: str) -> None:
    """The whole page. The viewport grows to the page's height first: a full-page capture
    leaves the sandboxed email frame (an out-of-process frame) unpainted."""
    ARTIFACTS.mkdir(exist_ok=True)
    size = page.viewport_size
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(height, size["height"])})
    page.wait_for_timeout(100)
    page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"))
    page.set_viewport_size(size)


def test_sign_in_find_by_phone_and_replay_a_dead_letter_after_a_rule_fix(browser: Any, site: Site):
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)

    # without a session every page leads to the login form
    page.goto(f"{site.url}/admin/leads")
    assert page.url.startswith(f"{site.url}/admin/login")
    shot(page, "01-login")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{site.url}/admin/leads")
    assert page.locator("table.grid tbody tr").count() == 3
    shot(page, "02-leads")

    # stored as +13055550142; typed the way a client reads it out
    page.fill("input[name=q]", "(305) 555-0142")
    page.click("button:has-text('Filter')")
    rows = page.locator("table.grid tbody tr")
    assert rows.count() == 1
    assert "Dana Lee" in rows.first.inner_text()
    assert "+13055550142" in rows.first.inner_text()
    shot(page, "03-search-by-phone")

    page.click("table.grid tbody tr >> text=Dana Lee")
    page.wait_for_url(re.compile(r".*/admin/leads/\d+$"))
    assert page.locator("h2:has-text('Score breakdown'), h3:has-text('Score breakdown')").count() == 1
    assert "reachable by phone" in page.content()
    assert "assigned" in page.locator("span.event").first.inner_text()
    frame_el = page.locator("iframe.email-html")
    assert frame_el.get_attribute("sandbox") == ""
    frame = frame_el.content_frame
    assert frame is not None
    assert "Dana Lee" in frame.locator("body").inner_text()
    assert frame.locator("script, img[src^='http']").count() == 0
    assert "pwned" not in page.title()  # neither the script nor the handler ran
    shot(page, "04-lead")

    page.click("nav >> text=Dead letters")
    page.wait_for_url(f"{site.url}/admin/dead-letters")
    assert "portal" in page.locator("section.group h2").first.inner_text()
    shot(page, "05-dead-letters")
    page.click("section.group tbody tr >> text=New lead: Eve Park")
    page.wait_for_url(re.compile(r".*/admin/dead-letters/\d+$"))
    assert "Cell: (786) 555-0199" in page.locator("pre.email-text").inner_text()
    assert "phone" in page.locator("ul.missing").inner_text()
    shot(page, "06-dead-letter")

    # the developer fixes the rule; the daemon reloads it; the page replays with it
    site.fix_rule()
    page.click("button:has-text('Replay with the rules in force now')")
    page.wait_for_url(f"{site.url}/admin/dead-letters/replay")
    assert "replayed 1: 1 now leads, 0 still dead letters" in page.locator("p.summary").inner_text()
    shot(page, "07-replayed")
    page.click("a.new-lead")
    page.wait_for_url(re.compile(r".*/admin/leads/\d+$"))
    assert "Eve Park" in page.locator("h1").inner_text()
    assert "+17865550199" in page.content()

    page.click("nav >> text=Deliveries")
    assert "followupboss" in page.locator("section.group h2").first.inner_text()
    shot(page, "08-deliveries")
    page.click("nav >> text=Sources")
    assert page.locator("svg.chart").count() >= 1
    shot(page, "09-sources")
    page.click("nav >> text=Responses")
    page.wait_for_url(f"{site.url}/admin/responses")
    agents = page.locator("#responses-agent tbody tr")
    assert agents.count() == 2 and "Ana Ruiz" in agents.first.inner_text()
    assert page.locator("#responses-agent svg.spread circle.answer").count() == 2  # the chart
    assert page.locator("#responses-agent svg.spread line.deadline").count() == 2
    ben = agents.nth(1).inner_text().split("\t")
    assert ben[0] == "Ben Okafor" and ben[2:4] == ["1", "1"] and "100%" in ben  # in time
    page.click("p.periods >> text=30d")
    page.wait_for_url(f"{site.url}/admin/responses?period=30d")
    assert page.locator("#responses-source").count() == 1
    shot(page, "09b-responses")
    page.click("nav >> text=Audit")
    actions = page.locator("span.event").all_inner_texts()
    assert actions[:2] == ["replay", "login"]
    shot(page, "10-audit")

    # a forged form: the CSRF token changed in the page → refused, nothing done
    page.click("nav >> text=Deliveries")
    page.locator("form[action$='/deliveries/retry'] input[name=csrf]").evaluate(
        "e => e.value = 'forged'")
    with page.expect_response(lambda r: r.url.endswith("/admin/deliveries/retry")) as answer:
        page.click("button:has-text('Retry now')")
    assert answer.value.status == 403
    page.goto(f"{site.url}/admin/audit")
    assert "retry" not in page.locator("span.event").all_inner_texts()

    # another browser, no session: pages send it to the login form, posts are refused
    stranger = browser.new_context()
    other = stranger.new_page()
    other.goto(f"{site.url}/admin/dead-letters")
    assert other.url.startswith(f"{site.url}/admin/login")
    refused = stranger.request.post(f"{site.url}/admin/dead-letters/replay",
                                    form={"all": "1", "csrf": "x"})
    assert refused.status == 403
    stranger.close()
    context.close()
