"""The ``leadpipe`` command line, run as a user runs it: a subprocess in a folder holding a
copy of ``rules/`` and ``fixtures/``, on the embedded defaults (SQLite ``./leadpipe.db``,
the directory inbox ``./inbox``).

When one of these fails, the README's first command, a tool reading ``--json``, or a rule
author reading ``rules check`` gets something other than what DESIGN.md promises.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clikit import (
    CONTRACT_KEYS,
    INQUIRY_KEYS,
    PROPERTY_KEYS,
    STORED_KEYS,
    cli,
    email_bytes,
    workdir,
)

from daemon.lead import DeadLetter, Ignored, Lead
from daemon.pipeline import Engine, parse_email

REPO = Path(__file__).resolve().parents[2]

E164 = re.compile(r"^\+[1-9]\d{6,14}$")

# A broken rule: the regex on line 8 does not compile.
BROKEN_RULE = """\
source: broken
version: 1
match:
  from: ["*@broken.example"]
fields:
  email:
    - header: reply_to
    - regex: '(?P<value>[\\w.]+@'
"""

# A source the shipped rules do not know yet; added mid-test to replay its dead letter.
# Its name is labelled "Guest", a label the vocabulary (rules/labels.yaml) does not know,
# so the generic rule does not take the email in the meantime.
NEWPORTAL_RULE = """\
source: newportal
version: 1
match:
  from: ["*@newportal.example"]
fields:
  full_name:
    - label: Guest
  phone:
    - regex: 'tel-(?P<value>\\d{10})'
required: [full_name]
"""


# A Zillow email with no phone and no email: a dead letter that names its rule.
ZILLOW_NO_CONTACT = email_bytes(
    "Zillow <leads@mail.zillow.com>", "New Contact: 12 Quarry Lane",
    "Wilhelmina Quarrington says:\nCan I see it Saturday?\nRespond within 10 minutes\n", 1)
# A new portal's lead whose phone only a rule can read (the reader does not take a number
# glued to other text): a dead letter until the portal's rule exists, then a lead on replay.
NEWPORTAL_LEAD = email_bytes(
    "New Portal <leads@newportal.example>", "New lead", "Guest: Bartholomew Fenwick\nCallback: tel-3055550177\n", 2)


def check_contract(lead: dict[str, Any]) -> None:
    """The lead JSON of DESIGN.md: exact keys, E.164 phone, numbers, null never ""."""
    assert set(lead) == CONTRACT_KEYS, set(lead) ^ CONTRACT_KEYS
    assert set(lead["property"]) == PROPERTY_KEYS
    assert lead["phone"] is None or E164.match(lead["phone"]), lead["phone"]
    assert lead["intent"] in ("buy", "sell", "rent", None)
    assert lead["tier"] in ("hot", "standard", "low")
    assert isinstance(lead["score"], int) and 0 <= lead["score"] <= 100
    assert isinstance(lead["warnings"], list) and all(isinstance(w, str) for w in lead["warnings"])
    assert isinstance(lead["source"], str) and lead["source"]
    assert isinstance(lead["rule_version"], str) and lead["rule_version"]
    for key in ("budget_min", "budget_max"):
        assert lead[key] is None or isinstance(lead[key], int | float)
    assert lead["property"]["price"] is None or isinstance(lead["property"]["price"], int | float)
    assert set(lead["inquiry"]) == INQUIRY_KEYS
    assert lead["inquiry"]["intent"] in ("buy", "sell", "rent", "buy_and_sell", None)
    texts = {k: v for k, v in lead.items() if k not in ("property", "inquiry", "warnings", "score")}
    texts.update({f"property.{k}": v for k, v in lead["property"].items()})
    texts.update({f"inquiry.{k}": v for k, v in lead["inquiry"].items()})
    for key, value in texts.items():
        assert value != "", f"{key} is an empty string; absent values are null"
        assert value is None or isinstance(value, str | int | float), key


def readme_copy_command() -> str:
    """The part of the README's first command that copies the sample emails into inbox/."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```sh\n(.*leadpipe run --once)\n```", readme)
    assert first, "the README's first command runs leadpipe run --once"
    copy = re.search(r"(?:^| && )([^&]*fixtures/emails.*?) && \S*leadpipe run --once$", first.group(1))
    assert copy, first.group(1)
    return copy.group(1)


@dataclass
class Journey:
    """The README's first job, then the follow-up commands, run once for the module."""

    dir: Path
    expected: dict[str, Any]
    first: subprocess.CompletedProcess[str]
    again: subprocess.CompletedProcess[str]
    dlq_list: subprocess.CompletedProcess[str]
    dlq_show: subprocess.CompletedProcess[str]
    replay: subprocess.CompletedProcess[str]
    leads_list: subprocess.CompletedProcess[str]
    zillow_dead_letter: dict[str, Any]


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Journey:
    d = workdir(tmp_path_factory.mktemp("cli") / "brokerage")
    # README: find fixtures/emails -name '*.eml' … (copy the emails into inbox/) && leadpipe run --once
    subprocess.run(["sh", "-c", readme_copy_command()], cwd=d, check=True)
    (d / "inbox" / "zz_extra").mkdir()
    (d / "inbox" / "zz_extra" / "zillow_no_contact.eml").write_bytes(ZILLOW_NO_CONTACT)
    (d / "inbox" / "zz_extra" / "newportal.eml").write_bytes(NEWPORTAL_LEAD)
    # what the pipeline makes of each email, computed in-process, for the assertions
    engine = Engine.load(d / "rules")
    outcomes = [parse_email(p.read_bytes(), engine) for p in sorted((d / "inbox").rglob("*.eml"))]

    first = cli(d, "run", "--once")
    again = cli(d, "run", "--once")
    dlq_list = cli(d, "dlq", "list", "--json")
    listed = [json.loads(line) for line in dlq_list.stdout.splitlines() if line.strip()]
    zillow = next(x for x in listed if x["subject"] == "New Contact: 12 Quarry Lane")
    dlq_show = cli(d, "dlq", "show", str(zillow["id"]))
    (d / "rules" / "newportal.yaml").write_text(NEWPORTAL_RULE, encoding="utf-8")
    replay = cli(d, "dlq", "replay", "--all")
    leads_list = cli(d, "leads", "list", "--json", "--limit", "1000")
    return Journey(
        dir=d,
        expected={
            "leads": [o for o in outcomes if isinstance(o, Lead)],
            "dead": [o for o in outcomes if isinstance(o, DeadLetter)],
            "ignored": [o for o in outcomes if isinstance(o, Ignored)],
            "dead_listed": listed,
        },
        first=first, again=again, dlq_list=dlq_list, dlq_show=dlq_show, replay=replay,
        leads_list=leads_list, zillow_dead_letter=zillow,
    )


def test_readme_first_job_prints_the_leads_and_dead_letters_and_exits_0(journey: Journey):
    r = journey.first
    assert r.returncode == 0, r.stderr
    leads, dead = journey.expected["leads"], journey.expected["dead"]
    assert len(leads) >= 20
    assert f"{len(leads)} leads" in r.stdout
    assert f"{len(dead)} dead letters" in r.stdout
    # names from the fixtures, as the tables show them
    assert "José Núñez" in r.stdout  # zillow/current_layout_multipart.eml
    for lead in leads:
        if lead.full_name:
            assert lead.full_name in r.stdout
    assert "no_matching_rule" in r.stdout  # the new portal, whose lead the reader cannot read
    assert "missing_required_field" in r.stdout  # Zillow without phone or email
    assert "market_report" in r.stdout  # the newsletter from an unknown sender: ignored, not dead
    # every email was moved out of the inbox into inbox/processed/
    left = [p for p in (journey.dir / "inbox").rglob("*.eml") if "processed" not in p.parts]
    assert left == []


def test_running_again_processes_nothing_new(journey: Journey):
    assert journey.again.returncode == 0, journey.again.stderr
    assert journey.again.stdout.strip() == "nothing new to process"  # not an empty table


def test_dlq_list_json_lists_each_open_dead_letter(journey: Journey):
    assert journey.dlq_list.returncode == 0, journey.dlq_list.stderr
    listed = journey.expected["dead_listed"]
    assert len(listed) == len(journey.expected["dead"])
    for row in listed:
        assert {"id", "status", "reason", "detail", "rule", "subject", "message_id"} <= set(row)
        assert row["status"] == "open"
    z = journey.zillow_dead_letter
    assert (z["reason"], z["rule"]) == ("missing_required_field", "zillow v3")


def test_dlq_show_prints_reason_rule_and_the_emails_text(journey: Journey):
    r = journey.dlq_show
    assert r.returncode == 0, r.stderr
    assert re.search(r"^reason:\s+missing_required_field$", r.stdout, re.M)
    assert re.search(r"^rule:\s+zillow v3$", r.stdout, re.M)
    assert "Wilhelmina Quarrington says:" in r.stdout
    assert "Can I see it Saturday?" in r.stdout
    assert "phone or email" in r.stdout  # the detail says what was missing


def test_dlq_replay_all_turns_the_fixed_sources_dead_letter_into_a_lead(journey: Journey):
    r = journey.replay
    assert r.returncode == 0, r.stderr
    dead = len(journey.expected["dead"])
    assert f"replayed {dead}: 1 now leads, {dead - 1} still dead letters" in r.stdout
    leads = [json.loads(line) for line in journey.leads_list.stdout.splitlines() if line.strip()]
    assert [x["full_name"] for x in leads if x["source"] == "newportal"] == ["Bartholomew Fenwick"]


def test_leads_list_json_prints_each_stored_lead_with_its_routing_state(journey: Journey):
    r = journey.leads_list
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert len(rows) == len(journey.expected["leads"]) + 1  # + the replayed one
    ids = [row["id"] for row in rows]
    assert ids == sorted(ids, reverse=True)  # newest first
    for row in rows:
        assert set(row) == STORED_KEYS
        assert isinstance(row["id"], int) and row["status"] == "new"
        assert row["agent"] is None and row["claimed_by"] is None
        check_contract({k: v for k, v in row.items() if k in CONTRACT_KEYS})
    names = {row["full_name"] for row in rows}
    assert {lead.full_name for lead in journey.expected["leads"]} <= names


# -- parse ------------------------------------------------------------------------------


def test_parse_json_on_one_fixture_prints_exactly_the_lead_contract(journey: Journey):
    eml = Path("fixtures/emails/zillow/current_layout_multipart.eml")
    r = cli(journey.dir, "parse", "--json", str(eml))
    assert r.returncode == 0, r.stderr
    lead = json.loads(r.stdout)
    check_contract(lead)
    assert (lead["source"], lead["full_name"], lead["first_name"], lead["last_name"]) == (
        "zillow", "José Núñez", "José", "Núñez")
    assert lead["phone"] == "+13055550142"


def test_parse_json_on_several_files_prints_json_lines(journey: Journey):
    files = sorted(str(p.relative_to(journey.dir)) for p in (journey.dir / "fixtures" / "emails").rglob("*.eml"))
    r = cli(journey.dir, "parse", "--json", *files)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["file"] for row in rows] == files
    kinds = set()
    for row in rows:
        (kind,) = set(row) - {"file"}
        kinds.add(kind)
        assert kind in ("lead", "dead_letter", "ignored")
        if kind == "lead":
            check_contract(row["lead"])
        elif kind == "dead_letter":
            assert set(row["dead_letter"]) == {"reason", "detail", "rule"}
            assert row["dead_letter"]["reason"] and row["dead_letter"]["detail"]
        else:
            assert set(row["ignored"]) == {"reason"}
    assert "lead" in kinds


def test_parse_json_on_a_non_lead_prints_it_ignored_with_its_kind_and_exits_0(journey: Journey, tmp_path: Path):
    eml = tmp_path / "newsletter.eml"
    eml.write_bytes(email_bytes("news@rates.example", "Mortgage rates this week", "Rates went up.", 3))
    r = cli(journey.dir, "parse", "--json", str(eml))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ignored"] == {"reason": "market_report"}


def test_parse_json_on_a_lead_it_cannot_read_prints_the_dead_letter_reason_and_exits_0(journey: Journey,
                                                                                        tmp_path: Path):
    eml = tmp_path / "lead.eml"
    eml.write_bytes(email_bytes("leads@rates.example", "New lead from Ana Ruiz",
                                "Ana Ruiz is interested in 12 Elm St.", 3))
    r = cli(journey.dir, "parse", "--json", str(eml))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["dead_letter"]["reason"] == "no_matching_rule"
    assert "leads@rates.example" in out["dead_letter"]["detail"]
    assert out["dead_letter"]["rule"] is None


# -- rules check and broken rules -------------------------------------------------------


def test_rules_check_passes_on_the_shipped_rules(journey: Journey):
    r = cli(REPO, "rules", "check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 problems" in r.stdout


def test_rules_check_names_file_line_and_key_and_exits_1(tmp_path: Path):
    d = workdir(tmp_path)
    (d / "rules" / "broken.yaml").write_text(BROKEN_RULE, encoding="utf-8")
    r = cli(d, "rules", "check")
    assert r.returncode == 1
    assert "rules/broken.yaml:8: fields.email[1].regex: bad regular expression" in r.stdout
    assert "1 problems" in r.stdout


def test_run_with_a_broken_rule_names_it_and_still_processes_other_sources(tmp_path: Path):
    d = workdir(tmp_path)
    (d / "rules" / "broken.yaml").write_text(BROKEN_RULE, encoding="utf-8")
    (d / "inbox").mkdir()
    shutil.copy(d / "fixtures/emails/zillow/current_layout_multipart.eml", d / "inbox")
    broken_email = email_bytes("leads@broken.example", "Lead", "hello", 4)
    (d / "inbox" / "broken_source.eml").write_bytes(broken_email)
    r = cli(d, "run", "--once")
    assert r.returncode == 0, r.stderr
    assert "rules/broken.yaml:8: fields.email[1].regex: bad regular expression" in r.stderr
    assert "1 lead\n" in r.stdout and "José Núñez" in r.stdout
    # the broken source's own email is not lost: it waits as a dead letter for the fix
    assert "1 dead letter\n" in r.stdout and "leads@broken.example" in r.stdout


# -- usage and configuration errors -----------------------------------------------------


def test_bad_usage_exits_2(tmp_path: Path):
    r = cli(tmp_path, "parse")
    assert r.returncode == 2
    assert "usage:" in r.stderr


def test_bad_config_key_exits_1_naming_file_line_and_key(tmp_path: Path):
    d = workdir(tmp_path)
    (d / "leadpipe.yaml").write_text(
        "database_url: sqlite:///leadpipe.db\n"
        "rules_dir: rules\n"
        "slack:\n"
        "  bot_tokn: xoxb-not-a-real-token\n",
        encoding="utf-8",
    )
    r = cli(d, "run", "--once")
    assert r.returncode == 1
    assert "leadpipe.yaml:4: slack.bot_tokn: unknown key" in r.stderr
    assert "xoxb-not-a-real-token" not in r.stderr + r.stdout  # a secret is never echoed


# -- what a newcomer meets in the first hour -----------------------------------------------


def _parsers(parser: Any, name: str = "leadpipe") -> Any:
    """Every (command name, parser) of the ``leadpipe`` command tree, with the help text
    each subcommand has in its parent's list."""
    import argparse

    yield name, parser, None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in action._choices_actions}
            for sub_name, sub in action.choices.items():
                for found in _parsers(sub, f"{name} {sub_name}"):
                    yield found if found[1] is not sub else (found[0], sub, helps.get(sub_name))


def test_every_command_option_and_argument_has_help_text():
    """`leadpipe --help` and each subcommand's --help describe everything they accept."""
    import argparse

    from daemon.cli import build_parser

    missing = []
    commands = list(_parsers(build_parser()))
    assert len(commands) > 25
    for name, parser, summary in commands:
        if name != "leadpipe" and not summary:
            missing.append(f"{name} (no summary in its parent's list)")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_help_of_each_command_prints_and_version_prints_the_version(tmp_path: Path):
    from importlib.metadata import version

    from daemon.cli import build_parser

    r = cli(tmp_path, "--version")
    assert r.returncode == 0 and r.stdout.strip() == f"leadpipe {version('leadpipe')}"
    for name in ("leadpipe dlq replay", "leadpipe leads list", "leadpipe deliveries list"):
        r = cli(tmp_path, *name.split()[1:], "--help")
        assert r.returncode == 0 and "usage:" in r.stdout
    r = cli(tmp_path, "dlq", "replay", "--help")
    assert re.search(r"--all +every open dead letter\n", r.stdout)
    assert [n for n, _, _ in _parsers(build_parser())].count("leadpipe admin hash-password") == 1


def test_run_once_says_no_leads_and_counts_one_email_in_the_singular(tmp_path: Path):
    d = workdir(tmp_path / "w")
    (d / "inbox").mkdir()
    shutil.copy(d / "fixtures" / "emails" / "_hostile" / "auto_reply.eml", d / "inbox" / "auto_reply.eml")
    r = cli(d, "run", "--once")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-2:] == ["no leads", "1 email ignored (auto-replies, bounces, newsletters)"]
    assert "┏" not in r.stdout  # no empty table


def test_the_readmes_first_command_copies_every_sample_email_and_no_golden_file(tmp_path: Path):
    d = workdir(tmp_path / "w")
    subprocess.run(["sh", "-c", readme_copy_command()], cwd=d, check=True)
    copied = sorted(p.name for p in (d / "inbox").rglob("*") if p.is_file())
    samples = sorted(p.name for p in (d / "fixtures" / "emails").rglob("*.eml"))
    assert copied == samples  # also the samples of different sources with one file name
    assert not any(name.endswith(".yaml") for name in copied)


def test_the_drift_alerts_command_prints_the_drifted_email(tmp_path: Path):
    """The template-drift alert says "see the email: `leadpipe leads show ID --email`"; that
    command must show the email, or the on-call person is sent to a dead end."""
    d = workdir(tmp_path / "w")
    drifted = (d / "fixtures/emails/realtor/text_layout.eml").read_bytes().replace(b"Phone Number:", b"Cell Phone:")
    (d / "inbox").mkdir()
    (d / "inbox" / "drifted.eml").write_bytes(drifted)
    r = cli(d, "run", "--once")
    assert r.returncode == 0, r.stderr
    shown = re.search(r"Template drift in realtor: .* see the email: `leadpipe ([^`]+)`", r.stderr)
    assert shown, r.stderr
    email = cli(d, *shown.group(1).split())
    assert email.returncode == 0, email.stderr
    assert "--- the email's text ---" in email.stdout
    assert "Cell Phone:" in email.stdout  # the drifted label, as the email has it


def test_rules_check_says_which_key_a_misspelled_one_meant(tmp_path: Path):
    d = workdir(tmp_path)
    rule = (d / "rules" / "zillow.yaml").read_text(encoding="utf-8")
    (d / "rules" / "zillow.yaml").write_text(rule.replace("\nversion:", "\nversoin:", 1)
                                             .replace("\n  phone:", "\n  phnoe:", 1), encoding="utf-8")
    r = cli(d, "rules", "check")
    assert r.returncode == 1
    assert re.search(r"rules/zillow\.yaml:\d+: versoin: unknown key; did you mean `version`\?", r.stdout), r.stdout
    assert re.search(r"rules/zillow\.yaml:\d+: fields\.phnoe: unknown key; .*; did you mean `phone`\?", r.stdout)
