"""Lead flows against the database (daemon/routing/assign.py with flows.py), on SQLite and
PostgreSQL.

When these fail, a lead reaches the wrong team, a team's agents get unfair shares, two
replicas give one team's turn twice or skip one, an agent on holiday or asleep gets a lead,
or a lead whose team has nobody available is stuck.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flowkit import FOUR_TEAMS, OFFICE, lead_in, plan_of
from routingkit import Clock, add_lead, make_lead

from daemon.delivery.alerts import Alerts
from daemon.routing.assign import Router
from daemon.routing.decide import Roster
from daemon.routing.flows import Plan
from storage import leads, outbox
from storage import routing as store
from storage.db import Database
from storage.models import LeadRow


def router_of(db: Database, plan: Plan, roster: Roster = OFFICE, clock: Clock | None = None,
              **kw: object) -> Router:
    clock = clock or Clock()
    return Router(db, roster, plan=plan, slack=True, offer_hot=True, clock=clock,
                  alerts=Alerts(db, to_slack=True, clock=clock), **kw)  # type: ignore[arg-type]


def by_team(db: Database) -> dict[str | None, Counter[str | None]]:
    with db.session() as s:
        out: dict[str | None, Counter[str | None]] = {}
        for r in s.query(LeadRow):
            out.setdefault(r.team, Counter())[r.agent] += 1
        return out


def test_two_areas_and_two_price_bands_reach_four_teams_in_their_proportions(db: Database, tmp_path: Path):
    _, plan = plan_of(FOUR_TEAMS, tmp_path)
    router = router_of(db, plan)
    n = 0
    for _ in range(30):
        for code, price in (("33101", 350000), ("33140", 750000), ("33301", 420000), ("33308", 500000)):
            n += 1
            add_lead(db, router, lead_in(n, code, price))
    assert by_team(db) == {
        "north_low": {"Ana": 20, "Ben": 10},  # Ana's weight 2 holds within her team
        "north_high": {"Cho": 15, "Dee": 15},
        "south_low": {"Eve": 15, "Fay": 15},
        "south_high": {"Gus": 15, "Hal": 15},  # 500,000 is the high band's (min inclusive)
    }
    with db.session() as s:
        for team in ("north_low", "north_high", "south_low", "south_high"):
            assert store.pointer_position(s, f"team:{team}") == 30
        assert store.pointer_position(s) == 0  # the office's rotation was not touched
        flows = Counter(e.flow for e in store.history(s, kind="assigned"))
    assert flows == {"north-low": 30, "north-high": 30, "south-low": 30, "south-high": 30}


def test_a_lead_no_flow_matches_takes_the_default_flow_and_it_is_recorded(db: Database, tmp_path: Path):
    _, plan = plan_of(FOUR_TEAMS, tmp_path)
    router = router_of(db, plan)
    lead_id = add_lead(db, router, lead_in(1, "90210", 350000))
    with db.session() as s:
        (event,) = store.history(s, lead_id)
        row = s.get(LeadRow, lead_id)
        assert (event.kind, event.flow, event.agent, row.team, row.flow) == \
            ("assigned", "default", "Ana", None, "default")
        assert store.pointer_position(s) == 1


def test_two_replicas_share_each_teams_pointer_without_a_duplicate_or_skipped_turn(
        db: Database, database_url: str, tmp_path: Path):
    _, plan = plan_of(FOUR_TEAMS, tmp_path)
    replicas = [Database(database_url) for _ in range(2)]
    try:
        routers = [router_of(d, plan) for d in replicas]
        errors: list[BaseException] = []
        start = threading.Barrier(6)

        def work(k: int) -> None:
            router, d = routers[k % 2], replicas[k % 2]
            try:
                start.wait()
                for i in range(40):
                    n = k * 1000 + i
                    add_lead(d, router, lead_in(n, "33101" if i % 2 else "33301", 300000))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        with replicas[0].session() as s:
            events = store.history(s, kind="assigned")
            for flow, team in (("north-low", "north_low"), ("south-low", "south_low")):
                turns = sorted(e.turn for e in events if e.flow == flow and e.turn is not None)
                assert turns == list(range(120)), flow
                assert store.pointer_position(s, f"team:{team}") == 120
        counts = by_team(replicas[0])
        assert counts["north_low"] == {"Ana": 80, "Ben": 40}
        assert counts["south_low"] == {"Eve": 60, "Fay": 60}
    finally:
        for d in replicas:
            d.dispose()


def test_an_agent_set_away_is_skipped_until_back(db: Database, tmp_path: Path):
    clock = Clock()
    _, plan = plan_of(FOUR_TEAMS, tmp_path)
    router = router_of(db, plan, clock=clock)
    with db.session() as s:
        store.set_away(s, "Cho", until=clock() + timedelta(hours=2), at=clock())
    for n in range(4):
        add_lead(db, router, lead_in(n, "33140", 800000))
    assert by_team(db)["north_high"] == {"Dee": 4}
    with db.session() as s:
        skipped = [e.turn for e in store.history(s, kind="assigned")]
    assert skipped == [1, 3, 5, 7]  # Cho's turns passed over, not saved for later
    clock.advance(hours=2)  # the absence ends by itself
    add_lead(db, router, lead_in(10, "33140", 800000))
    with db.session() as s:
        store.set_away(s, "Dee", until=clock() + timedelta(days=3), at=clock())
        assert store.clear_away(s, "Dee")
    add_lead(db, router, lead_in(11, "33140", 800000))
    assert by_team(db)["north_high"] == {"Dee": 5, "Cho": 1}


def test_off_hours_are_read_in_the_agents_zone_across_a_daylight_saving_change(db: Database, tmp_path: Path):
    """US clocks go back on Sunday 1 November 2026: 13:30 UTC is 09:30 in New York on the
    Friday before (EDT) and 08:30 on the Monday after (EST)."""
    config = copy.deepcopy(FOUR_TEAMS)
    config["agents"][3].update(time_zone="America/New_York", hours={"mon-fri": "09:00-17:00"})  # Dee
    _, plan = plan_of(config, tmp_path)
    clock = Clock(datetime(2026, 10, 30, 13, 30, tzinfo=UTC))
    router = router_of(db, plan, clock=clock)

    def next_agent(n: int) -> str | None:
        lead_id = add_lead(db, router, lead_in(n, "33140", 800000))
        with db.session() as s:
            return s.get(LeadRow, lead_id).agent

    assert [next_agent(1), next_agent(2)] == ["Cho", "Dee"]  # Friday 09:30 EDT: Dee works
    clock.advance(days=3)  # Monday 13:30 UTC = 08:30 EST
    assert [next_agent(3), next_agent(4)] == ["Cho", "Cho"]
    clock.advance(hours=1)  # 09:30 EST
    assert [next_agent(5), next_agent(6)] == ["Dee", "Cho"]
    clock.advance(hours=8)  # 17:30 EST, after hours
    assert next_agent(7) == "Cho" and next_agent(8) == "Cho"


def test_a_team_with_nobody_available_hands_its_lead_to_its_fallback_then_the_default_flow(
        db: Database, tmp_path: Path):
    config = copy.deepcopy(FOUR_TEAMS)
    config["teams"][0]["fallback"] = "south_low"
    _, plan = plan_of(config, tmp_path)
    clock = Clock()
    router = router_of(db, plan, clock=clock)
    with db.session() as s:
        for name in ("Ana", "Ben"):
            store.set_away(s, name, until=clock() + timedelta(days=1), at=clock())
    first = add_lead(db, router, lead_in(1, "33101", 300000))
    with db.session() as s:
        for name in ("Eve", "Fay"):
            store.set_away(s, name, until=clock() + timedelta(days=1), at=clock())
    second = add_lead(db, router, lead_in(2, "33101", 300000))
    with db.session() as s:
        a, b = s.get(LeadRow, first), s.get(LeadRow, second)
        assert (a.team, a.agent, a.flow) == ("south_low", "Eve", "north-low")
        assert (b.team, b.agent) == (None, "Cho")  # the office's rotation, Ana and Ben away
        (event,) = store.history(s, second)
        assert "nobody of team north_low available" in (event.detail or "")
        assert "nobody of team south_low available" in (event.detail or "")


def test_with_nobody_available_at_all_the_lead_still_gets_an_agent(db: Database, tmp_path: Path):
    _, plan = plan_of(FOUR_TEAMS, tmp_path)
    clock = Clock()
    router = router_of(db, plan, clock=clock)
    with db.session() as s:
        for a in OFFICE.agents:
            store.set_away(s, a.name, until=clock() + timedelta(days=1), at=clock())
    lead_id = add_lead(db, router, lead_in(1, "33101", 300000))
    with db.session() as s:
        row = s.get(LeadRow, lead_id)
        assert row.status == "assigned" and row.agent == "Ana"
        assert "nobody is available" in (store.history(s, lead_id)[0].detail or "")


def test_an_offer_to_a_team_is_claimable_only_by_its_agents_and_times_out_within_it(
        db: Database, tmp_path: Path):
    config = copy.deepcopy(FOUR_TEAMS)
    config["teams"][1].update(channel="C0NORTH", claim_timeout="2m")
    config["routing"]["flows"].insert(0, {"name": "north-hot", "match": {"tier": "hot", "postal_codes": ["331*"]},
                                          "team": "north_high", "method": "offer"})
    _, plan = plan_of(config, tmp_path)
    clock = Clock()
    router = router_of(db, plan, clock=clock)
    claimed = add_lead(db, router, lead_in(1, "33101", 300000, tier="hot"))
    with db.session() as s:
        (offer,) = [d for d in outbox.listing(s, lead_id=claimed) if d.action == "claim_offer"]
        row = s.get(LeadRow, claimed)
        assert offer.payload == {"channel": "C0NORTH"}
        assert row.claim_deadline == clock() + timedelta(minutes=2)
    assert router.claim(claimed, "U0ANA").verdict == "refused"  # Ana is not in north_high
    won = router.claim(claimed, "U0DEE")
    assert (won.verdict, won.agent) == ("won", "Dee")
    timed_out = add_lead(db, router, lead_in(2, "33140", 300000, tier="hot"))
    clock.advance(minutes=2, seconds=1)
    assert router.expire_offers() == [timed_out]
    with db.session() as s:
        row = s.get(LeadRow, timed_out)
        assert (row.status, row.agent, row.team) == ("assigned", "Cho", "north_high")
        assert [e.flow for e in store.history(s, timed_out)] == ["north-hot"] * 3


def test_a_pond_lead_waits_unassigned_for_anyone_to_claim_it(db: Database, tmp_path: Path):
    config = copy.deepcopy(FOUR_TEAMS)
    config["routing"]["flows"].insert(0, {"name": "pond", "match": {"source": "zil*"}, "method": "pond"})
    _, plan = plan_of(config, tmp_path)
    clock = Clock()
    router = router_of(db, plan, clock=clock)
    lead_id = add_lead(db, router, lead_in(1, "33101", 300000))
    clock.advance(hours=5)
    assert router.expire_offers() == []  # a pond has no claim timeout
    with db.session() as s:
        row = s.get(LeadRow, lead_id)
        assert (row.status, row.agent, row.claim_deadline) == ("pond", None, None)
        (offer,) = outbox.listing(s, lead_id=lead_id)
        assert offer.payload == {"pond": True}
    assert router.claim(lead_id, "U0HAL").verdict == "won"
    assert router.claim(lead_id, "U0ANA").verdict == "taken"


def test_a_named_agent_flow_falls_back_when_the_agent_is_away(db: Database, tmp_path: Path):
    config = copy.deepcopy(FOUR_TEAMS)
    config["routing"]["flows"].insert(0, {"name": "sellers", "match": {"intent": "sell"},
                                          "method": "agent", "agent": "Gus", "team": "south_high"})
    _, plan = plan_of(config, tmp_path)
    clock = Clock()
    router = router_of(db, plan, clock=clock)
    first = add_lead(db, router, lead_in(1, "33101", 300000, intent="sell"))
    with db.session() as s:
        store.set_away(s, "Gus", until=clock() + timedelta(days=1), at=clock())
    second = add_lead(db, router, lead_in(2, "33101", 300000, intent="sell", phone="+13055559999",
                                          email="other@example.com"))
    with db.session() as s:
        assert s.get(LeadRow, first).agent == "Gus"
        assert s.get(LeadRow, second).agent == "Hal"
        assert "Gus is away until" in (store.history(s, second)[0].detail or "")


def test_a_low_tier_lead_drips_unless_a_flow_names_the_low_tier(db: Database, tmp_path: Path):
    config = copy.deepcopy(FOUR_TEAMS)
    config["routing"]["flows"].insert(0, {"name": "low-south", "match": {"tier": "low", "postal_codes": "333*"},
                                          "team": "south_low"})
    _, plan = plan_of(config, tmp_path)
    router = router_of(db, plan)
    dripped = add_lead(db, router, lead_in(1, "33101", 300000, tier="low"))
    routed = add_lead(db, router, lead_in(2, "33301", 300000, tier="low"))
    with db.session() as s:
        assert s.get(LeadRow, dripped).status == "drip"
        assert (s.get(LeadRow, routed).status, s.get(LeadRow, routed).team) == ("assigned", "south_low")


def test_a_repeat_inquiry_keeps_its_agent_within_its_flow(db: Database, tmp_path: Path):
    _, plan = plan_of(FOUR_TEAMS, tmp_path)
    router = router_of(db, plan)
    add_lead(db, router, lead_in(1, "33140", 800000))
    again = add_lead(db, router, lead_in(1, "33140", 800000))
    with db.session() as s:
        row = s.get(LeadRow, again)
        (event,) = store.history(s, again)
        assert (row.agent, row.team, event.kind, event.flow) == ("Cho", "north_high", "repeat", "north-high")
        assert store.pointer_position(s, "team:north_high") == 1


def test_no_flows_is_todays_single_rotation(db: Database, tmp_path: Path):
    config = {k: v for k, v in FOUR_TEAMS.items() if k == "agents"}
    _, plan = plan_of(config, tmp_path)
    router = router_of(db, plan, roster=Roster(OFFICE.agents[:3]))
    for n in range(8):
        add_lead(db, router, make_lead(n))
    with db.session() as s:
        assert [r.agent for r in reversed(leads.newest(s))] == ["Ana", "Ben", "Cho", "Ana"] * 2
        assert store.pointer_position(s) == 8
