"""What the person's enrichment looks like where people read it: the agent's Slack DM and the
hot-lead offer (against the Slack stand-in), the Follow Up Boss event's message, the HubSpot
note (against their stand-ins), and the admin lead page (a whole daemon with the generic
enricher on loopback). When one fails, an agent does not see where the person works, a
profile is shown to every agent in the channel, or a provider's text breaks the markup."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import httpx
from adminkit import PASSWORD, USER, csrf_of, lead_email, settings
from crmservers import FubServer, HubSpotServer
from enrichservers import PersonServer
from routingkit import START, make_lead
from slackserver import SlackServer

from daemon.config import ProviderSettings
from daemon.lead import Enrichment, Profile, StoredLead
from daemon.service import Service
from daemon.web.app import WebServer
from notifiers.base import Action
from notifiers.followupboss import FollowUpBoss
from notifiers.hubspot import HubSpot
from notifiers.slack import CLAIM_OFFER, Slack

ABOUT = Enrichment("peopledatalabs", True, company="Compass <b>", title="Broker Associate",
                   profiles=(Profile("linkedin", "https://linkedin.com/in/dana-lee"),), likelihood=8)
LEAD = StoredLead(id=41, lead=dataclasses.replace(make_lead(7, "hot"), enrichment=ABOUT),
                  status="offered", created_at=START)


def test_the_dm_says_where_they_work_and_the_offer_only_that():
    with SlackServer() as server:
        slack = Slack("xoxb-test", base_url=server.base_url, hot_leads_channel="C0HOT", timeout=2)
        slack.deliver(LEAD, Action("dm_agent", {"user": "U0BEN", "why": "claimed"}))
        slack.deliver(LEAD, Action(CLAIM_OFFER))
        dm, offer = server.named("chat.postMessage")
    assert ("About them: Broker Associate at Compass &lt;b&gt; · linkedin "
            "https://linkedin.com/in/dana-lee (peopledatalabs, likelihood 8)") in dm.body["text"]
    offered = str(offer.body["blocks"])
    assert "Works as" in offered and "Broker Associate at Compass &lt;b&gt;" in offered
    assert "linkedin" not in offered


def test_the_crm_note_says_where_they_work():
    with FubServer() as fub:
        FollowUpBoss("key", base_url=fub.base_url, timeout=2).deliver(LEAD, Action("event", {}))
        (event,) = fub.named("events")
    assert "About them: Broker Associate at Compass <b> · linkedin https://linkedin.com/in/dana-lee" \
        in event.body["message"]
    with HubSpotServer() as hs:
        contact = hs.add_contact({"email": "dana7@example.com"})
        HubSpot("tok", base_url=hs.base_url, timeout=2).deliver(
            LEAD, Action("note", {}, earlier={"contact": {"contact_id": contact}}))
        (note,) = hs.notes
    assert "About them: Broker Associate at Compass &lt;b&gt; · linkedin" in note["properties"]["hs_note_body"]


def test_without_an_enrichment_nothing_is_added():
    plain = dataclasses.replace(LEAD, lead=make_lead(7, "hot"))
    with FubServer() as fub:
        FollowUpBoss("key", base_url=fub.base_url, timeout=2).deliver(plain, Action("event", {}))
        (event,) = fub.named("events")
    assert "About them" not in event.body["message"]


def test_the_admin_lead_page_shows_the_enrichment_of_a_lead_the_daemon_enriched(tmp_path: Path):
    with PersonServer() as person:
        person.people["dana.lee@example.com"] = ("Compass", "Broker Associate",
                                                 "linkedin.com/in/dana-lee", None, 9)
        conf = settings(tmp_path, f"sqlite:///{tmp_path}/lp.db")
        conf = conf.model_copy(update={"enrichment": ProviderSettings(
            provider="generic", base_url=person.url, budget="1s", timeout="1s")})
        service = Service(conf)
        server = WebServer(service.web_app(), "127.0.0.1", 0).start()
        try:
            assert service.enrichment is not None and service.worker.enrichment is service.enrichment
            (tmp_path / "inbox" / "a.eml").write_bytes(lead_email("Dana Lee", "(305) 555-0142", n=1))
            (done,) = service.run_once()
            with httpx.Client(base_url=server.url, timeout=10) as c:
                form = c.get("/admin/login").text
                assert c.post("/admin/login", data={"csrf": csrf_of(form), "username": USER,
                                                    "password": PASSWORD}).status_code == 303
                page = c.get(f"/admin/leads/{done.lead_id}").text
        finally:
            server.stop()
            service.db.dispose()
    assert person.calls == 1 and person.named("person")[0].query == {"email": "dana.lee@example.com"}
    about = page[page.index("About them"):]
    assert "generic, likelihood 9" in about and "Compass" in about and "Broker Associate" in about
    assert re.search(r'<a href="https://linkedin.com/in/dana-lee" rel="noopener noreferrer nofollow"'
                     r' target="_blank">linkedin</a>', about)
