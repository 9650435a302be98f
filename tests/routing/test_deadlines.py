"""The deadline to accept (daemon/routing/response.py): an unaccepted lead moves on at its
deadline, exactly once — across replicas and through a SIGKILL — on SQLite and PostgreSQL.

When these fail, a lead sits with an agent who never answered, moves twice (two agents
calling one person), moves after it was accepted, or a killed daemon loses or repeats the move.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from flowkit import FOUR_TEAMS, OFFICE, lead_in, plan_of
from routingkit import START, Clock, add_lead

from daemon.delivery.alerts import Alerts
from daemon.routing.assign import Router
from daemon.routing.flows import Plan
from storage import outbox
from storage import routing as store
from storage.db import Database
from storage.models import LeadRow

REPO = Path(__file__).resolve().parents[2]


def deadline_config(**team: object) -> dict[str, object]:
    config = copy.deepcopy(FOUR_TEAMS)
    config["teams"][1].update(team)
    for flow in config["routing"]["flows"]:
        flow["deadline"] = "5m"
    return config


def router_of(db: Database, plan: Plan, clock: Clock) -> Router:
    return Router(db, OFFICE, plan=plan, slack=True, offer_hot=True, clock=clock,
                  alerts=Alerts(db, to_slack=True, clock=clock))


def where(db: Database, lead_id: int) -> tuple[object, ...]:
    with db.session() as s:
        row = s.get(LeadRow, lead_id)
        return row.agent, row.accept_deadline, [e.kind for e in store.history(s, lead_id)]


def test_an_unaccepted_lead_moves_to_the_teams_next_agent_at_its_deadline_once(db: Database, tmp_path: Path):
    _, plan = plan_of(deadline_config(), tmp_path)
    clock = Clock()
    router = router_of(db, plan, clock)
    lead_id = add_lead(db, router, lead_in(1, "33140", 800000))  # north-high: Cho's turn
    assert where(db, lead_id) == ("Cho", START + timedelta(minutes=5), ["assigned"])
    clock.advance(minutes=4, seconds=59)
    assert router.expire_deadlines() == []
    clock.advance(seconds=2)
    assert router.expire_deadlines() == [lead_id]
    assert router.expire_deadlines() == []
    agent, deadline, kinds = where(db, lead_id)
    assert (agent, deadline, kinds) == ("Dee", clock() + timedelta(minutes=5), ["assigned", "missed", "reassigned"])
    with db.session() as s:
        rows = {(d.action, d.payload.get("user")): d for d in outbox.listing(s, lead_id=lead_id)}
        assert store.pointer_position(s, "team:north_high") == 2
    notice = rows[("dm_notice", "U0CHO")]
    assert notice.payload["text"] == f"Lead #{lead_id} moved to Dee: not accepted within 5m 01s."
    moved = rows[("dm_agent", "U0DEE")]
    assert moved.payload["why"] == "reassigned" and moved.payload["accept"] is True
    assert router.accept(lead_id, "U0CHO") == "not_yours"  # too late for Cho
    assert router.accept(lead_id, "U0DEE") == "accepted"
    clock.advance(minutes=10)
    assert router.expire_deadlines() == []  # accepted: it stays


def test_an_accepted_lead_never_moves(db: Database, tmp_path: Path):
    _, plan = plan_of(deadline_config(), tmp_path)
    clock = Clock()
    router = router_of(db, plan, clock)
    lead_id = add_lead(db, router, lead_in(1, "33140", 800000))
    clock.advance(minutes=4)
    assert router.accept(lead_id, "U0CHO") == "accepted"
    clock.advance(minutes=30)
    assert router.expire_deadlines() == []
    assert where(db, lead_id)[0] == "Cho"


def test_with_nobody_else_available_the_lead_stays_and_the_office_is_told(db: Database, tmp_path: Path):
    _, plan = plan_of(deadline_config(), tmp_path)
    clock = Clock()
    router = router_of(db, plan, clock)
    lead_id = add_lead(db, router, lead_in(1, "33140", 800000))
    with db.session() as s:
        for a in OFFICE.agents:
            if a.name != "Cho":
                store.set_away(s, a.name, until=clock() + timedelta(days=1), at=clock())
    clock.advance(minutes=6)
    assert router.expire_deadlines() == [lead_id]
    assert where(db, lead_id) == ("Cho", None, ["assigned", "missed"])
    with db.session() as s:
        (alert,) = [d for d in outbox.listing(s) if d.action == "alert"]
    assert "nobody else is available" in alert.payload["text"]


def test_repeated_misses_tell_the_team_lead(db: Database, tmp_path: Path):
    config = deadline_config(lead="Ana")
    config["routing"]["miss_alert_after"] = 2
    config["teams"][1]["agents"] = ["Cho", "Dee", "Eve"]
    _, plan = plan_of(config, tmp_path)
    clock = Clock()
    router = router_of(db, plan, clock)
    first = add_lead(db, router, lead_in(1, "33140", 800000))  # Cho
    dees = add_lead(db, router, lead_in(2, "33140", 800000))
    eves = add_lead(db, router, lead_in(3, "33140", 800000))
    second = add_lead(db, router, lead_in(4, "33140", 800000))  # Cho again
    assert router.accept(dees, "U0DEE") == router.accept(eves, "U0EVE") == "accepted"
    clock.advance(minutes=6)
    assert sorted(router.expire_deadlines()) == [first, second]
    with db.session() as s:
        told = [d.payload for d in outbox.listing(s) if d.action == "dm_notice" and d.payload["user"] == "U0ANA"]
    assert told == [{"user": "U0ANA", "text": "Cho let 2 leads pass their deadline to accept in the last 24 h "
                     "(team north_high)."}]


def test_the_default_flow_takes_its_deadline_from_routing_accept_deadline(db: Database, tmp_path: Path):
    config = {"agents": FOUR_TEAMS["agents"][:2], "routing": {"accept_deadline": "2m"}}
    _, plan = plan_of(config, tmp_path)
    clock = Clock()
    router = router_of(db, plan, clock)
    lead_id = add_lead(db, router, lead_in(1, "90210", 100000))
    clock.advance(minutes=3)
    assert router.expire_deadlines() == [lead_id]
    assert where(db, lead_id)[0] == "Ben"


def test_two_replicas_move_each_lead_once(db: Database, database_url: str, tmp_path: Path):
    _, plan = plan_of(deadline_config(), tmp_path)
    clock = Clock()
    router = router_of(db, plan, clock)
    ids = [add_lead(db, router, lead_in(n, "33140", 800000)) for n in range(20)]
    clock.advance(minutes=6)
    replicas = [Database(database_url) for _ in range(2)]
    handled: list[list[int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(d: Database) -> None:
        try:
            start.wait()
            handled.append(router_of(d, plan, clock).expire_deadlines(limit=100))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for d in replicas:
        d.dispose()
    assert not errors
    assert sorted(i for h in handled for i in h) == ids
    with db.session() as s:
        assert len(store.history(s, kind="reassigned")) == 20


CHILD = textwrap.dedent("""
    import os, signal, sys
    from datetime import datetime
    from sqlalchemy import event
    from daemon.config import load_settings
    from daemon.routing.assign import Router
    from daemon.routing.decide import Roster
    from daemon.routing.flows import load_plan
    from storage.db import Database

    url, config, at, kill = sys.argv[1:5]
    settings = load_settings(config)
    db = Database(url)
    if kill == "kill":
        # SIGKILL at the worst moment: every write of the move done, the commit not yet
        @event.listens_for(db.engine, "commit")
        def die(conn):
            os.kill(os.getpid(), signal.SIGKILL)
    now = datetime.fromisoformat(at)
    router = Router(db, Roster.of(settings.agents), plan=load_plan(settings), slack=True,
                    clock=lambda: now)
    print(router.expire_deadlines())
""")


def test_a_deadline_is_acted_on_exactly_once_through_a_sigkill(db: Database, database_url: str, tmp_path: Path):
    _, plan = plan_of(deadline_config(), tmp_path)
    clock = Clock()
    router = router_of(db, plan, clock)
    lead_id = add_lead(db, router, lead_in(1, "33140", 800000))
    at = (START + timedelta(minutes=6)).isoformat()
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def child(kill: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", CHILD, database_url, str(tmp_path / "leadpipe.yaml"), at, kill],
                              capture_output=True, text=True, timeout=120, env=env, check=False)

    killed = child("kill")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert where(db, lead_id) == ("Cho", START + timedelta(minutes=5), ["assigned"])  # nothing half-done
    with db.session() as s:
        assert store.pointer_position(s, "team:north_high") == 1  # the turn was not taken either
    done = child("run")
    assert done.returncode == 0 and done.stdout.strip() == f"[{lead_id}]", done.stderr
    again = child("run")
    assert again.returncode == 0 and again.stdout.strip() == "[]", again.stderr
    agent, _, kinds = where(db, lead_id)
    assert (agent, kinds) == ("Dee", ["assigned", "missed", "reassigned"])
    with db.session() as s:
        assert store.pointer_position(s, "team:north_high") == 2
        moved = [d for d in outbox.listing(s, lead_id=lead_id) if d.action == "dm_agent"]
    assert len(moved) == 2  # the first assignment's DM, and one for the move


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_repeat_inquiries_of_a_moved_lead_follow_its_new_agent(db: Database, tmp_path: Path):
    _, plan = plan_of(deadline_config(), tmp_path)
    clock = Clock()
    router = router_of(db, plan, clock)
    first = add_lead(db, router, lead_in(1, "33140", 800000))
    clock.advance(minutes=6)
    router.expire_deadlines()
    again = add_lead(db, router, lead_in(1, "33140", 800000))
    assert where(db, first)[0] == where(db, again)[0] == "Dee"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_agent_a_lead_moved_from_is_told_in_slack_and_the_next_one_gets_accept(db: Database, tmp_path: Path):
    from routingkit import make_dispatcher
    from slackserver import SlackServer

    _, plan = plan_of(deadline_config(), tmp_path)
    clock = Clock()
    router = router_of(db, plan, clock)
    lead_id = add_lead(db, router, lead_in(1, "33140", 800000))
    clock.advance(minutes=6)
    router.expire_deadlines()
    with SlackServer() as slack:
        make_dispatcher(db, slack.base_url, clock=clock).drain()
        dms = {c.body["channel"]: c.body for c in slack.named("chat.postMessage")}
    assert dms["DU0CHO"]["text"] == f"Lead #{lead_id} moved to Dee: not accepted within 6m."
    assert "not accepted in time by another agent" in dms["DU0DEE"]["text"]
    assert "accept_lead" in str(dms["DU0DEE"]["blocks"])
