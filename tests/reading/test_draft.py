"""``leadpipe rules new SOURCE FILE.eml``: a starting rule drafted from an example email.

The promise: the file it writes passes ``leadpipe rules check`` and reads the example it
was drafted from; it never overwrites a file.
"""

from __future__ import annotations

import dataclasses
import shutil
from email.message import EmailMessage
from pathlib import Path

import pytest
from clikit import cli

from daemon.lead import Lead
from daemon.pipeline import Engine, parse_email
from daemon.reading import goldens
from daemon.reading.draft import draft_rule
from daemon.reading.rules import LoadedRule, load_rule_file, ruleset_of

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "emails"
ENGINE = Engine.load(REPO / "rules")


def web_form() -> bytes:
    m = EmailMessage()
    m["From"] = "Cedar Realty Website <forms@cedar-realty.example>"
    m["To"] = "leads@cedar-realty.example"
    m["Subject"] = "Contact form: 41 Birch Rd"
    m["Message-ID"] = "<form.1@cedar-realty.example>"
    m.set_content("A visitor filled in the contact form.\n\n"
                  "Your Name: Priya Raman\nYour Email: priya.raman@example.com\n"
                  "Best Phone: (617) 555-0121\nHow did you hear about us?: Google\n"
                  "Message: Can we see 41 Birch Rd on Saturday?\n")
    return bytes(m)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    (tmp_path / "form.eml").write_bytes(web_form())
    return tmp_path


def test_rules_new_writes_a_draft_the_daemon_does_not_load_until_promoted(workdir: Path):
    """The rule author's loop (issue 14): draft, test with the draft, promote."""
    r = cli(workdir, "rules", "new", "cedar_web", "form.eml")
    assert r.returncode == 0, r.stderr
    draft = workdir / "rules" / "cedar_web.draft.yaml"
    assert f"wrote {Path('rules') / 'cedar_web.draft.yaml'} (a draft" in r.stdout
    assert "the example parses with it: full_name, email, phone, message found" in r.stdout
    assert "leadpipe rules promote cedar_web" in r.stdout
    text = draft.read_text(encoding="utf-8")
    assert "from: ['*@cedar-realty.example']" in text
    assert "subject: ['Contact form']" in text
    assert "label: 'Best Phone'" in text and "label: 'Your Email'" in text
    assert "#   How did you hear about us?: Google" in text  # no lead field: a comment
    assert "required: [full_name]" in text and "require_any: [[phone, email]]" in text
    # the example is a fixture now, with the golden file the draft gives it
    fixture = workdir / "fixtures" / "emails" / "cedar_web" / "form.eml"
    assert fixture.read_bytes() == (workdir / "form.eml").read_bytes()
    assert goldens.load(fixture)["lead"]["source"] == "cedar_web"
    # not loaded: the daemon still reads the email without a rule
    parsed = cli(workdir, "parse", "--json", "form.eml")
    assert '"source": "cedar-realty.example"' in parsed.stdout
    tested = cli(workdir, "rules", "test", "cedar_web")
    assert tested.returncode == 0, tested.stdout
    assert "with the draft" in tested.stdout and "1 of 1 fixtures match" in tested.stdout

    promoted = cli(workdir, "rules", "promote", "cedar_web")
    assert promoted.returncode == 0, promoted.stderr
    assert not draft.exists() and (workdir / "rules" / "cedar_web.yaml").exists()
    check = cli(workdir, "rules", "check")
    assert check.returncode == 0, check.stdout
    parsed = cli(workdir, "parse", "--json", "form.eml")
    assert '"source": "cedar_web"' in parsed.stdout
    assert '"phone": "+16175550121"' in parsed.stdout


def test_rules_new_takes_its_example_from_a_dead_letter_or_a_lead(workdir: Path):
    """The alert for a new sender names `rules new SOURCE --lead ID`; a dead letter's email
    drafts the same way (`--dlq ID`)."""
    inbox = workdir / "inbox"
    inbox.mkdir()
    shutil.copy(workdir / "form.eml", inbox / "form.eml")
    assert cli(workdir, "ingest", str(inbox / "form.eml")).returncode == 0
    r = cli(workdir, "rules", "new", "cedar_web", "--lead", "1")
    assert r.returncode == 0, r.stderr
    assert (workdir / "fixtures" / "emails" / "cedar_web" / "lead-1.eml").exists()
    missing = cli(workdir, "rules", "new", "other_web", "--dlq", "99")
    assert missing.returncode == 1 and "no dead letter #99" in missing.stderr
    neither = cli(workdir, "rules", "new", "other_web")
    assert neither.returncode == 2 and "give one example" in neither.stderr


def test_a_fixture_without_a_golden_file_says_how_to_make_one(workdir: Path):
    folder = workdir / "fixtures" / "emails" / "cedar_web"
    folder.mkdir(parents=True)
    shutil.copy(workdir / "form.eml", folder / "form.eml")
    r = cli(workdir, "rules", "test", "cedar_web")
    assert r.returncode == 1
    assert "no golden file yet — run `leadpipe rules test cedar_web --update`" in r.stdout


def test_rules_promote_without_a_draft_says_how_to_draft_one(workdir: Path):
    r = cli(workdir, "rules", "promote", "cedar_web")
    assert r.returncode == 1
    assert "there is no draft rules/cedar_web.draft.yaml; draft one with `leadpipe rules new cedar_web FILE.eml`" \
        in r.stderr


def test_rules_new_refuses_to_overwrite_a_rule_file(workdir: Path):
    before = (workdir / "rules" / "zillow.yaml").read_bytes()
    r = cli(workdir, "rules", "new", "zillow", "form.eml")
    assert r.returncode == 1
    assert "rules/zillow.yaml already exists" in r.stderr
    assert (workdir / "rules" / "zillow.yaml").read_bytes() == before


def test_rules_new_refuses_a_source_another_file_defines(workdir: Path):
    shutil.move(workdir / "rules" / "zillow.yaml", workdir / "rules" / "zillow_premier.yaml")
    r = cli(workdir, "rules", "new", "zillow", "form.eml")
    assert r.returncode == 1 and "source `zillow` is already defined in" in r.stderr
    assert not (workdir / "rules" / "zillow.draft.yaml").exists()


def test_rules_new_refuses_a_bad_source_name_in_one_line_saying_what_names_may_be(workdir: Path):
    r = cli(workdir, "rules", "new", "Cedar Web", "form.eml")
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "`Cedar Web` is not a source name: it has capitals and spaces" in r.stderr
    assert "lower-case letters, digits and _ . - (e.g. `cedar_web`)" in r.stderr
    assert not list((workdir / "rules").glob("Cedar*"))


LEAD_FIXTURES = [p for p in goldens.fixtures(FIXTURES)
                 if p.parent.name != "_hostile" and "lead" in (goldens.load(p) or {})]


@pytest.mark.parametrize("eml", LEAD_FIXTURES, ids=[str(p.relative_to(FIXTURES)) for p in LEAD_FIXTURES])
def test_a_draft_from_any_fixture_loads_and_matches_its_example(eml: Path, tmp_path: Path):
    """Drafted as the only rule, it recognises its example; what it finds of the contact
    is what the shipped rule finds (a draft may find less, never something else)."""
    draft = draft_rule("drafted", eml.read_bytes(), ENGINE.labels)
    path = tmp_path / "drafted.yaml"
    path.write_text(draft.text, encoding="utf-8")
    rule = load_rule_file(path)
    engine = dataclasses.replace(ENGINE, rules=ruleset_of([LoadedRule(rule, str(path))], (), tmp_path))
    outcome = parse_email(eml.read_bytes(), engine)
    golden = (goldens.load(eml) or {})["lead"]
    if isinstance(outcome, Lead):
        assert outcome.source == "drafted" or outcome.warnings[0].startswith("reader:")
        for key in ("email", "phone"):
            got = getattr(outcome, key)
            assert got is None or got == golden[key], key
    labelled = sum(1 for line in draft.text.splitlines() if line.strip().startswith("- label:"))
    if labelled >= 3:
        assert isinstance(outcome, Lead) and outcome.source == "drafted", outcome
        assert (outcome.email, outcome.phone) == (golden["email"], golden["phone"])
