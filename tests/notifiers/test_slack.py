"""The Slack notifier (notifiers/slack.py) against a local server speaking the Web API.

When these fail, the hot-leads channel shows a prospect's phone and email to everyone,
the claimer gets no contact, the message never says who claimed it, or a bad token is
retried for hours instead of alerting.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from routingkit import START, Clock, make_lead
from slackserver import SlackServer

from daemon.errors import PermanentDeliveryError, TransientDeliveryError
from daemon.lead import StoredLead
from notifiers import NOTIFIERS, notifier_class
from notifiers.base import Action
from notifiers.slack import CLAIM_OFFER, Slack, update_line


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    with SlackServer() as server:
        yield server


def notifier(server: SlackServer, clock: Clock | None = None) -> Slack:
    return Slack("xoxb-test", base_url=server.base_url, hot_leads_channel="C0HOT",
                 alerts_channel="C0ALERTS", timeout=2, clock=clock or Clock())


HOT = StoredLead(id=41, lead=make_lead(7, "hot"), status="offered", created_at=START)


def test_the_claim_message_shows_what_to_decide_on_but_not_the_contact(slack: SlackServer):
    clock = Clock()
    clock.advance(minutes=3)
    outcome = notifier(slack, clock).deliver(HOT, Action(CLAIM_OFFER))
    (call,) = slack.named("chat.postMessage")
    text = str(call.body["blocks"])
    for shown in ("Dana", "12 Palm Ave, Miami, FL", "$500k–$700k", "90 (hot)", "zillow", "3m"):
        assert shown in text
    for hidden in ("Lee7", "+13055550007", "dana7@example.com", "see it this week"):
        assert hidden not in text and hidden not in call.body["text"]
    button = call.body["blocks"][-1]["elements"][0]
    assert (button["action_id"], button["value"], button["text"]["text"]) == ("claim_lead", "41", "Claim")
    assert outcome.kind == "delivered" and outcome.result == {"channel": "C0HOT", "ts": f"{slack.epoch + 1}.000100"}


def test_the_claimer_gets_the_full_contact_by_dm(slack: SlackServer):
    notifier(slack).deliver(HOT, Action("dm_agent", {"user": "U0BEN", "why": "claimed"}))
    (opened,) = slack.named("conversations.open")
    (dm,) = slack.named("chat.postMessage")
    assert opened.body["users"] == "U0BEN" and dm.body["channel"] == "DU0BEN"
    for shown in ("Dana Lee7", "+13055550007", "dana7@example.com", "see it this week", "you claimed"):
        assert shown in dm.body["text"]


def test_the_message_is_updated_with_who_claimed_and_how_fast(slack: SlackServer):
    earlier = {CLAIM_OFFER: {"channel": "C0HOT", "ts": "1700000001.000100"}}
    notifier(slack).deliver(HOT, Action("claim_update", {
        "kind": "claimed", "agent": "Ben Okafor", "slack_user_id": "U0BEN", "seconds": 42.4},
        earlier=earlier))
    (update,) = slack.named("chat.update")
    assert (update.body["channel"], update.body["ts"]) == ("C0HOT", "1700000001.000100")
    assert update.body["text"] == ":white_check_mark: Claimed by <@U0BEN> in 42 s"
    assert "claim_lead" not in str(update.body["blocks"])  # the button is gone


def test_an_update_waits_for_the_message_it_edits():
    with SlackServer() as server, pytest.raises(TransientDeliveryError, match="not posted yet"):
        notifier(server).deliver(HOT, Action("claim_update", {"kind": "claimed", "agent": "Ben"}))


def test_the_timeout_line_says_who_got_it_by_round_robin():
    assert update_line({"kind": "timeout", "agent": "Cho Park", "slack_user_id": "U0CHO",
                        "seconds": 300}) == ":hourglass: Unclaimed after 5m — assigned to <@U0CHO> by round robin"
    assert "no active agent" in update_line({"kind": "timeout", "agent": None, "seconds": 300})


def test_a_late_clicker_gets_an_ephemeral(slack: SlackServer):
    notifier(slack).deliver(HOT, Action("claim_taken", {
        "user": "U0CHO", "channel": "C0HOT", "text": "Already claimed by <@U0BEN>."}))
    (eph,) = slack.named("chat.postEphemeral")
    assert (eph.body["user"], eph.body["channel"], eph.body["text"]) == (
        "U0CHO", "C0HOT", "Already claimed by <@U0BEN>.")


def test_rate_limits_carry_retry_after(slack: SlackServer):
    clock = Clock()
    slack.fail_next("chat.postMessage", 429, retry_after=7)
    with pytest.raises(TransientDeliveryError) as caught:
        notifier(slack, clock).deliver(HOT, Action(CLAIM_OFFER))
    assert caught.value.retry_after == clock() + timedelta(seconds=7)
    assert caught.value.status_code == 429


def test_a_bad_token_is_permanent(slack: SlackServer):
    slack.fail_next("chat.postMessage", 200, error="invalid_auth")
    with pytest.raises(PermanentDeliveryError, match="invalid_auth"):
        notifier(slack).deliver(HOT, Action(CLAIM_OFFER))


def test_auth_test_names_the_bot_and_workspace(slack: SlackServer):
    assert notifier(slack).check() == "Slack: bot leadpipe in workspace Test Brokerage"


def test_doctor_names_the_scopes_the_bot_token_lacks(slack: SlackServer):
    slack.scopes = "chat:write,im:write"
    with pytest.raises(PermanentDeliveryError, match=r"lacks the scopes channels:history, im:history"):
        notifier(slack).check()


def test_notifiers_are_chosen_by_name():
    assert notifier_class("slack") is Slack and NOTIFIERS["slack"].name == "slack"


def test_each_post_carries_its_outbox_key_so_a_retry_can_find_it(slack: SlackServer):
    notifier(slack).deliver(HOT, Action(CLAIM_OFFER, idempotency_key="lead:41:slack:claim_offer"))
    (message,) = slack.posted("C0HOT")
    assert message["metadata"] == {"event_type": "leadpipe_delivery",
                                   "event_payload": {"key": "lead:41:slack:claim_offer"}}


def test_a_retry_finds_its_post_among_many_pages_of_history():
    with SlackServer(epoch=START.timestamp()) as server:
        slack = Slack("xoxb-test", base_url=server.base_url, hot_leads_channel="C0BUSY",
                      alerts_channel="C0BUSY", timeout=2, clock=Clock())
        slack.deliver(HOT, Action(CLAIM_OFFER, idempotency_key="lead:41:slack:claim_offer"))
        for n in range(450):  # the channel moved on: the post is on the third page
            slack.deliver(None, Action("alert", {"text": f"n{n}"}, idempotency_key=f"alert:{n}"))
        outcome = slack.deliver(HOT, Action(CLAIM_OFFER, idempotency_key="lead:41:slack:claim_offer",
                                            attempt=2, since=START))
        assert outcome.result == {"channel": "C0BUSY", "ts": server.posted("C0BUSY")[0]["ts"],
                                  "already_posted": True}
        assert len(server.named("chat.postMessage")) == 451
        assert len(server.named("conversations.history")) == 3  # 200 a page, newest first


def test_a_dm_shows_the_phone_as_the_agent_dials_it_with_a_tap_to_call_link(slack: SlackServer):
    lead = StoredLead(id=42, lead=make_lead(8, phone="+16155550166"), status="assigned", created_at=START)
    notifier(slack).deliver(lead, Action("dm_agent", {"user": "U0BEN", "why": "round_robin"}))
    (dm,) = slack.named("chat.postMessage")
    assert "Phone: <tel:+16155550166|(615) 555-0166>" in dm.body["text"]
    abroad = StoredLead(id=43, lead=make_lead(9, phone="+442079460958"), status="assigned", created_at=START)
    notifier(slack).deliver(abroad, Action("dm_agent", {"user": "U0BEN", "why": "round_robin"}))
    assert "Phone: <tel:+442079460958|+44 20 7946 0958>" in slack.named("chat.postMessage")[1].body["text"]
