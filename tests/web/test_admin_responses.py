"""The admin Responses page (daemon/web/admin/response_pages.py) over HTTP, and the flow on
a lead's routing history.

When these fail, the owner cannot see how fast each agent answered, or which flow sent a
lead where.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from adminkit import Site, lead_email, running_site
from test_admin import login


@pytest.fixture
def signed_in(tmp_path: Path, database_url: str) -> Iterator[tuple[Site, httpx.Client]]:
    with running_site(tmp_path, database_url) as site:
        site.deliver(lead_email("Dana Lee", "+1 305 555 0142", n=1),
                     lead_email("Marco Silva", "(954) 555-0187", n=2),
                     lead_email("Priya Shah", "786.555.0123", n=3))
        assert site.service.router.accept(1, "U0ANA") == "accepted"
        with httpx.Client(base_url=site.url, timeout=10) as c:
            assert login(c).status_code == 303
            yield site, c


def test_the_responses_page_charts_each_agents_times_to_accept(signed_in: tuple[Site, httpx.Client]):
    _, c = signed_in
    r = c.get("/admin/responses")
    assert r.status_code == 200
    table = re.search(r'<table class="grid responses" id="responses-agent">.*?</table>', r.text, re.S)
    assert table, r.text
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>.*?</tr>", table.group(0), re.S)
    assert rows == ["Ana Ruiz", "Ben Okafor"]
    assert table.group(0).count('class="answer"') == 1  # one accepted lead, one dot
    assert 'class="deadline"' in table.group(0)
    assert 'id="responses-team"' in r.text and "(whole office)" in r.text
    assert c.get("/admin/responses?period=nonsense").status_code == 200  # falls back to 7d


def test_a_leads_history_shows_the_flow(signed_in: tuple[Site, httpx.Client]):
    _, c = signed_in
    r = c.get("/admin/leads/1")
    assert r.status_code == 200
    assert '<td class="flow">default</td>' in r.text
    assert '<span class="event accepted">accepted</span>' in r.text


def test_the_responses_page_needs_a_session(tmp_path: Path, database_url: str):
    with running_site(tmp_path, database_url) as site, httpx.Client(base_url=site.url, timeout=10) as c:
        r = c.get("/admin/responses")
        assert r.status_code in (303, 307) or "/admin/login" in str(r.url)
