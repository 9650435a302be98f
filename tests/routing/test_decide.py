"""Routing decisions (daemon/routing/decide.py), pure: no database, no clock.

When these fail, a lead goes to the wrong place: a returning client to a stranger, a
drip lead to an agent, a hot lead past the Slack claim, or an inactive agent gets turns.
"""

from __future__ import annotations

from dataclasses import replace

from routingkit import ANA, BEN, CHO, TEAM, make_lead

from daemon.routing.decide import Agent, Previous, Roster, decide, fallback


def test_the_rotation_is_the_active_agents_in_config_order():
    assert TEAM.rotation() == ("Ana Ruiz", "Ben Okafor", "Cho Park")


def test_an_inactive_agent_gets_no_turn():
    roster = Roster((ANA, replace(BEN, active=False), CHO))
    assert roster.rotation() == ("Ana Ruiz", "Cho Park")


def test_a_weight_gives_extra_turns_spread_over_the_round():
    roster = Roster((replace(ANA, weight=3), BEN, replace(CHO, weight=2)))
    assert roster.rotation() == ("Ana Ruiz", "Ben Okafor", "Cho Park", "Ana Ruiz", "Cho Park", "Ana Ruiz")


def test_standard_leads_take_a_round_robin_turn():
    d = decide(make_lead(1), TEAM, None, can_offer=True)
    assert d.kind == "round_robin" and d.rotation == TEAM.rotation()


def test_low_tier_leads_go_to_drip_with_no_agent():
    d = decide(make_lead(1, "low"), TEAM, None, can_offer=True)
    assert d.kind == "drip" and d.agent is None


def test_hot_leads_are_offered_for_claiming_when_slack_can_offer():
    assert decide(make_lead(1, "hot"), TEAM, None, can_offer=True).kind == "offer"
    assert decide(make_lead(1, "hot"), TEAM, None, can_offer=False).kind == "round_robin"


def test_a_repeat_inquiry_keeps_the_agent_and_takes_no_turn():
    for tier in ("hot", "standard", "low"):
        d = decide(make_lead(2, tier), TEAM, Previous(7, "Ben Okafor"), can_offer=True)
        assert (d.kind, d.agent, d.repeat_of, d.rotation) == ("repeat", "Ben Okafor", 7, ())


def test_a_repeat_inquiry_whose_agent_left_is_routed_afresh():
    roster = Roster((ANA, replace(BEN, active=False), CHO))
    assert decide(make_lead(2), roster, Previous(7, "Ben Okafor"), can_offer=True).kind == "round_robin"
    assert decide(make_lead(2), TEAM, Previous(7, "Someone Gone"), can_offer=True).kind == "round_robin"


def test_with_no_active_agent_a_lead_is_unassigned():
    nobody = Roster((replace(ANA, active=False),))
    assert decide(make_lead(1), nobody, None, can_offer=True).kind == "unassigned"
    assert fallback(nobody).kind == "unassigned"
    assert fallback(TEAM).kind == "round_robin"


def test_roster_lookups():
    assert TEAM.by_slack_user("U0CHO") == CHO
    assert TEAM.by_slack_user("U0NOBODY") is None
    assert TEAM.get("Ana Ruiz") == ANA
    assert Roster.of([Agent("X", weight=2)]).rotation() == ("X", "X")
