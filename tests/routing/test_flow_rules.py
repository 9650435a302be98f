"""Lead flows as rules: loading them with ``file:line: key`` errors, matching a lead and
saying why, working hours across time zones, the language of a message, and ``leadpipe
routing check|test`` (daemon/routing/flows.py, availability.py, language.py, check.py).

When these fail, a broken flow starts anyway and misroutes, a mistake is reported without
the line to fix, a flow nobody can reach goes unnoticed, or an agent is called at night.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
import yaml
from clikit import cli
from flowkit import FOUR_TEAMS, lead_in, plan_of
from routingkit import START

from daemon.errors import ConfigError
from daemon.lead import Property
from daemon.routing import check
from daemon.routing.availability import Availability, Hours, Span, hours_of, until_of
from daemon.routing.decide import Roster, decide
from daemon.routing.flows import choose
from daemon.routing.language import detect

# -- loading ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "expected"), [
    (lambda c: c["teams"][0]["agents"].append("Bob"),
     r"leadpipe.yaml:\d+: teams\[0\].agents\[2\]: unknown agent 'Bob'"),
    (lambda c: c["routing"]["flows"][1].update(team="north_hi"),
     r"leadpipe.yaml:\d+: routing.flows\[1\].team: unknown team 'north_hi'; did you mean `north_high`\?"),
    (lambda c: c["routing"]["flows"][0]["match"].update(property_type="condo"),
     r"routing.flows\[0\].match.property_type: unknown key"),
    (lambda c: c["agents"][0].update(time_zone="America/Gotham"),
     r"agents\[0\].time_zone: unknown time zone 'America/Gotham'"),
    (lambda c: c["agents"][1].update(hours={"mon-fri": "9-5"}),
     r"agents\[1\].hours.mon-fri: not a span of hours: '9-5'"),
    (lambda c: c["routing"]["flows"][0].update(method="offer", team=None),
     r"routing.flows\[0\].team: method: offer needs a team"),
    (lambda c: c["teams"][2].update(fallback="nowhere"),
     r"teams\[2\].fallback: unknown team 'nowhere'"),
    (lambda c: c["routing"]["flows"][0]["match"].update(price={"min": 5, "max": 1}),
     r"routing.flows\[0\].match.price: max \(1\) must be above min \(5\)"),
])
def test_a_bad_flow_or_team_stops_the_start_naming_its_file_line_and_key(tmp_path: Path, change, expected):
    config = copy.deepcopy(FOUR_TEAMS)
    change(config)
    with pytest.raises(ConfigError, match=expected):
        plan_of(config, tmp_path)


def test_the_line_named_is_the_line_of_the_key(tmp_path: Path):
    config = copy.deepcopy(FOUR_TEAMS)
    config["teams"][1]["agents"].append("Zed")
    with pytest.raises(ConfigError) as caught:
        plan_of(config, tmp_path)
    line = int(str(caught.value).split("leadpipe.yaml:")[1].split(":")[0])
    text = (tmp_path / "leadpipe.yaml").read_text().splitlines()
    assert "Zed" in text[line - 1]


# -- matching ---------------------------------------------------------------------------------


def test_the_first_matching_flow_wins_and_says_why(tmp_path: Path):
    _, plan = plan_of(FOUR_TEAMS, tmp_path)
    choice = choose(lead_in(1, "33140", 750000), plan, START)
    assert choice.name == "north-high"
    assert choice.why == "flow north-high: postal code 33140 matches 331*; price 750,000 in [500,000, )"
    assert [(n, ok) for n, ok, _ in choice.tried] == [("north-low", False), ("north-high", True)]


def test_without_a_price_the_budget_decides_the_band(tmp_path: Path):
    _, plan = plan_of(FOUR_TEAMS, tmp_path)
    lead = replace(lead_in(1, "33301", 1), property=Property(postal_code="33301"),
                   budget_min=300000.0, budget_max=450000.0)
    assert choose(lead, plan, START).name == "south-low"
    nothing = replace(lead, budget_min=None, budget_max=None)
    assert choose(nothing, plan, START).name == "default"  # no price: no price band matches


def test_source_globs_intent_language_and_time_of_day(tmp_path: Path):
    config = copy.deepcopy(FOUR_TEAMS)
    config["routing"]["time_zone"] = "America/New_York"
    config["routing"]["flows"] = [
        {"name": "nights", "match": {"time": {"days": "mon-fri", "hours": "20:00-08:00"}}, "team": "south_low"},
        {"name": "espanol", "match": {"language": ["es"]}, "team": "south_high"},
        {"name": "rentals", "match": {"source": ["zumper", "apartments*"], "intent": "rent"}, "team": "north_high"},
    ]
    _, plan = plan_of(config, tmp_path)
    day = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in New York
    night = datetime(2026, 11, 4, 2, 0, tzinfo=UTC)  # Tuesday 21:00 in New York
    spanish = replace(lead_in(1, "1", 1), message="Hola, quisiera ver la casa esta semana, gracias")
    rental = replace(lead_in(2, "1", 1), source="apartments_com", intent="rent")
    assert choose(spanish, plan, day).name == "espanol"
    assert choose(spanish, plan, night).name == "nights"
    assert choose(rental, plan, day).name == "rentals"
    assert choose(replace(rental, intent="buy"), plan, day).name == "default"


def test_the_language_of_short_inquiries():
    assert detect("Hola, me interesa la casa. ¿Está disponible todavía?") == "es"
    assert detect("Olá, gostaria de ver o imóvel, ainda está disponível?") == "pt"
    assert detect("Bonjour, je voudrais visiter la maison, merci") == "fr"
    assert detect("Hi, I am interested in this home, is it still available?") == "en"
    assert detect("ok") is None and detect(None) is None


# -- hours -----------------------------------------------------------------------------------


def test_working_hours_follow_the_agents_clock_through_daylight_saving():
    ny = hours_of("America/New_York", {"mon-fri": "09:00-17:00"})
    assert ny.working(datetime(2026, 10, 30, 13, 30, tzinfo=UTC))  # Fri 09:30 EDT
    assert not ny.working(datetime(2026, 11, 2, 13, 30, tzinfo=UTC))  # Mon 08:30 EST
    assert ny.working(datetime(2026, 11, 2, 14, 30, tzinfo=UTC))  # Mon 09:30 EST
    assert not ny.working(datetime(2026, 10, 31, 14, 0, tzinfo=UTC))  # Saturday
    # spring forward, 8 March 2026: 13:30 UTC is 08:30 EST on Friday, 09:30 EDT on Monday
    assert not ny.working(datetime(2026, 3, 6, 13, 30, tzinfo=UTC))
    assert ny.working(datetime(2026, 3, 9, 13, 30, tzinfo=UTC))


def test_a_span_past_midnight_belongs_to_the_day_it_starts():
    nights = hours_of("UTC", {"fri": "22:00-06:00"})
    assert nights.spans == (Span(4, time(22), time(6)),)
    assert nights.working(datetime(2026, 11, 6, 23, 0, tzinfo=UTC))  # Fri 23:00
    assert nights.working(datetime(2026, 11, 7, 5, 0, tzinfo=UTC))  # Sat 05:00
    assert not nights.working(datetime(2026, 11, 8, 5, 0, tzinfo=UTC))  # Sun 05:00
    assert Hours().working(START)


def test_away_until_is_read_in_the_agents_zone():
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert until_of("2d", now=now, zone_name=None) == datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert until_of("2026-12-05T09:00", now=now, zone_name="America/Chicago") == \
        datetime(2026, 12, 5, 15, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a time"):
        until_of("next tuesday", now=now, zone_name=None)
    avail = Availability(now, {}, {"Ana": datetime(2026, 12, 3, tzinfo=UTC)})
    assert not avail.available("Ana") and avail.available("Ben")
    assert avail.why_not("Ana") == "away until 2026-12-03 00:00 UTC"


def test_decide_skips_the_unavailable_and_keeps_the_rotation_whole(tmp_path: Path):
    settings, plan = plan_of(FOUR_TEAMS, tmp_path)
    roster = Roster.of(settings.agents)
    avail = Availability(START, {}, {"Cho": datetime(2027, 1, 1, tzinfo=UTC)})
    d = decide(lead_in(1, "33140", 900000), roster, None, can_offer=False, plan=plan, now=START,
               available=avail)
    assert (d.kind, d.pointer, d.rotation, d.skip) == ("round_robin", "team:north_high", ("Cho", "Dee"),
                                                       frozenset({"Cho"}))


# -- routing check / routing test ----------------------------------------------------------------


def test_check_finds_unreachable_flows_and_overlapping_postal_codes(tmp_path: Path):
    config = copy.deepcopy(FOUR_TEAMS)
    config["routing"]["flows"] += [
        {"name": "beach", "match": {"postal_codes": ["33140"], "price": {"max": 400000}}, "team": "south_low"},
        {"name": "miami-sellers", "match": {"postal_codes": ["3313*", "33301"], "intent": ["sell", "buy"]},
         "team": "south_high"},
    ]
    settings, plan = plan_of(config, tmp_path)
    found = [str(f) for f in check.findings(settings, plan)]
    text = (tmp_path / "leadpipe.yaml").read_text().splitlines()
    assert len(found) == 5, found
    where = str(tmp_path / "leadpipe.yaml") + ":"
    assert found[0].startswith(where)
    assert "routing.flows[4].match: flow beach is unreachable: flow north-low" in found[0]
    line = int(found[0][len(where):].split(":")[0])
    assert text[line - 1].strip().startswith("match:")
    assert "routing.flows[5].match.postal_codes: postal codes 3313* overlap flow north-low's" in found[1]
    assert "routing.flows[5].match.postal_codes: postal codes 3313* overlap flow north-high's" in found[2]
    assert "routing.flows[5].match.postal_codes: postal codes 33301 overlap flow south-low's" in found[3]
    assert "routing.flows[5].match.postal_codes: postal codes 33301 overlap flow south-high's" in found[4]


def test_price_bands_that_together_take_an_area_make_a_later_priced_flow_unreachable(tmp_path: Path):
    config = copy.deepcopy(FOUR_TEAMS)
    config["routing"]["flows"].append({"name": "late", "match": {"postal_codes": ["3310*"],
                                       "price": {"min": 100000}}, "team": "south_low"})
    settings, plan = plan_of(config, tmp_path)
    (found,) = [str(f) for f in check.findings(settings, plan)]
    assert "flow late is unreachable: the price bands of flows north-low, north-high come first" in found


def test_separate_price_bands_over_one_area_are_no_overlap(tmp_path: Path):
    settings, plan = plan_of(FOUR_TEAMS, tmp_path)
    assert check.findings(settings, plan) == []


def test_a_pond_with_no_slack_to_post_it_in_is_reported(tmp_path: Path):
    config = copy.deepcopy(FOUR_TEAMS)
    config.pop("slack", None)
    config["routing"]["flows"].insert(0, {"name": "open-house", "match": {"source": ["openhouse*"]},
                                          "method": "pond"})
    settings, plan = plan_of(config, tmp_path)
    (found,) = [str(f) for f in check.findings(settings, plan)]
    assert "routing.flows[0].method: method: pond with no Slack bot token and channel" in found
    config["slack"] = {"bot_token": "xoxb-test", "signing_secret": "s", "hot_leads_channel": "C0HOT"}
    (tmp_path / "with-slack").mkdir()
    settings, plan = plan_of(config, tmp_path / "with-slack")
    assert check.findings(settings, plan) == []


def test_routing_check_and_test_on_the_command_line(tmp_path: Path):
    config = copy.deepcopy(FOUR_TEAMS)
    config["routing"]["flows"].append({"name": "late", "match": {"postal_codes": ["3310*"], "tier": "hot"},
                                       "team": "south_low"})
    config["routing"]["flows"].append({"name": "later", "match": {"postal_codes": ["33101"], "tier": "hot"},
                                       "team": "south_low"})
    (tmp_path / "leadpipe.yaml").write_text(json.dumps(config), encoding="utf-8")
    done = cli(tmp_path, "--config", "leadpipe.yaml", "routing", "check")
    assert done.returncode == 1
    assert "leadpipe.yaml:1: routing.flows[5].match: flow later is unreachable: flow late" in done.stdout
    lead = lead_in(1, "33140", 650000).to_json()
    (tmp_path / "lead.json").write_text(json.dumps(lead), encoding="utf-8")
    done = cli(tmp_path, "--config", "leadpipe.yaml", "routing", "test", "lead.json", "--json")
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert (said["flow"], said["team"], said["method"], said["candidates"]) == \
        ("north-high", "north_high", "round_robin", ["Cho", "Dee"])
    assert said["tried"][0] == {"flow": "north-low", "matched": False,
                                "conditions": ["postal code 33140 matches 331*", "price 650,000 not in [, 500,000)"]}
    done = cli(tmp_path, "--config", "leadpipe.yaml", "routing", "test", "lead.json")
    assert "lead.json: flow north-high → round robin in team north_high" in done.stdout
    del config["routing"]["flows"][4:]
    (tmp_path / "leadpipe.yaml").write_text(json.dumps(config), encoding="utf-8")
    done = cli(tmp_path, "--config", "leadpipe.yaml", "routing", "check")
    assert (done.returncode, done.stdout.strip()) == (0, "4 flows, 4 teams: ok")


def test_the_readme_example_checks_clean_and_routes_as_it_says(tmp_path: Path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### A small brokerage, worked through", 1)[1]
    example = yaml.safe_load(section.split("```yaml", 1)[1].split("```", 1)[0])
    settings, plan = plan_of(example, tmp_path)
    assert check.findings(settings, plan) == []
    beach = replace(lead_in(1, "33139", 650000), message="Hi, I would like to see this home on Saturday")
    monday_noon = datetime(2026, 11, 2, 17, 0, tzinfo=UTC)
    assert choose(beach, plan, monday_noon).name == "beach"
    assert choose(replace(beach, tier="hot"), plan, monday_noon).name == "beach-hot"
    assert choose(replace(beach, intent="sell"), plan, monday_noon).name == "sellers"
    spanish = replace(beach, message="Hola, quisiera ver la casa el sábado, gracias")
    assert choose(spanish, plan, monday_noon).name == "spanish"
    roster = Roster.of(settings.agents)
    night = datetime(2026, 11, 3, 3, 0, tzinfo=UTC)  # 22:00 in New York: Rosa is off
    d = decide(spanish, roster, None, can_offer=True, plan=plan, now=night,
               available=Availability(night, plan.hours, {}))
    assert (d.flow, d.team) == ("spanish", "buyers_miami")  # her team's fallback
    assert d.skip == frozenset({"Ana Ruiz"})  # Ana's hours are over too: Ben's turn
